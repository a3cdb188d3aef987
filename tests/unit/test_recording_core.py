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
     ("marketing", "claims", True), ("marketing", "pensions", True), ("none", "marketing", False),
     ("none", "training", True)],
)
def test_which_calls_are_recorded(policy: str, purpose: str, records: bool) -> None:
    assert RecordingPolicy(record=policy).records(purpose) is records


@pytest.mark.parametrize(
    "notice, purpose, notifies",
    [("all", "service", True), ("marketing", "service", False), ("service", "service", True),
     ("marketing", "claims", True), ("marketing", "pensions", True), ("none", "marketing", False),
     ("all", "training", False)],
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


def test_a_recording_as_long_as_its_call_is_whole() -> None:
    from livecall_ari.recording.core import cut_short

    assert cut_short(60_000, 61_000, 10**10) is None
    assert cut_short(0, 2_500, 10**10) is None  # within the slack of a short call


def test_a_recording_much_shorter_than_its_call_is_cut_short() -> None:
    from livecall_ari.recording.core import DISK_FULL_BYTES, cut_short

    assert cut_short(4_093, 18_900, 10**10) == "4.1 s of audio for 18.9 s of recording"
    assert cut_short(4_093, 18_900, 0) == "4.1 s of audio for 18.9 s of recording; the recordings disk is full (0 bytes free)"
    assert cut_short(50_000, 60_000, 10**10) == "50.0 s of audio for 60.0 s of recording"  # beyond 10%
    assert cut_short(55_000, 60_000, DISK_FULL_BYTES - 1) is None  # the call is all there


def test_without_the_call_s_length_only_a_full_disk_casts_doubt() -> None:
    from livecall_ari.recording.core import DISK_FULL_BYTES, cut_short

    assert cut_short(1_000, None, DISK_FULL_BYTES) is None
    assert cut_short(1_000, None, 4096) == "the recordings disk is full (4,096 bytes free)"
