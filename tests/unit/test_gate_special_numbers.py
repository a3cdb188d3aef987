"""Short codes, text relay and pension calls (issue 15 parts 1 and 5): the gate's pure core and
the screening rules, with the real Screener and lists (no fakes beyond the static decider)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.asterisk.render import render_all
from livecall_ari.config import load
from livecall_ari.gate.core import (
    EMERGENCY_NUMBERS,
    GATED_PURPOSES,
    PURPOSES,
    CallAttempt,
    Decision,
    StaticDecider,
    decide,
    is_whole_number,
)
from livecall_ari.gate.numbering import SHORT_CODES, special_number
from livecall_ari.screening.core import RELATIONSHIP, ScreeningLists
from tests.unit.test_screening_cli import run  # noqa: F401 (the fixture)
from tests.unit.test_screening_rules import (
    CLEAN_NUMBER,
    TPS_NUMBER,
    attempt,
    consent,
    lists,
    objection,
    records,
    screener,
)

SHORT = ["111", "101", "105", "116123", "116000", "118500", "159", "100", "155"]


class ListsDecider:
    """The screening rules over fixed lists: the Decider the gate uses, minus the live refresh."""

    def __init__(self, view: ScreeningLists) -> None:
        self.screener = screener()
        self.view = view

    def decide(self, attempt: CallAttempt) -> Decision:
        return self.screener.screen(attempt, self.view)


@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("dialled", SHORT)
def test_short_codes_are_allowed_for_every_purpose_with_their_reason(dialled: str, purpose: str) -> None:
    # Even a decider that blocks everything and rules over stale lists never sees them.
    decision = decide(attempt(dialled, purpose), ListsDecider(lists(tps=False, ctps=False)))
    assert (decision.allowed, decision.reasons, decision.number, decision.dial) == (True, ("special_number",), dialled, dialled)
    assert decision.evidence["special_number"]


def test_the_emergency_class_is_999_112_and_text_relays_18000() -> None:
    assert EMERGENCY_NUMBERS == {"999", "112", "18000"}
    for number in EMERGENCY_NUMBERS:
        decision = decide(attempt(number, "marketing"), StaticDecider(frozenset({number})))
        assert (decision.allowed, decision.reasons, decision.dial) == (True, ("emergency",), number)


def test_short_codes_after_the_outside_line_prefix() -> None:
    decision = decide(attempt("9111"), StaticDecider(frozenset()), outside_line_prefix="9")
    assert (decision.allowed, decision.reasons, decision.dial) == (True, ("special_number",), "111")
    assert decide(attempt("918000"), StaticDecider(frozenset()), outside_line_prefix="9").reasons == ("emergency",)


@pytest.mark.parametrize("digits", ["1111", "11", "1160", "1161234", "11850", "1185001", "1590", "10", "18003", "1800"])
def test_neighbours_of_short_codes_are_not_special(digits: str) -> None:
    assert special_number(digits) is None


def test_every_short_code_in_the_table_is_digits_of_its_length() -> None:
    for code in SHORT_CODES:
        assert code.code.isdigit() and len(code.code) <= code.length <= 6 and code.name


def test_a_relay_call_is_screened_as_the_number_behind_the_prefix() -> None:
    clean = decide(attempt("18001" + CLEAN_NUMBER.replace(" ", "")), ListsDecider(lists()))
    assert clean.allowed and clean.reasons == ("special_number",)
    assert clean.number == "+442079460020" and clean.dial == "1800102079460020"
    assert clean.evidence["relay_prefix"] == "18001" and clean.evidence["tps_version"] == "1"

    listed = decide(attempt("18001" + TPS_NUMBER.replace(" ", "")), ListsDecider(lists()))
    assert (listed.allowed, listed.reasons, listed.number) == (False, ("tps",), "+442079460018")


def test_a_relay_call_dials_the_national_form_whatever_the_trunk_takes() -> None:
    decision = decide(attempt("1800202079460020"), ListsDecider(lists()), number_format="e164")
    assert decision.allowed and decision.dial == "1800202079460020"


@pytest.mark.parametrize("dialled", ["18001", "180011", "18001999", "180011111111111", "18001123456789"])
def test_a_relay_prefix_with_no_full_number_behind_it_is_not_a_relay_call(dialled: str) -> None:
    # Not special: the rules see the whole string, which is no valid number.
    decision = decide(attempt(dialled, "service"), ListsDecider(lists()))
    assert (decision.allowed, decision.reasons) == (False, ("invalid_number",))


def test_a_relay_call_to_an_invalid_number_is_refused() -> None:
    decision = decide(attempt("180010000000000"), ListsDecider(lists()))
    assert (decision.allowed, decision.reasons) == (False, ("invalid_number",))


@given(rest=st.text(min_size=0, max_size=18))
def test_whatever_follows_a_relay_prefix_the_trunk_dials_only_digits(rest: str) -> None:
    decision = decide(attempt("18001" + rest, "service"), StaticDecider(frozenset()))
    if decision.allowed:
        assert is_whole_number(decision.dial) and decision.dial.isdigit()
        assert decision.dial == "18001" + rest
    if not is_whole_number("18001" + rest):
        assert decision.reasons == ("invalid_number",)


# Pension schemes: PECR reg 21B ----------------------------------------------------------------


def test_pensions_is_a_screened_purpose() -> None:
    assert "pensions" in PURPOSES and "pensions" in GATED_PURPOSES


def test_a_pension_call_without_consent_or_relationship_is_refused_though_not_on_the_tps() -> None:
    decision = screener().screen(attempt(CLEAN_NUMBER, "pensions"), lists())
    assert (decision.allowed, decision.reasons) == (False, ("consent_required",))


def test_a_consent_covering_pensions_lets_a_pension_call_through_even_on_the_tps() -> None:
    for scope in ("pensions", "all"):
        decision = screener().screen(attempt(TPS_NUMBER, "pensions"), lists(records(consent(TPS_NUMBER, scope))))
        assert (decision.allowed, decision.reasons) == (True, ()), scope


def test_a_marketing_or_claims_consent_does_not_cover_pension_calls() -> None:
    for scope in ("marketing", "claims"):
        decision = screener().screen(attempt(CLEAN_NUMBER, "pensions"), lists(records(consent(CLEAN_NUMBER, scope))))
        assert decision.reasons == ("consent_required",), scope


def test_an_existing_client_relationship_lets_a_pension_call_through() -> None:
    relationship = dataclasses.replace(consent(CLEAN_NUMBER, "pensions"), basis=RELATIONSHIP)
    decision = screener().screen(attempt(CLEAN_NUMBER, "pensions"), lists(records(relationship)))
    assert (decision.allowed, decision.reasons, decision.evidence["consent"]) == (True, (), "relationship")


def test_the_tps_neither_blocks_nor_lets_through_a_pension_call() -> None:
    # Reg 21(6): reg 21 does not apply to reg 21B calls. Listed or not, stale lists or not, only
    # a pensions consent or a relationship decides.
    relationship = dataclasses.replace(consent(TPS_NUMBER, "pensions"), basis=RELATIONSHIP)
    on_tps = screener().screen(attempt(TPS_NUMBER, "pensions"), lists(records(relationship), tps=False))
    assert (on_tps.allowed, on_tps.reasons) == (True, ())
    assert screener().screen(attempt(TPS_NUMBER, "pensions"), lists()).reasons == ("consent_required",)


def test_a_relationship_covers_no_other_purpose() -> None:
    relationship = dataclasses.replace(consent(TPS_NUMBER, "pensions"), basis=RELATIONSHIP)
    for purpose in ("marketing", "claims"):
        decision = screener().screen(attempt(TPS_NUMBER, purpose), lists(records(relationship)))
        assert not decision.allowed and "tps" in decision.reasons, purpose
        assert decision.evidence["consent"] == "not in force", purpose


def test_an_objection_blocks_a_pension_call_whatever_the_consent() -> None:
    # A refusal (reg 21B(3)(c)) or withdrawn consent: the objection list holds both.
    given = consent(CLEAN_NUMBER, "pensions", id=8)
    later = objection(CLEAN_NUMBER)
    decision = screener().screen(attempt(CLEAN_NUMBER, "pensions"), lists(records(given, later)))
    assert decision.reasons == ("objection", "consent_required")


def test_a_withdrawn_pension_consent_no_longer_covers() -> None:
    withdrawn = consent(CLEAN_NUMBER, "pensions", withdrawn=attempt().at)
    decision = screener().screen(attempt(CLEAN_NUMBER, "pensions"), lists(records(withdrawn)))
    assert decision.reasons == ("consent_required",)


# The commands -------------------------------------------------------------------------------


def test_screen_allows_short_codes_and_consent_records_a_relationship(run) -> None:  # type: ignore[no-untyped-def]
    for number in ("111", "101", "116 123", "159", "118 500"):
        decision = json.loads(run("screen", number, "--purpose", "service", "--json").output)
        assert (decision["decision"], decision["reasons"]) == ("allow", ["special_number"]), number

    pension = ["screen", "02079460020", "--purpose", "pensions", "--caller-id", "02079460000", "--json"]
    assert "consent_required" in json.loads(run(*pension).output)["reasons"]
    added = run("consent", "add", "02079460020", "--relationship", "--evidence", "client since 2019, policy 88")
    assert added.exit_code == 0 and added.output.startswith("client relationship"), added.output
    assert "consent_required" not in json.loads(run(*pension).output)["reasons"]
    [held] = json.loads(run("consent", "list", "02079460020", "--json").output)
    assert (held["scope"], held["basis"]) == ("pensions", "relationship")

    wrong = run("consent", "add", "02079460020", "--relationship", "--scope", "marketing", "--evidence", "x")
    assert wrong.exit_code == 2 and "pension calls only" in wrong.output
    assert run("consent", "add", "02079460021", "--scope", "pensions", "--evidence", "form 12").exit_code == 0
    [scoped] = json.loads(run("consent", "list", "02079460021", "--json").output)
    assert (scoped["scope"], scoped["basis"]) == ("pensions", "consent")


# The dialplan ---------------------------------------------------------------------------------


def _allowed_context(record_special_numbers: bool, tmp_path: Path) -> list[str]:
    settings = load(tmp_path / "none.toml", environ={})
    settings.ari.password, settings.ami.secret = "secret-1", "secret-2"
    settings.recording.record_special_numbers = record_special_numbers
    [text] = [f.text for f in render_all(settings) if f.name == "extensions_livecall.conf"]
    body = text.split("[livecall-allowed]\n", 1)[1].split("\n[", 1)[0]
    return [line for line in body.splitlines() if not line.startswith(";")]


def test_special_numbers_are_unnoticed_and_recorded_only_when_the_setting_says(tmp_path: Path) -> None:
    off = "\n".join(_allowed_context(False, tmp_path))
    on = "\n".join(_allowed_context(True, tmp_path))
    no_notice = 'ExecIf(${REGEX("special_number" ${LIVECALL_REASONS})}?Set(LIVECALL_NOTICE=no))'
    no_record = 'ExecIf(${REGEX("special_number" ${LIVECALL_REASONS})}?Set(LIVECALL_RECORD=no))'
    assert no_notice in off and no_notice in on
    assert no_record in off and no_record not in on


def test_screened_purposes_present_the_caller_id_before_the_trunk_is_dialled(tmp_path: Path) -> None:
    lines = _allowed_context(False, tmp_path)
    [present] = [i for i, line in enumerate(lines) if "CALLERID(pres)=allowed_not_screened" in line]
    [dial] = [i for i, line in enumerate(lines) if "Dial(PJSIP/" in line]
    assert present < dial
    assert f'REGEX("^({"|".join(GATED_PURPOSES)})$" ${{LIVECALL_PURPOSE}})' in lines[present]
