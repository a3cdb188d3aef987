"""Special numbers, pension calls and caller ID presentation through the real sandbox (issue 15
parts 1, 5 and 8). What matters is what reaches the simulated PSTN: it logs every SIP request it
receives, and the tests read the INVITEs there (Request-URI and From) beside the gate's decisions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, call, livecall, load_fresh_lists, open_for_marketing

pytestmark = pytest.mark.sandbox

ON_TPS = "02079460999"
NOT_LISTED = "02079460018"
ORGANISATION_CLI = "+442079460000"  # the sandbox's [organisation] caller_id
SHORT_CODES = ["111", "116123", "118500", "159"]

_RECEIVED = re.compile(r"<--- Received SIP request \(\d+ bytes\) from [^\n]*--->\n(?P<message>.*?)(?=\n\[\d{4}-|\Z)", re.S)


def pstn_log(sandbox: SandboxInfo) -> Path:
    return Path(sandbox.data["chroot"]) / "var/log/livecall-sandbox/pstn/messages.log"


def pstn_invites(sandbox: SandboxInfo, since: int) -> list[tuple[str, str]]:
    """(Request-URI user, From header) of each new call the PSTN received since byte ``since``."""
    with open(pstn_log(sandbox), "rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    calls: dict[str, tuple[str, str]] = {}
    for m in _RECEIVED.finditer(text):
        lines = m.group("message").splitlines()
        request = re.match(r"INVITE sip:(?:(?P<user>[^@ ]*)@)?\S* SIP/2\.0$", lines[0]) if lines else None
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if k}
        if request and "tag=" not in headers.get("to", ""):
            calls[headers.get("call-id", "")] = (request.group("user") or "", headers.get("from", ""))
    return list(calls.values())


def reached(sandbox: SandboxInfo, since: int) -> list[str]:
    return [user for user, _ in pstn_invites(sandbox, since)]


@pytest.fixture
def screened(make_service, tmp_path: Path) -> Service:  # type: ignore[no-untyped-def]
    """`livecall serve` with the screening rules, a fresh TPS (one number) and CTPS."""
    service: Service = make_service(**open_for_marketing(tmp_path))
    load_fresh_lists(service, tmp_path, tps=[ON_TPS])
    return service


def test_short_codes_connect_through_the_gate_with_their_reason_no_notice_and_no_recording(
    sandbox: SandboxInfo, screened: Service
) -> None:
    since = pstn_log(sandbox).stat().st_size
    # 1001 (Stasis entry) makes marketing calls; 1003 takes the FastAGI entry.
    placed = [("1001", n) for n in SHORT_CODES] + [("1003", "101")]
    results = {(agent, number): call(sandbox, number, agent=agent, hold_ms=300) for agent, number in placed}

    for placed_call, result in results.items():
        assert result.returncode == 0 and result.answered, (placed_call, result.errors)
    rows = screened.decisions()
    assert [(r["entry"], r["number"], r["decision"], r["reasons"], r["purpose"]) for r in rows] == [
        ("agi" if agent == "1003" else "stasis", n, "allow", "special_number", "marketing") for agent, n in placed]
    until(lambda: sorted(reached(sandbox, since)) == sorted(n for _, n in placed), what="each short code at the PSTN")
    ids = tuple(r["call_id"] for r in rows)
    marks = ",".join("?" * len(ids))
    # The calls are over and answered: a notice or a recording would have been booked by now.
    assert screened.rows(f"SELECT * FROM recording_notices WHERE call_id IN ({marks})", ids) == []
    assert screened.rows(f"SELECT * FROM recordings WHERE call_id IN ({marks})", ids) == []


def test_a_text_relay_call_is_screened_as_the_number_behind_the_prefix(sandbox: SandboxInfo, screened: Service) -> None:
    since = pstn_log(sandbox).stat().st_size

    allowed = call(sandbox, "18001" + NOT_LISTED, hold_ms=300)
    refused = call(sandbox, "18001" + ON_TPS, scenario="agent_call_refused.xml")

    assert allowed.returncode == 0 and allowed.answered, allowed.errors
    assert refused.returncode == 0 and refused.refused_cause == 21, refused.errors
    assert [(r["number"], r["decision"], r["reasons"]) for r in screened.decisions()] == [
        ("+442079460018", "allow", "special_number"), ("+442079460999", "block", "tps")]
    until(lambda: "18001" + NOT_LISTED in reached(sandbox, since), what="the relay call at the PSTN")
    assert reached(sandbox, since) == ["18001" + NOT_LISTED]


def test_emergency_numbers_bypass_the_gate_and_other_short_codes_do_not(sandbox: SandboxInfo) -> None:
    # No `livecall serve` here: the gate cannot decide anything.
    since = pstn_log(sandbox).stat().st_size

    for number in ("999", "18000"):
        result = call(sandbox, number, hold_ms=300)
        assert result.returncode == 0 and result.answered, (number, result.errors)
    refused = call(sandbox, "111", scenario="agent_call_refused.xml")

    assert refused.returncode == 0 and refused.refused_cause == 21, refused.errors
    until(lambda: sorted(reached(sandbox, since)) == ["18000", "999"], what="the emergency calls at the PSTN")


def test_a_pension_call_needs_a_pensions_consent_or_a_client_relationship(sandbox: SandboxInfo, screened: Service) -> None:
    other = "02079460017"
    since = pstn_log(sandbox).stat().st_size
    # Agent 1005's endpoint sets the purpose pensions.
    refused = call(sandbox, NOT_LISTED, agent="1005", scenario="agent_call_refused.xml")
    livecall("consent", "add", NOT_LISTED, "--relationship", "--evidence", "client since 2019, policy 88", env=screened.env)
    livecall("consent", "add", other, "--scope", "marketing", "--evidence", "web form 4411", env=screened.env)
    by_relationship = call(sandbox, NOT_LISTED, agent="1005", hold_ms=300)
    marketing_consent_only = call(sandbox, other, agent="1005", scenario="agent_call_refused.xml")
    livecall("consent", "add", other, "--scope", "pensions", "--evidence", "pensions form 4412", env=screened.env)
    by_consent = call(sandbox, other, agent="1005", hold_ms=300)

    assert refused.refused_cause == 21 and marketing_consent_only.refused_cause == 21
    assert by_relationship.answered and by_consent.answered, (by_relationship.errors, by_consent.errors)
    assert [(r["purpose"], r["decision"], r["reasons"]) for r in screened.decisions()] == [
        ("pensions", "block", "consent_required"), ("pensions", "allow", ""),
        ("pensions", "block", "consent_required"), ("pensions", "allow", "")]
    until(lambda: sorted(reached(sandbox, since)) == [other, NOT_LISTED], what="the two allowed calls at the PSTN")


def test_an_endpoint_that_withholds_its_number_still_presents_it_on_screened_calls(
    sandbox: SandboxInfo, screened: Service
) -> None:
    since = pstn_log(sandbox).stat().st_size
    # Agent 1004's endpoint has callerid_privacy = prohib; its calls are marketing calls.
    result = call(sandbox, NOT_LISTED, agent="1004", hold_ms=300)

    assert result.returncode == 0 and result.answered, result.errors
    [row] = screened.decisions()
    assert (row["agent"], row["decision"]) == ("1004", "allow")
    [(user, sender)] = until(lambda: pstn_invites(sandbox, since), what="the call at the PSTN")
    assert user == NOT_LISTED
    number = re.search(r"<sip:([^@>;]*)@", sender)
    assert number is not None and number.group(1) in (ORGANISATION_CLI, "0" + ORGANISATION_CLI[3:]), sender
    assert "anonymous" not in sender.lower(), sender
