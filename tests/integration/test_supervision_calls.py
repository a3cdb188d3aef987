"""Live supervision against the real sandbox, checked by audio.

sipp plays the agent (sending 600 Hz) on a call to the simulated PSTN's tone line (sending
1400 Hz), and the supervisor (sending 1000 Hz) who dials a feature code or is rung by the API.
What the agent and the supervisor receive is captured as RTP off loopback; what the far end
hears is the PSTN's own recording. Goertzel says who heard whom.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from livecall_ari.config import load
from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, call
from tests.integration.supervision_harness import (
    AGENT_HZ,
    FAR_END_HZ,
    SUPERVISOR_HZ,
    TONE_NUMBER,
    Party,
    channel_names,
    free_port_block,
    recorded_samples,
    register,
    seconds_with_tone,
    start_party,
    wait_until_heard,
    wav_samples,
)

pytestmark = pytest.mark.sandbox

CODES = {"listen": "*222", "whisper": "*223", "barge": "*224"}
SUPERVISE_ENV = {
    "LIVECALL_GATE_DECIDER": "static",
    "LIVECALL_SUPERVISION_SUPERVISORS": "2001",
    "LIVECALL_SUPERVISION_TEAMS": "sales: 2001 1001 1002",
    "LIVECALL_SUPERVISION_OWN_TEAM_ONLY": "true",
}
# Seconds of a tone that count as heard, and the most that counts as not heard (a stray 100 ms
# block of spectral leakage is tolerated, a path is not).
HEARD = 2.0
NOT_HEARD = 0.3


@dataclass
class Supervised:
    agent: Party
    supervisor: Party
    far_end_heard: list[int]


def _rows(service: Service, table: str) -> list[dict[str, Any]]:
    con = sqlite3.connect(service.db_path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        con.close()


def _events(service: Service, session: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e["event"], e["mode"], json.loads(e["detail"])) for e in _rows(service, "supervision_events")
            if e["session"] == session]


def _heard_files(sandbox: SandboxInfo) -> set[Path]:
    return set(sandbox.heard_dir.glob(f"{TONE_NUMBER}-*-heard.wav"))


def _finished_wav(path: Path) -> list[int]:
    sizes: list[int] = []

    def settled() -> bool:
        sizes.append(path.stat().st_size)
        return len(sizes) > 2 and sizes[-1] == sizes[-3] and sizes[-1] > 44

    until(settled, timeout=15, interval=0.3, what=f"{path.name} to be complete")
    return wav_samples(path)


def _hang_up_agent(sandbox: SandboxInfo) -> None:
    names = channel_names(sandbox.rx("core show channels concise"), "1001")
    assert names, "the agent's call is not up"
    for name in names:
        sandbox.rx(f"channel request hangup {name}")


def _start_agent(sandbox: SandboxInfo) -> Party:
    agent = start_party("agent", "supervision_party.xml", pbx=sandbox.data["sip"], hz=AGENT_HZ, user="1001",
                        password=sandbox.password("1001"), service=TONE_NUMBER)
    # Connected to the far end once its tone arrives (after the recording notice, if any).
    wait_until_heard(agent, FAR_END_HZ, timeout=60, what="the agent to hear the far end")
    return agent


def _finish(sandbox: SandboxInfo, agent: Party, supervisor: Party, before: set[Path]) -> Supervised:
    _hang_up_agent(sandbox)
    assert agent.wait(30) == 0, agent.errors()
    # ChanSpy(E) ends with the agent's call: Asterisk hangs the supervisor up.
    assert supervisor.wait(30) == 0, supervisor.errors()
    [heard] = until(lambda: _heard_files(sandbox) - before, what="the far end's recording")
    return Supervised(agent, supervisor, _finished_wav(heard))


@pytest.fixture
def parties() -> Iterator[list[Party]]:
    started: list[Party] = []
    yield started
    for party in started:
        party.cleanup()


def _supervise_by_feature_code(sandbox: SandboxInfo, parties: list[Party], mode: str, scenario: str = "supervision_party.xml") -> Supervised:
    before = _heard_files(sandbox)
    agent = _start_agent(sandbox)
    parties.append(agent)
    supervisor = start_party("supervisor", scenario, pbx=sandbox.data["sip"], hz=SUPERVISOR_HZ, user="2001",
                             password=sandbox.password("2001"), service=CODES[mode] + "1001")
    parties.append(supervisor)
    wait_until_heard(supervisor, AGENT_HZ, seconds=4, timeout=30, what="the supervisor to hear the agent")
    return _finish(sandbox, agent, supervisor, before)


# Who hears the supervisor, by mode: (the agent, the far end).
EXPECTED = {"listen": (False, False), "whisper": (True, False), "barge": (True, True)}


@pytest.mark.parametrize("mode", ["listen", "whisper", "barge"])
def test_feature_code_modes_route_audio_as_the_mode_says(sandbox: SandboxInfo, make_service, parties: list[Party], mode: str) -> None:
    service = make_service(**SUPERVISE_ENV)

    s = _supervise_by_feature_code(sandbox, parties, mode)

    # The supervisor sent their tone and heard both parties, whatever the mode.
    assert s.supervisor.capture.said(SUPERVISOR_HZ) >= HEARD
    assert s.supervisor.capture.heard(AGENT_HZ) >= HEARD
    assert s.supervisor.capture.heard(FAR_END_HZ) >= HEARD
    # The call itself went on: each party heard the other throughout.
    assert s.agent.capture.heard(FAR_END_HZ) >= HEARD
    assert seconds_with_tone(s.far_end_heard, AGENT_HZ) >= HEARD
    agent_hears, far_end_hears = EXPECTED[mode]
    agent_heard_supervisor = s.agent.capture.heard(SUPERVISOR_HZ)
    far_end_heard_supervisor = seconds_with_tone(s.far_end_heard, SUPERVISOR_HZ)
    assert (agent_heard_supervisor >= HEARD) is agent_hears, agent_heard_supervisor
    assert (far_end_heard_supervisor >= HEARD) is far_end_hears, far_end_heard_supervisor
    if not agent_hears:
        assert agent_heard_supervisor <= NOT_HEARD
    if not far_end_hears:
        assert far_end_heard_supervisor <= NOT_HEARD

    # The audit matches: one session on the agent's call (the gate's call id), start and end.
    [decision] = service.decisions()
    [row] = _rows(service, "supervision_sessions")
    assert (row["supervisor"], row["agent"], row["origin"], row["mode"], row["status"], row["end_reason"]) == (
        "2001", "1001", "phone", mode, "ended", "call_ended")
    assert row["call_id"] == decision["call_id"]
    assert row["started_at"] and row["ended_at"] and row["started_at"] <= row["ended_at"]
    assert [(e, m) for e, m, _ in _events(service, row["id"])] == [
        ("authorised", mode), ("started", mode), ("ended", mode)]
    # Barge audio is part of the call, so it is recorded; listening and whispering are not.
    if mode == "barge":
        assert row["recording"], "a barge must be recorded"
        recording = Path(sandbox.data["chroot"]) / row["recording"].lstrip("/")
        assert seconds_with_tone(recorded_samples(service.env, recording), SUPERVISOR_HZ) >= HEARD
    else:
        assert row["recording"] is None


def test_pressing_5_switches_listen_to_whisper_and_the_switch_is_audited(sandbox: SandboxInfo, make_service, parties: list[Party]) -> None:
    service = make_service(**SUPERVISE_ENV)
    before = _heard_files(sandbox)
    agent = _start_agent(sandbox)
    parties.append(agent)
    supervisor = start_party("supervisor", "supervision_switch.xml", pbx=sandbox.data["sip"], hz=SUPERVISOR_HZ,
                             user="2001", password=sandbox.password("2001"), service="*2221001")
    parties.append(supervisor)

    wait_until_heard(supervisor, AGENT_HZ, seconds=2, timeout=30)
    [row] = until(lambda: [r for r in _rows(service, "supervision_sessions") if r["mode"] == "whisper"], timeout=15,
                  what="the switch to whisper")
    switched_at = time.monotonic()
    wait_until_heard(agent, SUPERVISOR_HZ, seconds=2, timeout=15, what="the agent to hear the whisper")
    s = _finish(sandbox, agent, supervisor, before)

    # Before the switch the agent heard nothing of the supervisor; after it, the whisper.
    assert s.agent.capture.heard(SUPERVISOR_HZ) - s.agent.capture.heard(SUPERVISOR_HZ, since=switched_at - 1) <= NOT_HEARD
    assert seconds_with_tone(s.far_end_heard, SUPERVISOR_HZ) <= NOT_HEARD
    events = _events(service, row["id"])
    assert [(e, m) for e, m, _ in events] == [
        ("authorised", "listen"), ("started", "listen"), ("switched", "whisper"), ("ended", "whisper")]
    assert events[2][2]["from"] == "listen" and events[2][2]["to"] == "whisper"


def test_an_unauthorised_extension_is_refused_and_the_refusal_is_audited(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(**SUPERVISE_ENV)

    result = call(sandbox, "*2221001", agent="2002", scenario="agent_call_refused.xml")

    assert result.returncode == 0, result.errors
    assert "SIP/2.0 403 Forbidden" in result.messages and "Reason: Q.850;cause=21" in result.messages
    [row] = _rows(service, "supervision_sessions")
    assert (row["supervisor"], row["agent"], row["status"], row["reasons"]) == ("2002", "1001", "refused", "not_supervisor")
    assert [e for e, _, _ in _events(service, row["id"])] == ["refused"]
    # A supervisor outside the agent's team is refused too.
    result = call(sandbox, "*2231003", agent="2001", scenario="agent_call_refused.xml")
    assert "SIP/2.0 403 Forbidden" in result.messages
    assert [r["reasons"] for r in _rows(service, "supervision_sessions")] == ["not_supervisor", "not_in_team"]


def test_with_the_service_down_nobody_may_supervise(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(**SUPERVISE_ENV)
    service.stop()

    result = call(sandbox, "*2221001", agent="2001", scenario="agent_call_refused.xml")

    assert result.returncode == 0, result.errors
    assert "SIP/2.0 403 Forbidden" in result.messages and "Reason: Q.850;cause=21" in result.messages


def test_the_api_rings_the_supervisor_and_joins_them_in_whisper_mode(sandbox: SandboxInfo, make_service, parties: list[Party]) -> None:
    token = secrets.token_urlsafe(16)
    service = make_service(**SUPERVISE_ENV, LIVECALL_WEB_API_TOKEN=token)
    web = load().web
    api = f"http://{web.host}:{web.port}/api/supervision/sessions"
    auth = {"Authorization": f"Bearer {token}"}
    until(lambda: _answers(api, auth), timeout=15, what="the API")
    before = _heard_files(sandbox)
    agent = _start_agent(sandbox)
    parties.append(agent)
    sip_port = free_port_block(1)
    register(sandbox.data["sip"], "2001", sandbox.password("2001"), sip_port, expires=120)
    try:
        phone = start_party("supervisor-phone", "supervision_phone.xml", pbx=sandbox.data["sip"], hz=SUPERVISOR_HZ,
                            user="2001", password=sandbox.password("2001"), sip_port=sip_port)
        parties.append(phone)
        refused = httpx.post(api, headers=auth, json={"supervisor": "2002", "agent": "1001", "mode": "whisper"})
        assert refused.status_code == 403 and refused.json()["reasons"] == ["not_supervisor"]

        created = httpx.post(api, headers=auth, json={"supervisor": "2001", "agent": "1001", "mode": "whisper"})

        assert created.status_code == 201, created.text
        session = created.json()
        assert (session["status"], session["origin"], session["mode"]) == ("ringing", "api", "whisper")
        wait_until_heard(phone, AGENT_HZ, seconds=3, timeout=30, what="the rung supervisor to hear the agent")
        wait_until_heard(agent, SUPERVISOR_HZ, seconds=2, timeout=15, what="the agent to hear the whisper")
        s = _finish(sandbox, agent, phone, before)
    finally:
        # The phone's port is free again once its sipp has ended.
        register(sandbox.data["sip"], "2001", sandbox.password("2001"), sip_port, expires=0)

    assert s.supervisor.capture.heard(FAR_END_HZ) >= HEARD
    assert seconds_with_tone(s.far_end_heard, SUPERVISOR_HZ) <= NOT_HEARD
    listed = httpx.get(api, headers=auth).json()["sessions"]
    by_id = {x["id"]: x for x in listed}
    mine = by_id[session["id"]]
    assert (mine["status"], mine["end_reason"], mine["call_id"]) == ("ended", "call_ended", service.decisions()[0]["call_id"])
    assert [e["event"] for e in mine["events"]] == ["authorised", "answered", "started", "ended"]
    assert httpx.get(api).status_code == 401


def _answers(url: str, headers: dict[str, str]) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
