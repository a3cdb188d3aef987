"""The outbound call path against the real sandbox: sipp as agent 1001 (digest auth) →
PJSIP → LiveCall's gate → trunk → the simulated PSTN."""

from __future__ import annotations

import signal
import time
import wave
from pathlib import Path

import pytest

from livecall_ari.config import load
from tests.conftest import until
from tests.integration.harness import SandboxInfo, call, start_call

pytestmark = pytest.mark.sandbox

BLOCKED = "07700900123"
ALLOWED = "02079460018"


def _heard_files(sandbox: SandboxInfo, number: str) -> set[Path]:
    digits = number.lstrip("+")
    return set(sandbox.heard_dir.glob(f"{digits}-*-heard.wav"))


def _prompt_seconds(sandbox: SandboxInfo, name: str) -> float:
    ulaw = Path(sandbox.data["chroot"]) / "usr/share/asterisk/sounds/livecall" / f"{name}.ulaw"
    return ulaw.stat().st_size / 8000


def test_allowed_call_is_decided_reaches_the_pstn_and_is_answered(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_GATE_BLOCK_NUMBERS=BLOCKED)
    before = _heard_files(sandbox, ALLOWED)

    result = call(sandbox, ALLOWED, hold_ms=2000)

    assert result.returncode == 0, result.errors
    assert "SIP/2.0 200 OK" in result.messages
    [row] = service.decisions()
    assert (row["decision"], row["agent"], row["dialled"], row["purpose"], row["entry"]) == (
        "allow", "1001", ALLOWED, "marketing", "stasis"
    )
    assert row["caller_id"] == (load().organisation.caller_id or "anonymous")
    # The far end answered and recorded what it heard for about as long as the call was up.
    [heard] = until(lambda: _heard_files(sandbox, ALLOWED) - before, what="the PSTN's recording")
    until(lambda: heard.stat().st_size > 44, what="audio in the PSTN's recording")
    with wave.open(str(heard)) as w:
        assert w.getnframes() / w.getframerate() > 1.0
    assert '"decision": "allow"' in service.log


def test_blocked_call_hears_the_reason_and_ends_with_cause_21(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_GATE_BLOCK_NUMBERS=BLOCKED)
    before = _heard_files(sandbox, BLOCKED)

    result = call(sandbox, BLOCKED, scenario="agent_call_refused.xml")

    assert result.returncode == 0, result.errors
    assert "SIP/2.0 403 Forbidden" in result.messages
    assert "Reason: Q.850;cause=21" in result.messages
    # The reason is played as early media between 183 and 403: as long as the prompt.
    [reason_ms] = result.rtd("reason")
    assert reason_ms / 1000 == pytest.approx(_prompt_seconds(sandbox, "reason-blocked"), abs=0.6)
    [row] = service.decisions()
    assert (row["decision"], row["reasons"], row["number"]) == ("block", "blocked", BLOCKED)
    assert _heard_files(sandbox, BLOCKED) == before, "a blocked call must never reach the PSTN"


def test_fastagi_entry_reaches_the_same_decision(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_GATE_BLOCK_NUMBERS=BLOCKED)

    allowed = call(sandbox, ALLOWED, agent="1003", hold_ms=500)
    blocked = call(sandbox, BLOCKED, agent="1003", scenario="agent_call_refused.xml")

    assert allowed.returncode == 0, allowed.errors
    assert blocked.returncode == 0, blocked.errors
    assert "Reason: Q.850;cause=21" in blocked.messages
    rows = service.decisions()
    assert [(r["entry"], r["agent"], r["decision"], r["reasons"]) for r in rows] == [
        ("agi", "1003", "allow", ""),
        ("agi", "1003", "block", "blocked"),
    ]


def test_with_the_service_stopped_a_marketing_call_is_refused_and_999_connects(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(LIVECALL_GATE_DECIDER="static")
    service.stop()
    before = _heard_files(sandbox, ALLOWED)

    refused = call(sandbox, ALLOWED, scenario="agent_call_refused.xml")
    refused_agi = call(sandbox, ALLOWED, agent="1003", scenario="agent_call_refused.xml")
    emergency = call(sandbox, "999", hold_ms=500)

    assert refused.returncode == 0, refused.errors
    assert refused_agi.returncode == 0, refused_agi.errors
    assert "SIP/2.0 403 Forbidden" in refused.messages
    [spoken_ms] = refused.rtd("reason")
    assert spoken_ms / 1000 == pytest.approx(_prompt_seconds(sandbox, "gate-unavailable"), abs=0.6)
    assert _heard_files(sandbox, ALLOWED) == before, "an unscreened call reached the PSTN"
    assert emergency.returncode == 0, emergency.errors
    assert "SIP/2.0 200 OK" in emergency.messages
    assert until(lambda: _heard_files(sandbox, "999"), what="the 999 call at the PSTN")


def test_after_core_restart_the_service_reconnects_and_screens_again(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_GATE_BLOCK_NUMBERS=BLOCKED)

    sandbox.rx("core restart now")
    until(lambda: not service.app_registered(), timeout=10, what="Asterisk to go down")
    until(service.registered, timeout=30, what="the service to re-register after the restart")
    result = call(sandbox, BLOCKED, scenario="agent_call_refused.xml")

    assert result.returncode == 0, result.errors
    assert [r["decision"] for r in service.decisions()] == ["block"]
    assert service.proc is not None and service.proc.poll() is None


def test_killing_the_service_mid_call_leaves_the_connected_call_up(sandbox: SandboxInfo, make_service) -> None:
    service = make_service(LIVECALL_GATE_DECIDER="static")
    hold_ms = 5000
    running = start_call(sandbox, ALLOWED, hold_ms=hold_ms)
    until(lambda: service.decisions(), what="the decision")
    until(lambda: "Up" in sandbox.rx("core show channels concise"), what="the call to be answered")

    service.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    result = running.wait()

    assert result.returncode == 0, result.errors
    assert "SIP/2.0 200 OK" in result.messages
    # sipp hung up itself after holding the call, well after the service died.
    assert result.elapsed >= hold_ms / 1000
    assert time.monotonic() - killed_at > 2.0
