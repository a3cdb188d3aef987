"""Recording against the sandbox: the notice the called party hears, MixMonitor's file, the
decline and objection keys, unanswered calls, pauses and role-play."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import until
from tests.integration import audio
from tests.integration.harness import (
    SandboxInfo, Service, answering_phone, call, livecall, load_fresh_lists, open_for_marketing,
)

pytestmark = pytest.mark.sandbox

TALKATIVE = "02079460710"  # the PSTN repeats its greeting for as long as the call lasts
DECLINES = "02079460901"  # presses 1 during the notice
OBJECTS = "02079460902"  # presses 2 during the notice
NEVER_ANSWERS = "07700900999"


def recordings(service: Service) -> list[dict[str, Any]]:
    """This test's recordings (the service also registers older files it finds on disk)."""
    return service.rows("SELECT * FROM recordings WHERE started_at >= ? ORDER BY id", (service.started_at,))


def rows(service: Service, table: str) -> list[dict[str, Any]]:
    return service.rows(f"SELECT * FROM {table} ORDER BY id")


def host(sandbox: SandboxInfo, asterisk_path: str) -> Path:
    return Path(sandbox.data["chroot"]) / asterisk_path.lstrip("/")


def prompt(sandbox: SandboxInfo, name: str) -> audio.Samples:
    return audio.read_ulaw(Path(sandbox.data["chroot"]) / "usr/share/asterisk/sounds" / f"{name}.ulaw")


def finished(service: Service, n: int = 1) -> list[dict[str, Any]]:
    return until(lambda: len(r := [x for x in recordings(service) if x["state"] != "recording"]) >= n and r,
                 timeout=20, what="the recording to be finished")


@pytest.fixture
def recorded(make_service: Any) -> Service:
    # These tests read MixMonitor's WAVs sample by sample, so they keep them as recorded; a new
    # install's stored objects (Opus, sealed) are tested in test_recording_compact_sandbox.py.
    return make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_RECORDING_FORMAT="wav",  # type: ignore[no-any-return]
                        LIVECALL_PROTECTION_ENCRYPT_RECORDINGS="false")


def test_the_called_party_hears_the_notice_first_and_the_recording_holds_it_and_both_parties(
    sandbox: SandboxInfo, recorded: Service
) -> None:
    before = set(sandbox.heard_dir.glob(f"{TALKATIVE}-*-heard.wav"))
    hold_s = 4
    result = call(sandbox, TALKATIVE, agent="1002", hold_ms=hold_s * 1000)
    assert result.answered, result.errors

    notice = prompt(sandbox, "livecall/notice")
    notice_s = len(notice) / audio.RATE
    # What the called party heard starts with the notice.
    [heard_file] = until(lambda: set(sandbox.heard_dir.glob(f"{TALKATIVE}-*-heard.wav")) - before, what="the PSTN's recording")
    # The PSTN's MixMonitor may still be closing it: its header is whole only once closed.
    until(lambda: audio.samples_when_complete(heard_file) > notice_s * audio.RATE, what="the notice in it")
    heard = audio.read_wav(heard_file)
    r, lag = audio.best_match(heard, notice)
    assert r > 0.8 and lag < 0.5, (r, lag)

    [row] = finished(recorded)
    # The recording's basis is its own: a service call rests on contract, its recording does not.
    assert row["state"] == "complete" and row["purpose"] == "service" and row["lawful_basis"] == "legitimate_interests"
    assert row["retention_until"] is not None
    mixed_file = host(sandbox, row["file"])
    mixed = audio.read_wav(mixed_file)
    inbound, outbound = (audio.read_wav(mixed_file.with_name(mixed_file.stem + f"-{leg}.wav")) for leg in ("in", "out"))
    # The recording starts with the notice too (clearest in the leg the called party hears;
    # in the mix it overlaps their greeting), and lasts the whole call.
    r, lag = audio.best_match(outbound, notice)
    assert r > 0.8 and lag < 0.5, (r, lag)
    # (0.57 to 0.66 seen on a loaded machine with the shorter notice of an unnamed organisation;
    # a mix with no notice in it scores about 0.)
    assert audio.best_match(mixed, notice)[0] > 0.45
    assert row["duration_ms"] / 1000 == pytest.approx(notice_s + 1 + hold_s, abs=1.5)
    # Both parties are in it: each leg has speech after the notice, and the mix is their sum.
    after = slice(int((notice_s + 1.5) * audio.RATE), None)
    assert audio.rms(inbound[after]) > 300 and audio.rms(outbound[after]) > 300
    n = min(len(mixed), len(inbound), len(outbound))
    summed = np.clip(inbound[:n] + outbound[:n], -32768, 32767)
    assert float(np.corrcoef(mixed[:n], summed)[0, 1]) > 0.95
    # Checksum and size as stored; `recordings verify` agrees.
    import hashlib

    assert hashlib.sha256(mixed_file.read_bytes()).hexdigest() == row["sha256"]
    assert mixed_file.stat().st_size == row["size_bytes"]
    out = livecall("recordings", "verify", env=recorded.env).stdout
    assert ", 0 missing or changed" in out, out
    [notice_row] = rows(recorded, "recording_notices")
    assert (notice_row["prompt"], notice_row["played"], notice_row["outcome"], notice_row["key_pressed"]) == (
        "livecall/notice", 1, "heard", "")
    assert notice_row["duration_ms"] / 1000 == pytest.approx(notice_s + 1, abs=1.0)


