"""A recording's lawful basis against the sandbox (UK GDPR arts. 6, 7): its own, never its
call's consent; and the opt-in notice ([recording] notice_mode = "opt_in"), where a call is
recorded only when the called party presses 1, and then rests on their consent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, call, livecall

pytestmark = pytest.mark.sandbox

PRESSES_1 = "02079460901"  # the PSTN presses 1 during the notice
SILENT = "02079460710"  # presses nothing; talks for as long as the call lasts


def recordings(service: Service) -> list[dict[str, Any]]:
    return service.rows("SELECT * FROM recordings WHERE started_at >= ? ORDER BY id", (service.started_at,))


def notices(service: Service) -> list[dict[str, Any]]:
    return service.rows("SELECT * FROM recording_notices ORDER BY id")


def files_of(sandbox: SandboxInfo, call_id: str) -> list[Path]:
    return list((Path(sandbox.data["recordings_dir"])).glob(f"*/*/*/{call_id}*"))


def asterisk_ready() -> bool:
    """ARI answers (while Asterisk boots it answers 503)."""
    from livecall_ari.config import load

    s = load()
    try:
        return httpx.get(f"{s.ari.url}/ari/asterisk/info", auth=(s.ari.user, s.ari.password), timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def sandbox_up(**env: str) -> None:
    """Render the sandbox's configuration (with ``env``'s settings) and wait until Asterisk
    answers again: `sandbox up` may restart it, which takes seconds on a loaded machine."""
    livecall("sandbox", "up", env=env)
    until(asterisk_ready, timeout=90, what="the sandbox's Asterisk to answer after `sandbox up`")


@pytest.fixture
def opt_in(sandbox: SandboxInfo) -> Iterator[None]:
    """The sandbox's dialplan rendered with notice_mode = "opt_in", and back afterwards."""
    sandbox_up(LIVECALL_RECORDING_NOTICE_MODE="opt_in")
    try:
        yield
    finally:
        sandbox_up()


def test_a_recording_does_not_take_its_calls_consent_basis(sandbox: SandboxInfo, make_service: Any) -> None:
    # Service calls (agent 1002) rest on consent here; their recordings do not.
    service: Service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_PROTECTION_LAWFUL_BASES="service=consent")

    assert call(sandbox, "02079460018", agent="1002", hold_ms=500).answered

    [row] = until(lambda: [r for r in recordings(service) if r["state"] != "recording"], timeout=20, what="the recording")
    assert (row["state"], row["lawful_basis"], row["lawful_basis_reason"]) == (
        "complete", "legitimate_interests", "[protection] recording_lawful_basis")


def test_consent_as_a_recordings_basis_in_advance_is_refused(make_service: Any) -> None:
    with pytest.raises(AssertionError, match="recording_lawful_basis"):
        make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_PROTECTION_RECORDING_LAWFUL_BASIS="consent")


def test_opt_in_pressing_1_records_the_call_on_the_called_partys_consent(
    sandbox: SandboxInfo, make_service: Any, opt_in: None
) -> None:
    service: Service = make_service(LIVECALL_GATE_DECIDER="static")

    result = call(sandbox, PRESSES_1, agent="1002", hold_ms=2000)

    assert result.answered, result.errors
    [row] = until(lambda: [r for r in recordings(service) if r["state"] != "recording"], timeout=20, what="the recording")
    assert (row["state"], row["lawful_basis"]) == ("complete", "consent")
    assert row["lawful_basis_reason"] == "the called party pressed 1 to allow recording (livecall/notice-opt-in)"
    assert row["duration_ms"] >= 1500 and files_of(sandbox, row["call_id"])
    [notice] = notices(service)
    assert (notice["prompt"], notice["key_pressed"], notice["outcome"]) == ("livecall/notice-opt-in", "1", "consented")


def test_opt_in_without_a_key_the_call_goes_on_unrecorded(sandbox: SandboxInfo, make_service: Any, opt_in: None) -> None:
    service: Service = make_service(LIVECALL_GATE_DECIDER="static")

    result = call(sandbox, SILENT, agent="1002", hold_ms=2000)

    assert result.answered, result.errors  # connected, not recorded
    [notice] = until(lambda: notices(service), what="the notice's outcome")
    assert (notice["prompt"], notice["key_pressed"], notice["outcome"]) == ("livecall/notice-opt-in", "", "not_consented")
    [decision] = service.decisions()
    assert recordings(service) == [] and files_of(sandbox, decision["call_id"]) == []
