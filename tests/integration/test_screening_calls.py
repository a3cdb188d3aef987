"""Screening in the real call path: TPS, consent and objections decide what connects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.integration.harness import SandboxInfo, Service, call, livecall, load_fresh_lists, open_for_marketing

pytestmark = pytest.mark.sandbox

ON_TPS = "02079460999"
NOT_LISTED = "02079460018"


@pytest.fixture
def screened(make_service, tmp_path: Path) -> Service:  # type: ignore[no-untyped-def]
    """`livecall serve` with the screening rules, a fresh TPS (one number) and CTPS."""
    env = open_for_marketing(tmp_path)
    service: Service = make_service(**env)
    load_fresh_lists(service, tmp_path, tps=[ON_TPS])
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
