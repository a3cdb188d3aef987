"""The pure data-protection decisions: lawful bases, retention rules and plans, deadlines,
the breach clock and the audit chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from livecall_ari.protection import core
from livecall_ari.protection.core import (
    ChainEntry, LawfulBasisPolicy, LegalHold, PolicyError, RetainedRecord, RetentionPolicy, add_calendar_month,
    breach_clock, dsar_deadline, retention_plan, verify_chain,
)

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def test_lawful_basis_defaults_from_purpose_and_policy() -> None:
    policy = LawfulBasisPolicy.parse(["marketing=legitimate_interests", "Claims = Consent", "service=contract"], "legitimate_interests")
    assert policy.basis_for("claims") == "consent" and policy.basis_for("service") == "contract"
    assert policy.basis_for("training") == "legitimate_interests"
    with pytest.raises(PolicyError, match="unknown lawful basis 'because'"):
        LawfulBasisPolicy.parse(["marketing=because"], "consent")
    with pytest.raises(PolicyError, match="PURPOSE=BASIS"):
        LawfulBasisPolicy.parse(["marketing"], "consent")


def test_the_most_specific_retention_rule_wins() -> None:
    policy = RetentionPolicy.parse(["recordings/*=365", "recordings/training=90", "recordings/*/consent=30",
                                    "recordings/training/consent=60", "calls/*=2190"])
    assert policy.rule_for("recordings", ("marketing",), "legitimate_interests").days == 365  # type: ignore[union-attr]
    assert policy.rule_for("recordings", ("marketing", "training"), "legitimate_interests").days == 90  # type: ignore[union-attr]
    assert policy.rule_for("recordings", ("marketing",), "consent").days == 30  # type: ignore[union-attr]
    assert policy.rule_for("recordings", ("training",), "consent").days == 60  # type: ignore[union-attr]
    assert policy.rule_for("calls", ("service",), "contract").days == 2190  # type: ignore[union-attr]
    assert RetentionPolicy.parse([]).rule_for("calls", ("x",), "consent") is None
    for bad, message in [("recordings=3", "KIND/PURPOSE"), ("emails/*=3", "recordings or calls"),
                         ("calls/*=soon", "whole number"), ("calls/*/nice=3", "unknown lawful basis")]:
        with pytest.raises(PolicyError, match=message):
            RetentionPolicy.parse([bad])


def record(days_old: int, *, kind: str = "recordings", purposes: tuple[str, ...] = ("training",), id: int = 1,
           number: str = "+442079460018", keep_until: dt.date | None = None) -> RetainedRecord:
    return RetainedRecord(kind, id, f"call{id}", number, purposes, "legitimate_interests", NOW - dt.timedelta(days=days_old), keep_until)


def test_retention_plan_due_kept_and_held() -> None:
    policy = RetentionPolicy.parse(["recordings/training=90", "recordings/*=365"])
    records = [record(91, id=1), record(90, id=2), record(200, id=3, purposes=("marketing",)), record(400, id=4, purposes=("x",)),
               record(400, id=5, number="+442079460099"), record(400, id=6, keep_until=NOW.date()), record(400, id=7)]
    holds = [LegalHold(1, "number", "+442079460099", "claim"), LegalHold(2, "recording", "7", "ico")]
    verdicts = {v.record.id: v for v in retention_plan(records, policy, holds, NOW)}
    assert {i for i, v in verdicts.items() if v.due} == {1, 4}
    assert verdicts[2].keep_until == NOW.date() and not verdicts[2].due  # the last day is still kept
    assert verdicts[5].hold is not None and "legal hold 1: claim" in verdicts[5].why
    assert verdicts[7].hold is not None and verdicts[6].why == "its own retention date"
    assert "rule recordings/training=90" in verdicts[1].why


def test_retention_days_follow_london_dates() -> None:
    policy = RetentionPolicy.parse(["recordings/*=1"])
    # 23:30 UTC on 1 July is 00:30 on 2 July in London: kept through 3 July, due on 4 July.
    made = RetainedRecord("recordings", 1, "c", "n", ("x",), "consent", dt.datetime(2025, 7, 1, 23, 30, tzinfo=UTC))
    at = lambda day, hour: dt.datetime(2025, 7, day, hour, tzinfo=UTC)  # noqa: E731
    assert not retention_plan([made], policy, [], at(3, 22))[0].due
    assert retention_plan([made], policy, [], at(3, 23))[0].due  # midnight in London


@pytest.mark.parametrize("received, due", [
    ("2025-01-31", "2025-02-28"), ("2024-01-31", "2024-02-29"), ("2025-03-03", "2025-04-03"),
    ("2025-12-15", "2026-01-15"), ("2025-04-05", "2025-05-06"),  # 5 May 2025 is a bank holiday (Monday)
    ("2025-05-01", "2025-06-02"),  # 1 June is a Sunday
])
def test_dsar_deadline_is_one_calendar_month_then_a_working_day(received: str, due: str) -> None:
    holidays = {dt.date(2025, 5, 5)}
    at = dt.datetime.fromisoformat(received + "T12:00+00:00")
    assert dsar_deadline(at, lambda d: d in holidays).isoformat() == due


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)))
def test_a_calendar_month_later_is_within_28_to_31_days(day: dt.date) -> None:
    later = add_calendar_month(day)
    assert 28 <= (later - day).days <= 31 and (later.month - day.month) % 12 == 1


def test_breach_clock() -> None:
    aware = NOW
    assert breach_clock(aware, NOW + dt.timedelta(hours=70), None, True).status == "open"
    late = breach_clock(aware, NOW + dt.timedelta(hours=73), None, True)
    assert late.status == "overdue" and late.hours_left == -1.0 and late.deadline == NOW + dt.timedelta(hours=72)
    assert breach_clock(aware, NOW, NOW + dt.timedelta(hours=71), True).status == "reported on time"
    assert breach_clock(aware, NOW, NOW + dt.timedelta(hours=80), True).status == "reported late"
    assert breach_clock(aware, NOW + dt.timedelta(hours=100), None, False).status == "not notifiable"


def chain(n: int) -> list[ChainEntry]:
    entries, prev = [], core.GENESIS
    for seq in range(1, n + 1):
        details = f'{{"n":{seq}}}'
        content = core.content_hash("salt", f"recording:{seq}", details)
        digest = core.entry_hash(seq, f"2025-06-02T10:0{seq}:00.000000+00:00", "sue", "recording.play", content, prev)
        entries.append(ChainEntry(seq, f"2025-06-02T10:0{seq}:00.000000+00:00", "sue", "recording.play", f"recording:{seq}",
                                  details, "salt", content, prev, digest))
        prev = digest
    return entries


def test_chain_verification() -> None:
    entries = chain(4)
    head = (4, entries[-1].entry_hash)
    assert verify_chain(entries, head).ok
    assert not verify_chain([entries[0], entries[2], entries[3]], head).ok  # removed
    assert not verify_chain([entries[0], replace(entries[2], seq=2), replace(entries[1], seq=3), entries[3]], head).ok
    assert not verify_chain([entries[0], replace(entries[1], actor="mallory"), *entries[2:]], head).ok
    assert not verify_chain(entries[:3], head).ok  # cut at the end
    assert not verify_chain(entries, None).ok
    assert verify_chain([], None).ok
