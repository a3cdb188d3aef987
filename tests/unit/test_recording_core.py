import datetime as dt
import io
import wave

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.recording.core import PolicyError, RecordingPolicy, audio_facts, relative_path, wav_duration_ms


def wav_bytes(seconds: float) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(int(16000 * seconds)))
    return buf.getvalue()


@pytest.mark.parametrize(
    "policy, purpose, records",
    [("all", "service", True), ("marketing", "service", False), ("marketing", "marketing", True),
     ("none", "marketing", False), ("none", "training", True)],
)
def test_which_calls_are_recorded(policy: str, purpose: str, records: bool) -> None:
    assert RecordingPolicy(record=policy).records(purpose) is records


@pytest.mark.parametrize(
    "notice, purpose, notifies",
    [("all", "service", True), ("marketing", "service", False), ("service", "service", True),
     ("none", "marketing", False), ("all", "training", False)],
)
def test_which_calls_carry_the_notice(notice: str, purpose: str, notifies: bool) -> None:
    assert RecordingPolicy(notice=notice).notifies(purpose) is notifies


def test_a_bad_policy_names_the_setting() -> None:
    with pytest.raises(PolicyError, match=r"\[recording\] policy: 'some'"):
        RecordingPolicy(record="some")


def test_files_are_named_by_utc_date_and_call_id() -> None:
    at = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 23:30 UTC on the 28th
    assert relative_path("livecall-pbx-1.2", at) == "2026/03/28/livecall-pbx-1.2.wav"
    assert relative_path("../x/y", at) == "2026/03/28/.._x_y.wav"
    with pytest.raises(ValueError):
        relative_path("a", dt.datetime(2026, 1, 1))


@given(st.floats(min_value=0, max_value=30))
def test_duration_is_read_from_the_wav_header(seconds: float) -> None:
    data = wav_bytes(seconds)
    assert abs(wav_duration_ms(data) - seconds * 1000) <= 1
    facts = audio_facts(data)
    assert facts.size_bytes == len(data) and len(facts.sha256) == 64


def test_a_file_that_is_not_a_wav_has_no_duration() -> None:
    assert wav_duration_ms(b"not audio at all") == 0
