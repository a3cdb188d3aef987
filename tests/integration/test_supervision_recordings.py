"""A supervisor's recording follows the call's own (issue 15, part 6), against the real sandbox.

A barge is recorded on the supervisor's channel, apart from the call's recording: it must keep
nothing of a call whose called party declined, nothing of what was said while the agent had the
recording paused (card details), and it is found by subject access and removed by erasure like
the call's own. Checked on the files themselves, by tone (as test_supervision_calls.py does).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, livecall
from tests.integration.supervision_harness import (
    AGENT_HZ,
    FAR_END_HZ,
    SUPERVISOR_HZ,
    TONE_NUMBER,
    Party,
    channel_names,
    recorded_samples,
    seconds_with_tone,
    service_settings,
    start_party,
    wait_until_heard,
)

pytestmark = pytest.mark.sandbox

BARGE = "*224"
# The tone line's twin whose called party presses the decline key during the notice.
DECLINING_TONE_NUMBER = "02079460778"
SUPERVISE_ENV = {
    "LIVECALL_GATE_DECIDER": "static",
    "LIVECALL_SUPERVISION_SUPERVISORS": "2001",
    "LIVECALL_SUPERVISION_TEAMS": "sales: 2001 1001 1002",
    "LIVECALL_PROTECTION_ENCRYPT_RECORDINGS": "true",
}
HEARD = 2.0
NOT_HEARD = 0.3
RATE = 8000


@pytest.fixture
def parties() -> Iterator[list[Party]]:
    started: list[Party] = []
    yield started
    for party in started:
        party.cleanup()


def _sessions(service: Service) -> list[dict[str, Any]]:
    return service.rows("SELECT * FROM supervision_sessions ORDER BY requested_at")


def _agent(sandbox: SandboxInfo, parties: list[Party], number: str, scenario: str = "supervision_party.xml") -> Party:
    agent = start_party("agent", scenario, pbx=sandbox.data["sip"], hz=AGENT_HZ, user="1001",
                        password=sandbox.password("1001"), service=number)
    parties.append(agent)
    wait_until_heard(agent, FAR_END_HZ, timeout=60, what="the agent to hear the far end")
    return agent


def _barge(sandbox: SandboxInfo, parties: list[Party]) -> Party:
    supervisor = start_party("supervisor", "supervision_party.xml", pbx=sandbox.data["sip"], hz=SUPERVISOR_HZ,
                             user="2001", password=sandbox.password("2001"), service=BARGE + "1001")
    parties.append(supervisor)
    wait_until_heard(supervisor, AGENT_HZ, seconds=2, timeout=30, what="the supervisor to hear the agent")
    return supervisor


def _hang_up(sandbox: SandboxInfo, agent: Party, supervisor: Party) -> None:
    for name in channel_names(sandbox.rx("core show channels concise"), "1001"):
        sandbox.rx(f"channel request hangup {name}")
    assert agent.wait(30) == 0, agent.errors()
    assert supervisor.wait(30) == 0, supervisor.errors()


def _ended(service: Service) -> dict[str, Any]:
    [session] = until(lambda: [r for r in _sessions(service) if r["status"] == "ended"], timeout=20,
                      what="the supervision session to end")
    return session


def _host(sandbox: SandboxInfo, asterisk_path: str) -> Path:
    return Path(sandbox.data["chroot"]) / asterisk_path.lstrip("/")


def _at(value: Any) -> dt.datetime:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def test_a_barge_keeps_nothing_of_a_call_whose_called_party_declined(
        sandbox: SandboxInfo, make_service: Any, parties: list[Party]) -> None:
    service = make_service(**SUPERVISE_ENV)
    agent = _agent(sandbox, parties, DECLINING_TONE_NUMBER)
    [recording] = until(lambda: service.rows("SELECT * FROM recordings WHERE state = 'declined'"), timeout=20,
                        what="the called party's decline")

    supervisor = _barge(sandbox, parties)
    # The barge itself works: the far end hears the supervisor.
    wait_until_heard(agent, SUPERVISOR_HZ, seconds=1, timeout=20, what="the agent to hear the barge")
    _hang_up(sandbox, agent, supervisor)

    session = _ended(service)
    assert session["call_id"] == recording["call_id"]
    assert session["recording"] is None, "a barge on a declined call was recorded"
    folder = _host(sandbox, service_settings(service.env).recordings_dir()) / "supervision"
    assert not list(folder.glob(f"{session['id']}*")), "audio of a declined call's barge was kept"
    started = [json.loads(r["detail"]) for r in service.rows(
        "SELECT detail FROM supervision_events WHERE session = ? AND event = 'started'", (session["id"],))]
    assert started == [started[0]] and started[0]["recorded"] is False


def test_a_barge_while_the_agent_paused_the_recording_keeps_only_the_resumed_part(
        sandbox: SandboxInfo, make_service: Any, parties: list[Party]) -> None:
    service = make_service(**SUPERVISE_ENV)
    # The agent presses *7 three seconds after the answer and *9 nine seconds later.
    agent = _agent(sandbox, parties, TONE_NUMBER, scenario="supervision_party_pause.xml")
    until(lambda: service.rows("SELECT * FROM recording_pauses"), timeout=20, what="the agent's pause")

    supervisor = _barge(sandbox, parties)
    [pause] = until(lambda: service.rows("SELECT * FROM recording_pauses WHERE resumed_at IS NOT NULL"),
                    timeout=30, what="the agent's resume")
    # After the resume, the barge is recorded: let it run long enough to measure.
    resumed_at = time.monotonic()
    until(lambda: supervisor.capture.heard(FAR_END_HZ, since=resumed_at) >= 4, timeout=30,
          what="four seconds of the call after the resume")
    _hang_up(sandbox, agent, supervisor)

    session = _ended(service)
    assert session["recording"], "a barge on a recorded call must be recorded"
    samples = recorded_samples(service.env, _host(sandbox, session["recording"]))
    # The recording starts when the session does; the resume splits it.
    split = int((_at(pause["resumed_at"]) - _at(session["started_at"])).total_seconds() * RATE)
    assert split > RATE, f"the barge started {split / RATE:.1f} s before the resume: not while paused"
    margin = RATE // 2
    paused, resumed = samples[:max(0, split - margin)], samples[split + margin:]
    for hz in (AGENT_HZ, FAR_END_HZ, SUPERVISOR_HZ):
        assert seconds_with_tone(paused, hz) <= NOT_HEARD, f"{hz} Hz was recorded while the call was paused"
    # (The supervisor's channel carries the agent and the supervisor; the far end is in the
    # call's own recording.)
    for hz in (AGENT_HZ, SUPERVISOR_HZ):
        assert seconds_with_tone(resumed, hz) >= HEARD, f"{hz} Hz missing after the resume"


def test_subject_access_and_erasure_reach_a_barge_recording(
        sandbox: SandboxInfo, make_service: Any, parties: list[Party], tmp_path: Path) -> None:
    service = make_service(**SUPERVISE_ENV)
    agent = _agent(sandbox, parties, TONE_NUMBER)
    supervisor = _barge(sandbox, parties)
    wait_until_heard(agent, SUPERVISOR_HZ, seconds=2, timeout=20, what="the agent to hear the barge")
    _hang_up(sandbox, agent, supervisor)
    session = _ended(service)
    barge = _host(sandbox, session["recording"])
    recorded_samples(service.env, barge)  # finished (and sealed)

    export = tmp_path / "dsar.zip"
    livecall("dsar", "export", TONE_NUMBER, "--out", str(export), env=service.env)
    with zipfile.ZipFile(export) as zf:
        linked = [n for n in zf.namelist() if n.startswith("recordings/linked/")]
        assert linked == [f"recordings/linked/{barge.name}"], zf.namelist()
        # Exported as it was recorded (decrypted), a WAV file.
        assert zf.read(linked[0])[:4] == b"RIFF"

    livecall("erase", TONE_NUMBER, "--yes", env=service.env)
    assert not barge.exists(), "erasure left the barge recording on disk"
    [after] = [r for r in _sessions(service) if r["id"] == session["id"]]
    assert after["recording"] is None
