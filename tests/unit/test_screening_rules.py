"""The screening rules: every reason code, consent and objection, hours across the clock change."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from livecall_ari.gate.core import CallAttempt
from livecall_ari.screening.core import (
    EPOCH,
    REASONS,
    Consent,
    InMemoryRecords,
    ListSnapshot,
    NumberList,
    Objection,
    Screener,
    ScreeningLists,
    ScreeningPolicy,
)
from livecall_ari.screening.hours import BankHolidays, CallingHours
from livecall_ari.screening.numbers import NumberParser

UTC = dt.timezone.utc
WEDNESDAY_10AM = dt.datetime(2025, 1, 15, 10, 0, tzinfo=UTC)  # GMT: 10:00 in London
SNAPSHOT = dt.date(2025, 1, 10)
CALLER = "+442079460000"
TPS_NUMBER = "020 7946 0018"
CTPS_NUMBER = "020 7946 0019"
CLEAN_NUMBER = "020 7946 0020"


def key(national: str) -> int:
    return int("44" + national.replace(" ", "")[1:])


def number_list(name: str, nationals: list[str], snapshot: dt.date = SNAPSHOT, version: int = 1) -> NumberList:
    keys = np.array(sorted(key(n) for n in nationals), dtype=np.int64)
    days = np.full(keys.shape[0], (dt.date(2024, 6, 1) - EPOCH).days, dtype=np.int32)
    return NumberList(ListSnapshot(name, version, snapshot, len(nationals)), keys, days)


def screener(nation: str = "England", prefix: str = "", days: str = "mon-fri", start: str = "09:00", end: str = "17:00") -> Screener:
    hours = CallingHours.from_settings([days], start, end, "Europe/London")
    return Screener(ScreeningPolicy(hours, BankHolidays(nation)), NumberParser(prefix))


def lists(records: InMemoryRecords | None = None, snapshot: dt.date = SNAPSHOT, tps: bool = True, ctps: bool = True) -> ScreeningLists:
    return ScreeningLists(
        number_list("tps", [TPS_NUMBER], snapshot) if tps else None,
        number_list("ctps", [CTPS_NUMBER], snapshot, version=2) if ctps else None,
        records or InMemoryRecords.empty(),
    )


def attempt(dialled: str = CLEAN_NUMBER, purpose: str = "marketing", at: dt.datetime = WEDNESDAY_10AM,
            caller_id: str | None = CALLER, organisation: str = "acme") -> CallAttempt:
    return CallAttempt("call-1", "agent-1", dialled, purpose, at, caller_id, organisation)


def consent(national: str, scope: str = "marketing", given: dt.datetime = WEDNESDAY_10AM - dt.timedelta(days=3),
            withdrawn: dt.datetime | None = None, organisation: str = "acme", id: int = 7) -> Consent:
    return Consent(id, organisation, key(national), given, "sam", "call 42 recording", scope, withdrawn)


def objection(national: str, at: dt.datetime = WEDNESDAY_10AM - dt.timedelta(days=1), organisation: str = "acme") -> Objection:
    return Objection(3, organisation, key(national), at, "sam", "said stop")


def records(*items: Consent | Objection) -> InMemoryRecords:
    held = InMemoryRecords.empty()
    for item in items:
        if isinstance(item, Consent):
            held.consents[(item.organisation, item.number)] = item
        else:
            held.objections[(item.organisation, item.number)] = item
    return held


def test_a_clean_number_in_hours_is_allowed_with_its_evidence() -> None:
    decision = screener().screen(attempt(), lists())
    assert decision.allowed and decision.reasons == ()
    assert decision.number == "+442079460020"
    assert decision.evidence["tps_version"] == "1" and decision.evidence["ctps_version"] == "2"
    assert decision.evidence["tps_snapshot"] == "2025-01-10"
    assert decision.evidence["purpose"] == "marketing"


def test_tps_blocks_marketing() -> None:
    decision = screener().screen(attempt(TPS_NUMBER), lists())
    assert not decision.allowed and decision.reasons == ("tps",)
    assert decision.evidence["tps_first_seen"] == "2024-06-01"


def test_ctps_blocks_marketing() -> None:
    decision = screener().screen(attempt(CTPS_NUMBER), lists())
    assert decision.reasons == ("ctps",)


def test_the_number_is_looked_up_however_it_was_dialled() -> None:
    for dialled in ("+44 20 7946 0018", "0044 20 7946 0018", "(020) 7946-0018", "9 020 7946 0018"):
        assert screener(prefix="9").screen(attempt(dialled), lists()).reasons == ("tps",), dialled


def test_consent_lets_a_tps_number_through_until_withdrawn() -> None:
    given = consent(TPS_NUMBER)
    allowed = screener().screen(attempt(TPS_NUMBER), lists(records(given)))
    assert allowed.allowed and allowed.evidence["consent_id"] == "7"
    withdrawn = consent(TPS_NUMBER, withdrawn=WEDNESDAY_10AM - dt.timedelta(hours=1))
    blocked = screener().screen(attempt(TPS_NUMBER), lists(records(withdrawn)))
    assert blocked.reasons == ("tps",) and blocked.evidence["consent"] == "not in force"


def test_consent_given_after_the_call_or_to_another_organisation_does_not_count() -> None:
    later = consent(TPS_NUMBER, given=WEDNESDAY_10AM + dt.timedelta(minutes=1))
    assert screener().screen(attempt(TPS_NUMBER), lists(records(later))).reasons == ("tps",)
    other = consent(TPS_NUMBER, organisation="other")
    assert screener().screen(attempt(TPS_NUMBER), lists(records(other))).reasons == ("tps",)


def test_objection_blocks_whatever_else_applies() -> None:
    held = records(objection(CLEAN_NUMBER), consent(TPS_NUMBER))
    assert screener().screen(attempt(CLEAN_NUMBER), lists(held)).reasons == ("objection",)
    both = records(consent(CLEAN_NUMBER, scope="all"), objection(CLEAN_NUMBER))
    decision = screener().screen(attempt(CLEAN_NUMBER), lists(both))
    assert decision.reasons == ("objection",) and decision.evidence["objection_id"] == "3"


def test_an_objection_after_a_consent_withdraws_it() -> None:
    given = consent(TPS_NUMBER, given=WEDNESDAY_10AM - dt.timedelta(days=5))
    objected = objection(TPS_NUMBER, at=WEDNESDAY_10AM - dt.timedelta(days=2))
    decision = screener().screen(attempt(TPS_NUMBER), lists(records(given, objected)))
    assert decision.reasons == ("objection", "tps")
    assert decision.evidence["consent"] == "not in force"


def test_objections_are_per_organisation() -> None:
    held = records(objection(CLEAN_NUMBER, organisation="other"))
    assert screener().screen(attempt(CLEAN_NUMBER), lists(held)).allowed


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (dt.datetime(2025, 1, 15, 8, 59, tzinfo=UTC), "outside_hours"),
        (dt.datetime(2025, 1, 15, 17, 0, tzinfo=UTC), "outside_hours"),
        (dt.datetime(2025, 1, 18, 11, 0, tzinfo=UTC), "outside_hours"),  # Saturday
        (dt.datetime(2025, 5, 5, 11, 0, tzinfo=UTC), "bank_holiday"),  # Early May bank holiday
        (dt.datetime(2021, 12, 28, 11, 0, tzinfo=UTC), "bank_holiday"),  # Boxing Day, substitute day
    ],
)
def test_hours_and_bank_holidays(at: dt.datetime, reason: str) -> None:
    decision = screener().screen(attempt(at=at), lists(snapshot=at.date()))
    assert decision.reasons == (reason,)


def test_bank_holidays_follow_the_configured_nation() -> None:
    scottish_august = dt.datetime(2025, 8, 4, 10, 0, tzinfo=UTC)  # Summer bank holiday in Scotland only
    st_patrick = dt.datetime(2025, 3, 17, 11, 0, tzinfo=UTC)
    assert screener("England").screen(attempt(at=scottish_august), lists(snapshot=scottish_august.date())).allowed
    scotland = screener("Scotland").screen(attempt(at=scottish_august), lists(snapshot=scottish_august.date()))
    assert scotland.reasons == ("bank_holiday",) and "Summer" in scotland.evidence["bank_holiday"]
    assert screener("Northern Ireland").screen(attempt(at=st_patrick), lists(snapshot=st_patrick.date())).reasons == ("bank_holiday",)
    assert screener("Wales").screen(attempt(at=st_patrick), lists(snapshot=st_patrick.date())).allowed


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        # Spring forward on Sunday 30 March 2025: 08:30 UTC is 08:30 GMT on Friday, 09:30 BST on Monday.
        (dt.datetime(2025, 3, 28, 8, 30, tzinfo=UTC), False),
        (dt.datetime(2025, 3, 31, 8, 30, tzinfo=UTC), True),
        (dt.datetime(2025, 3, 28, 16, 30, tzinfo=UTC), True),
        (dt.datetime(2025, 3, 31, 16, 30, tzinfo=UTC), False),  # 17:30 BST
        # Fall back on Sunday 26 October 2025.
        (dt.datetime(2025, 10, 24, 8, 30, tzinfo=UTC), True),  # 09:30 BST
        (dt.datetime(2025, 10, 27, 8, 30, tzinfo=UTC), False),  # 08:30 GMT
        (dt.datetime(2025, 10, 27, 16, 30, tzinfo=UTC), True),
        (dt.datetime(2025, 10, 24, 16, 30, tzinfo=UTC), False),  # 17:30 BST
    ],
)
def test_hours_are_london_hours_across_the_clock_change(at: dt.datetime, allowed: bool) -> None:
    decision = screener().screen(attempt(at=at), lists(snapshot=at.date()))
    assert decision.allowed is allowed
    assert decision.reasons == (() if allowed else ("outside_hours",))


def test_configured_hours() -> None:
    saturday = dt.datetime(2025, 1, 18, 10, 30, tzinfo=UTC)
    assert screener(days="mon-sat", start="10:00", end="12:00").screen(attempt(at=saturday), lists()).allowed
    assert not screener(days="mon-sat", start="11:00", end="12:00").screen(attempt(at=saturday), lists()).allowed
    with pytest.raises(ValueError, match="calling_days"):
        screener(days="funday")
    with pytest.raises(ValueError, match="nation"):
        BankHolidays("Cornwall")


@pytest.mark.parametrize("caller_id", [None, "anonymous", "+441632960000", "09098790000"])
def test_withheld_or_invalid_caller_id_blocks(caller_id: str | None) -> None:
    decision = screener().screen(attempt(caller_id=caller_id), lists())
    assert decision.reasons == ("caller_id",)


def test_stale_lists_block_marketing_after_28_days() -> None:
    fresh = dt.datetime(2025, 2, 7, 10, 0, tzinfo=UTC)  # 28 days after 10 January
    stale = dt.datetime(2025, 2, 10, 10, 0, tzinfo=UTC)  # 31 days (a Monday)
    assert screener().screen(attempt(at=fresh), lists()).allowed
    assert screener().screen(attempt(at=stale), lists()).reasons == ("stale_list",)
    # A listed number on a stale list reports both reasons.
    assert screener().screen(attempt(TPS_NUMBER, at=stale), lists()).reasons == ("tps", "stale_list")


def test_a_missing_list_blocks_marketing() -> None:
    decision = screener().screen(attempt(), lists(ctps=False))
    assert decision.reasons == ("stale_list",) and decision.evidence["ctps"] == "missing"


def test_claims_calls_need_consent_covering_claims() -> None:
    assert screener().screen(attempt(purpose="claims"), lists()).reasons == ("consent_required",)
    marketing_only = records(consent(CLEAN_NUMBER, scope="marketing"))
    assert screener().screen(attempt(purpose="claims"), lists(marketing_only)).reasons == ("consent_required",)
    for scope in ("claims", "all"):
        held = records(consent(TPS_NUMBER, scope=scope))
        assert screener().screen(attempt(TPS_NUMBER, purpose="claims"), lists(held)).allowed, scope


def test_invalid_number_blocks_every_gated_purpose() -> None:
    for purpose in ("marketing", "claims", "service"):
        decision = screener().screen(attempt("12345", purpose=purpose), lists())
        assert decision.reasons == ("invalid_number",) and decision.number == "12345"


def test_service_calls_are_not_gated_by_lists_hours_or_caller_id() -> None:
    sunday_night = dt.datetime(2025, 1, 19, 23, 0, tzinfo=UTC)
    decision = screener().screen(attempt(TPS_NUMBER, purpose="service", at=sunday_night, caller_id=None), lists(tps=False))
    assert decision.allowed and decision.evidence["purpose"] == "service"


def test_internal_calls_and_emergency_numbers_always_pass() -> None:
    sunday_night = dt.datetime(2025, 1, 19, 23, 0, tzinfo=UTC)
    assert screener().screen(attempt("1001", purpose="internal", at=sunday_night, caller_id=None), lists()).allowed
    for dialled in ("999", "112", "9999"):
        decision = screener(prefix="9").screen(attempt(dialled, at=sunday_night, caller_id=None), lists(tps=False))
        assert decision.allowed and decision.reasons == ("emergency",)


def test_an_unknown_purpose_is_screened_as_marketing() -> None:
    decision = screener().screen(attempt(TPS_NUMBER, purpose="survey"), lists())
    assert decision.reasons == ("tps",) and decision.evidence["purpose_unknown"] == "survey"


def test_every_reason_at_once_in_the_stable_order() -> None:
    at = dt.datetime(2025, 12, 25, 20, 0, tzinfo=UTC)  # Christmas evening, lists 11 months old
    held = records(objection(TPS_NUMBER))
    decision = screener().screen(attempt(TPS_NUMBER, purpose="claims", at=at, caller_id=None), lists(held))
    assert decision.reasons == ("objection", "tps", "consent_required", "stale_list", "outside_hours", "bank_holiday", "caller_id")
    assert set(decision.reasons) | {"ctps", "invalid_number"} == set(REASONS)


def test_foreign_numbers_are_not_looked_up_in_the_uk_lists() -> None:
    decision = screener().screen(attempt("+33 1 23 45 67 89"), lists())
    assert decision.allowed and decision.number == "+33123456789"