def test_a_changed_file_fails_verification(sandbox: SandboxInfo, recorded: Service) -> None:
    assert call(sandbox, "02079460018", agent="1002", hold_ms=500).answered
    [row] = finished(recorded)
    path = host(sandbox, row["file"])
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    result = livecall("recordings", "verify", env=recorded.env, check=False)
    assert result.returncode == 1 and f"CHANGED: recording {row['id']} " in result.stdout


def test_the_decline_key_leaves_no_audio_of_the_call(sandbox: SandboxInfo, recorded: Service) -> None:
    result = call(sandbox, DECLINES, agent="1002", hold_ms=2000)

    assert result.answered, result.errors  # the call goes on, unrecorded
    [row] = finished(recorded)
    assert row["state"] == "declined" and row["file"] is None
    day_dir = host(sandbox, "/var/spool/asterisk/monitor/livecall")
    assert not list(day_dir.glob(f"*/*/*/{row['call_id']}*")), "audio of a declined call was kept"
    [notice] = rows(recorded, "recording_notices")
    assert (notice["key_pressed"], notice["outcome"]) == ("1", "declined")


def test_the_objection_key_lists_the_number_and_the_next_marketing_call_is_blocked(
    sandbox: SandboxInfo, make_service: Any, tmp_path: Path
) -> None:
    service: Service = make_service(**open_for_marketing(tmp_path))
    load_fresh_lists(service, tmp_path)

    first = call(sandbox, OBJECTS, scenario="agent_call_refused.xml")  # ends after the objection
    second = call(sandbox, OBJECTS, scenario="agent_call_refused.xml")

    assert first.refused_cause == 21 and second.refused_cause == 21, first.errors + second.errors
    decisions = service.decisions()
    assert [(d["decision"], d["reasons"]) for d in decisions] == [("allow", ""), ("block", "objection")]
    [notice] = rows(service, "recording_notices")
    assert (notice["key_pressed"], notice["outcome"]) == ("2", "objected")
    listed = livecall("objections", "list", "--json", env=service.env).stdout
    assert "+442079460902" in listed and decisions[0]["call_id"] in listed


