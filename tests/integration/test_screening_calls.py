"""Screening in the real call path: TPS, consent and objections decide what connects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from livecall_ari.screening.hours import BankHolidays
from tests.integration.harness import SandboxInfo, Service, call, livecall

pytestmark = pytest.mark.sandbox

ON_TPS = "02079460999"
NOT_LISTED = "02079460018"
NATIONS = ("England", "Scotland", "Wales", "Northern Ireland")


def _open_for_marketing(tmp_path: Path) -> dict[str, str]:
    """Settings under which the calling-hours rules cannot refuse a call made now.

    Tests run at any hour; rather than fake the clock (the service reads the real one), pick a
    fixed-offset zone where it is now about midday and a nation with no bank holiday today.
    """
    now = dt.datetime.now(dt.timezone.utc)
    offset = 12 - now.hour  # Etc/GMT-N is N hours ahead of UTC
    offset = max(-12, min(14, offset))
    zone = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    local_day = now.astimezone(ZoneInfo(zone)).date()
    nation = next((n for n in NATIONS if BankHolidays(n).name(local_day) is None), None)
    if nation is None:
        pytest.skip(f"{local_day} is a bank holiday in every UK nation: marketing calls are refused today")
    return {
        "LIVECALL_SCREENING_TIMEZONE": zone,
        "LIVECALL_SCREENING_CALLING_DAYS": "mon-sun",
        "LIVECALL_SCREENING_CALLING_START": "06:00",
        "LIVECALL_SCREENING_CALLING_END": "18:00",
        "LIVECALL_SCREENING_NATION": nation,
        "LIVECALL_SCREENING_LISTS_DIR": str(tmp_path / "lists"),
        "LIVECALL_GATE_DECIDER": "screening",
    }


@pytest.fixture
def screened(make_service, tmp_path: Path) -> Service:  # type: ignore[no-untyped-def]
    """`livecall serve` with the screening rules, a fresh TPS (one number) and CTPS."""
    env = _open_for_marketing(tmp_path)
    service: Service = make_service(**env)
    today = dt.date.today().isoformat()
    tps = tmp_path / "tps.txt"
    tps.write_bytes(f"{ON_TPS[:4]:<5}{ON_TPS[4:]:>7}\r\n".encode())
    ctps = tmp_path / "ctps.txt"
    ctps.write_bytes(b"01614960000 \r\n")
    livecall("lists", "import", "tps", str(tps), "--list-date", today, env=service.env)
    livecall("lists", "import", "ctps", str(ctps), "--list-date", today, env=service.env)
    return service


def _prompt_seconds(sandbox: SandboxInfo, name: str) -> float:
    return (Path(sandbox.data["chroot"]) / "usr/share/asterisk/sounds/livecall" / f"{name}.ulaw").stat().st_size / 8000


def test_a_tps_listed_number_is_blocked_with_its_spoken_reason(sandbox: SandboxInfo, screened: Service) -> None:
    result = call(sandbox, ON_TPS, scenario="agent_call_refused.xml")

    assert result.returncode == 0, result.errors
    assert result.refused_cause == 21
    [row] = screened.decisions()
    assert (row["decision"], row["reasons"], row["number"]) == ("block", "tps", "+442079460999")
    assert '"tps_version"' in row["evidence"]
    [spoken_ms] = result.rtd("reason")
    assert spoken_ms / 1000 == pytest.approx(_prompt_seconds(sandbox, "reason-tps"), abs=0.6)


def test_the_same_number_with_consent_connects(sandbox: SandboxInfo, screened: Service) -> None:
    livecall("consent", "add", ON_TPS, "--evidence", "web form 2026-11-01, ref 4411", env=screened.env)

    result = call(sandbox, ON_TPS, hold_ms=500)

    assert result.returncode == 0, result.errors
    assert result.answered
    [row] = screened.decisions()
    assert (row["decision"], row["reasons"]) == ("allow", "")
    assert '"consent_id"' in row["evidence"]


def test_a_number_objected_to_while_the_service_runs_is_blocked_on_the_next_call(sandbox: SandboxInfo, screened: Service) -> None:
    first = call(sandbox, NOT_LISTED, hold_ms=300)
    livecall("objections", "add", NOT_LISTED, "--reason", "asked us not to call again", env=screened.env)
    second = call(sandbox, NOT_LISTED, scenario="agent_call_refused.xml")

    assert first.returncode == 0 and first.answered, first.errors
    assert second.returncode == 0, second.errors
    assert second.refused_cause == 21
    assert [(r["decision"], r["reasons"]) for r in screened.decisions()] == [("allow", ""), ("block", "objection")]


def test_service_calls_are_not_gated_by_the_tps_but_their_purpose_is_recorded(sandbox: SandboxInfo, screened: Service) -> None:
    result = call(sandbox, ON_TPS, agent="1002", hold_ms=300)  # 1002's endpoint sets purpose=service

    assert result.returncode == 0 and result.answered, result.errors
    [row] = screened.decisions()
    assert (row["purpose"], row["decision"]) == ("service", "allow")
