"""Accounts and their subscriptions: which plan applies on which day. Pure: no database, no clock.

An account (a CDR's accountcode) has a customer name and address, a number of free trial
calls, and subscription periods: each a plan from a first day to a last day (inclusive,
Europe/London days; open-ended while it runs). Periods never overlap. ``accounts change``
closes the period running on the day before the change and opens one with the new plan;
``accounts end`` closes the last one. A statement over a range is rated in segments, one per
period (and one per gap with no subscription, where calls are charged without a fee), each by
a :class:`~livecall_ari.charges.rating.Rater` of its own, and the segments' statements are
added up exactly by :func:`combine` (rounded once, at the total, as one statement is).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Iterable

from livecall_ari.charges.months import round_half_up
from livecall_ari.charges.rating import Statement, VatPart
from livecall_ari.charges.tariff import PLANS

NO_PLAN = "none"  # a segment with no subscription: calls only, no fee


class SubscriptionError(ValueError):
    """A subscription change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Period:
    """One plan from ``start`` to ``end`` inclusive (None: until further notice)."""

    plan: str
    start: dt.date
    end: dt.date | None = None

    def __post_init__(self) -> None:
        if self.plan not in PLANS:
            raise SubscriptionError(f"unknown plan {self.plan!r} (use {' or '.join(PLANS)})")
        if self.end is not None and self.end < self.start:
            raise SubscriptionError(f"a subscription cannot end ({self.end}) before it starts ({self.start})")

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Customer:
    """An account as billed: who it is, its trial, and its subscription periods in date order."""

    account: str
    name: str
    address: str
    trial_calls: int = 0
    periods: tuple[Period, ...] = ()

    def plan_on(self, day: dt.date) -> str | None:
        return next((p.plan for p in self.periods if p.covers(day)), None)

    def current(self, today: dt.date) -> Period | None:
        """The period running on ``today``, else the next one to start, else the last one."""
        return (next((p for p in self.periods if p.covers(today)), None)
                or next((p for p in self.periods if p.start > today), None)
                or (self.periods[-1] if self.periods else None))  # fmt: skip


def new_customer(account: str, name: str, address: str, plan: str, start: dt.date, end: dt.date | None = None,
                 trial_calls: int = 0) -> Customer:
    if not account.strip():
        raise SubscriptionError("the account (the CDRs' accountcode) must not be empty")
    if not name.strip() or not address.strip():
        raise SubscriptionError("an account needs the customer's name and address (a VAT invoice shows both)")
    if trial_calls < 0:
        raise SubscriptionError(f"--trial-calls must be 0 or more, not {trial_calls}")
    return Customer(account, name.strip(), address.strip(), trial_calls, (Period(plan, start, end),))


def rename(customer: Customer, name: str | None = None, address: str | None = None) -> Customer:
    """The customer with a new name or address (None: unchanged); issued invoices keep the old."""
    new = replace(customer, name=customer.name if name is None else name.strip(),
                  address=customer.address if address is None else address.strip())
    if not new.name or not new.address:
        raise SubscriptionError("an account needs the customer's name and address (a VAT invoice shows both)")
    return new


def change_plan(customer: Customer, plan: str, start: dt.date) -> Customer:
    """The plan changed to ``plan`` from ``start``: the period running the day before ends
    then; periods that would start on or after ``start`` are replaced. The new period runs to
    the end the subscription had (or is open)."""
    if not customer.periods or start < customer.periods[0].start:
        raise SubscriptionError(f"{customer.account}: a change must take effect on or after the subscription's "
                                f"start ({customer.periods[0].start if customer.periods else 'none'})")
    last = customer.periods[-1]
    if last.end is not None and start > last.end:
        raise SubscriptionError(f"{customer.account}: the subscription ended on {last.end}; a change from {start} "
                                "is a new subscription (accounts add)")
    kept: list[Period] = []
    for p in customer.periods:
        if p.start >= start:
            continue
        kept.append(replace(p, end=start - dt.timedelta(days=1)) if p.covers(start) else p)
    kept.append(Period(plan, start, last.end))
    return replace(customer, periods=tuple(kept))


def end_subscription(customer: Customer, last_day: dt.date) -> Customer:
    """The subscription ends after ``last_day`` (the last day charged)."""
    if not customer.periods or last_day < customer.periods[0].start:
        raise SubscriptionError(f"{customer.account}: cannot end before the subscription starts")
    kept = []
    for p in customer.periods:
        if p.start > last_day:
            continue
        kept.append(replace(p, end=last_day) if p.end is None or p.end > last_day else p)
    return replace(customer, periods=tuple(kept))


@dataclass(frozen=True)
class Segment:
    """Consecutive days of a statement under one period (or none: ``period`` is None)."""

    first_day: dt.date
    last_day: dt.date
    period: Period | None

    @property
    def plan(self) -> str:
        return self.period.plan if self.period else NO_PLAN


def segments(periods: Iterable[Period], first_day: dt.date, last_day: dt.date) -> list[Segment]:
    """[first_day, last_day] cut into segments by the periods, in order, with no day left out."""
    out: list[Segment] = []
    day = first_day
    for p in sorted(periods, key=lambda p: p.start):
        if p.end is not None and p.end < day:
            continue
        if p.start > last_day:
            break
        if p.start > day:
            out.append(Segment(day, p.start - dt.timedelta(days=1), None))
            day = p.start
        end = last_day if p.end is None else min(p.end, last_day)
        out.append(Segment(day, end, p))
        day = end + dt.timedelta(days=1)
        if day > last_day:
            return out
    if day <= last_day:
        out.append(Segment(day, last_day, None))
    return out


def combine(parts: list[Statement], account: str, first_day: dt.date, last_day: dt.date, tariff: str) -> Statement:
    """One statement from the statements of consecutive segments: lines and fees in order,
    exact sums, and net and VAT rounded once from the exact totals (as rating.py does)."""
    by_percent: dict[Fraction, Fraction] = {}
    for s in parts:
        for part in s.vat_parts:
            by_percent[part.percent] = by_percent.get(part.percent, Fraction(0)) + part.net_pence
    vat_parts = tuple(VatPart(p, n) for p, n in sorted(by_percent.items()))
    calls_pence = sum((s.calls_pence for s in parts), Fraction(0))
    fees = tuple(f for s in parts for f in s.fees)
    fees_pence = sum(f.pence for f in fees)
    net = round_half_up(calls_pence + fees_pence)
    vat = round_half_up(sum((p.net_pence * p.percent / 100 for p in vat_parts), Fraction(0)))
    plans = list(dict.fromkeys(s.plan for s in parts if s.plan != NO_PLAN)) or [NO_PLAN]
    return Statement(
        account=account,
        plan="+".join(plans),
        first_day=first_day,
        last_day=last_day,
        tariff=tariff,
        lines=tuple(line for s in parts for line in s.lines),
        fees=fees,
        calls=sum(s.calls for s in parts),
        billed_seconds=sum(s.billed_seconds for s in parts),
        calls_pence=calls_pence,
        fees_pence=fees_pence,
        vat_parts=vat_parts,
        net_pence=net,
        vat_pence=vat,
        total_pence=net + vat,
    )