def test_an_unanswered_call_leaves_no_file(sandbox: SandboxInfo, recorded: Service) -> None:
    rec_root = host(sandbox, "/var/spool/asterisk/monitor/livecall")
    before = set(rec_root.glob("*/*/*/*.wav"))

    result = call(sandbox, NEVER_ANSWERS, scenario="agent_call_cancelled.xml", hold_ms=2000)

    assert result.returncode == 0, result.errors
    [decision] = recorded.decisions()
    assert decision["decision"] == "allow"
    assert set(rec_root.glob("*/*/*/*.wav")) == before
    assert recordings(recorded) == []


def test_a_paused_stretch_is_silent_in_the_recording(sandbox: SandboxInfo, recorded: Service) -> None:
    result = call(sandbox, TALKATIVE, agent="1002", scenario="agent_call_pause.xml")

    assert result.returncode == 0, result.errors
    [row] = finished(recorded)
    mixed = audio.read_wav(host(sandbox, row["file"]))
    notice_s = len(prompt(sandbox, "livecall/notice")) / audio.RATE
    quiet = [(a, b) for a, b in audio.silent_stretches(mixed, min_s=2.0) if a > notice_s]
    assert len(quiet) == 1, quiet
    start, end = quiet[0]
    assert end - start == pytest.approx(3.4, abs=0.7)
    # Outside the pause the talkative far end is always audible.
    assert audio.rms(mixed[int((notice_s + 1.2) * audio.RATE):int(start * audio.RATE)]) > 300
    [pause] = rows(recorded, "recording_pauses")
    assert pause["resumed_at"] is not None and pause["by"] == "1002"


# Role-play reaches an extension of any length an admin uses, 2 to 6 digits (issue 15 part 7).
@pytest.mark.parametrize("delegate", ["1002", "42", "123456"])
def test_a_role_play_call_is_recorded_tagged_training_and_not_screened(
        sandbox: SandboxInfo, recorded: Service, delegate: str) -> None:
    phone = answering_phone(sandbox, delegate)

    result = call(sandbox, f"*8{delegate}", agent="1001", hold_ms=2000)

    assert result.answered, result.errors
    assert phone.wait(timeout=30).returncode == 0
    [row] = finished(recorded)
    assert (row["purpose"], row["tags"], row["agent"], row["number"], row["state"]) == (
        "training", "training", "1001", delegate, "complete")
    assert row["lawful_basis"] == "legitimate_interests" and row["retention_until"] is not None
    assert row["duration_ms"] / 1000 == pytest.approx(2, abs=1.0)
    assert recorded.decisions() == [], "a role-play call was screened"


def test_a_transferred_call_stays_in_one_recording(sandbox: SandboxInfo, recorded: Service) -> None:
    colleague = answering_phone(sandbox, "1003", hang_up_after_ms=3000)

    result = call(sandbox, TALKATIVE, agent="1002", scenario="agent_call_transfer.xml", hold_ms=2000,
                  keys={"transfer_to": "1003"})

    assert result.returncode == 0, result.errors
    assert "SIP/2.0 202" in result.messages
    assert colleague.wait(timeout=40).returncode == 0
    [row] = finished(recorded)
    notice_s = len(prompt(sandbox, "livecall/notice")) / audio.RATE
    # Notice, two seconds with the first agent, three with the colleague: all in one file.
    assert row["duration_ms"] / 1000 == pytest.approx(notice_s + 1 + 2 + 3, abs=2.0)
    mixed_file = host(sandbox, row["file"])
    outbound = audio.read_wav(mixed_file.with_name(mixed_file.stem + "-out.wav"))
    # The called party heard an agent's voice after the transfer too (the colleague's phone).
    late = outbound[int((notice_s + 1 + 2.5) * audio.RATE):]
    assert audio.rms(late) > 300
    rec_root = host(sandbox, "/var/spool/asterisk/monitor/livecall")
    assert len([p for p in rec_root.glob(f"*/*/*/{row['call_id']}*.wav")]) == 3  # mixed, -in, -out
