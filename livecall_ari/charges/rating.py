"""Rating: calls and a tariff in, a statement out. Pure: no database, no clock, no files.

The rules, in the order they are applied to each call (calls must come in start order):

1. Only answered calls (billsec > 0) to external numbers are billed; internal extensions and
   emergency calls never are. A call belongs to the calendar day (Europe/London) it started on,
   and is priced by the tariff periods in effect on that day.
2. billsec is rounded up to the plan's increment (per started minute by default).
3. Monthly plan: landline calls use the month's bundle of minutes first, in call order; only
   the seconds past the bundle are charged. Freephone never touches the bundle.
4. Charge = seconds x price per minute / 60, kept exact (integer units of 1/600000p); a call
   charged more than 0 is charged at least the minimum charge.
5. Fees: daily plan, the day fee for each day with at least one billable call; monthly plan,
   the month fee dated the 1st of each month, on the statement whose range contains that day.
6. Subscriptions (charges/subscriptions.py rates each plan's days with a rater of its own): a
   monthly fee and bundle for a month the subscription only partly covers are pro rata by days
   (:func:`prorated`); trial calls (the account's first N answered external calls, freephone
   aside) cost nothing, use no bundle, and earn no day fee; a month is not charged its fee when
   the trial was not used up before it began and it had no call outside the trial.
7. Rounding happens once, at the statement total: net = exact sum rounded half up to a penny;
   VAT = exact sum of (net charged on each day x the VAT rate of that day), rounded half up;
   total = net + VAT. No per-call rounding, so the lines add up exactly to the unrounded net.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, NamedTuple
from zoneinfo import ZoneInfo

from livecall_ari.charges.classify import EXTERNAL, NumberClass
from livecall_ari.charges.months import covered_days, days_in_month, prorated
from livecall_ari.charges.months import round_half_up as round_half_up  # where rating's users import it from
from livecall_ari.charges.tariff import UNITS_PER_PENNY, AdditionalPrices, Tariff, TariffError, Terms

BILLING_ZONE = ZoneInfo("Europe/London")

# Plain strings for the hot loop (NumberClass members compare equal to them).
_EXTERNAL = frozenset(str(c) for c in EXTERNAL)
_LANDLINE = str(NumberClass.LANDLINE)
_MOBILE = str(NumberClass.MOBILE)
_FREEPHONE = str(NumberClass.FREEPHONE)


class Call(NamedTuple):
    """What rating needs of a CDR."""

    start: int  # UTC epoch seconds
    number: str
    number_class: str
    country: str
    billsec: int
    uniqueid: str = ""


@dataclass(frozen=True)
class RatedCall:
    """One statement line: a billed call and how its charge was worked out."""

    day: dt.date
    start: dt.datetime  # local (Europe/London), tz-aware
    number: str
    number_class: str
    country: str
    billsec: int
    billed_seconds: int
    bundle_seconds: int
    pence_per_minute: Fraction
    units: int
    uniqueid: str
    trial: bool = False  # one of the account's free trial calls

    @property
    def pence(self) -> Fraction:
        return Fraction(self.units, UNITS_PER_PENNY)


@dataclass(frozen=True)
class Fee:
    day: dt.date
    description: str
    pence: int


@dataclass(frozen=True)
class VatPart:
    percent: Fraction
    net_pence: Fraction  # exact


@dataclass(frozen=True)
class Statement:
    account: str
    plan: str
    first_day: dt.date
    last_day: dt.date
    tariff: str
    lines: tuple[RatedCall, ...]
    fees: tuple[Fee, ...]
    calls: int
    billed_seconds: int
    calls_pence: Fraction  # exact
    fees_pence: int
    vat_parts: tuple[VatPart, ...]
    net_pence: int
    vat_pence: int
    total_pence: int

    @property
    def net_exact(self) -> Fraction:
        return self.calls_pence + self.fees_pence


def month_starts(first_day: dt.date, last_day: dt.date) -> list[dt.date]:
    """The 1st of each month that falls within [first_day, last_day]."""
    out = []
    month = first_day.replace(day=1)
    if month < first_day:
        month = (month + dt.timedelta(days=32)).replace(day=1)
    while month <= last_day:
        out.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return out


@dataclass
class Rater:
    """Rates a stream of calls into a statement, keeping only running totals (and the lines
    when ``keep_lines``), so a million calls need no more memory than ten.

    Give it the account's calls in start order from the first day of ``first_day``'s month
    (earlier calls only use up the monthly bundle; they are not on the statement).
    """

    tariff: Tariff
    plan: str
    first_day: dt.date
    last_day: dt.date
    account: str = ""
    keep_lines: bool = True
    zone: dt.tzinfo = BILLING_ZONE
    # The subscription [start, end] (end None: open) this rater bills: monthly fees and bundles
    # of months it only partly covers are pro rata. None: every month in full (a quote).
    subscription: tuple[dt.date, dt.date | None] | None = None
    charge_fees: bool = True  # False: calls only (days with no subscription)
    trial_left: int = 0  # free trial calls the account still has when the calls begin
    _terms: dict[dt.date, Terms] = field(default_factory=dict, init=False, repr=False)
    _additional: dict[dt.date, AdditionalPrices] = field(default_factory=dict, init=False, repr=False)
    _days: dict[int, dt.date] = field(default_factory=dict, init=False, repr=False)
    _lines: list[RatedCall] = field(default_factory=list, init=False, repr=False)
    _units_by_day: dict[dt.date, int] = field(default_factory=dict, init=False, repr=False)
    _calls: int = field(default=0, init=False)
    _seconds: int = field(default=0, init=False)
    _last_start: int = field(default=-(2**62), init=False)
    _month: dt.date | None = field(default=None, init=False)
    _bundle_left: int = field(default=0, init=False)
    # Trials: the months with a call outside the trial (monthly plan, while a trial is left),
    # and the day the last trial call was made.
    _paid_months: set[dt.date] | None = field(default=None, init=False, repr=False)
    _trial_used_up: dt.date | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._dated = self.tariff.terms(self.plan)
        if self.trial_left > 0 and self.plan == "monthly":
            self._paid_months = set()
        if self.last_day < self.first_day:
            raise ValueError(f"the statement ends ({self.last_day}) before it starts ({self.first_day})")

    def _day(self, start: int) -> dt.date:
        # Every zone's day starts on a quarter hour of UTC: cache per 15 minutes.
        slot = start // 900
        day = self._days.get(slot)
        if day is None:
            day = dt.datetime.fromtimestamp(slot * 900, self.zone).date()
            self._days[slot] = day
        return day

    def _terms_on(self, day: dt.date) -> Terms:
        terms = self._terms.get(day)
        if terms is None:
            terms = self._terms[day] = self._dated.on(day)
        return terms

    def add(self, call: Call) -> None:
        """Rate one call (a call that is not billed, or not on the statement, changes nothing
        but the monthly bundle)."""
        self.add_all((call,))

    def add_all(self, calls: Iterable[tuple[int, str, str, str, int, str]]) -> None:
        """Rate calls, given as Call tuples or plain tuples in the same order (the hot loop)."""
        monthly = self.plan == "monthly"
        first_day, last_day = self.first_day, self.last_day
        units_by_day = self._units_by_day
        lines = self._lines if self.keep_lines else None
        trial = self.trial_left > 0
        paid = self._paid_months
        for start, number, cls, country, billsec, uniqueid in calls:
            if start < self._last_start:
                raise ValueError(f"calls must come in start order (call {uniqueid or number} is out of order)")
            self._last_start = start
            if billsec <= 0 or cls not in _EXTERNAL:
                continue
            day = self._days.get(start // 900) or self._day(start)
            if trial and cls != _FREEPHONE:
                trial = self._trial_call(day, start, number, cls, country, billsec, uniqueid)
                continue
            if paid is not None:
                paid.add(day.replace(day=1))
            if day > last_day:
                continue
            terms = self._terms.get(day) or self._terms_on(day)
            increment = terms.increment_seconds
            billed = -(-billsec // increment) * increment
            if cls == _LANDLINE:
                price = terms.landline
            elif cls == _MOBILE:
                price = terms.mobile
            else:
                additional = self._additional.get(day)
                if additional is None:
                    additional = self._additional[day] = self.tariff.additional.on(day)
                price = additional.price(cls, country)
            bundle = 0
            if monthly and cls == _LANDLINE:
                month = day.replace(day=1)
                if month != self._month:
                    self._month = month
                    self._bundle_left = self._month_bundle(month)
                bundle = min(billed, self._bundle_left)
                self._bundle_left -= bundle
            units = (billed - bundle) * price.units_per_second
            if 0 < units < terms.minimum_units:
                units = terms.minimum_units
            if day < first_day:
                continue
            self._calls += 1
            self._seconds += billed
            units_by_day[day] = units_by_day.get(day, 0) + units
            if lines is not None:
                lines.append(
                    RatedCall(
                        day=day,
                        start=dt.datetime.fromtimestamp(start, self.zone),
                        number=number,
                        number_class=str(cls),
                        country=country,
                        billsec=billsec,
                        billed_seconds=billed,
                        bundle_seconds=bundle,
                        pence_per_minute=price.pence_per_minute,
                        units=units,
                        uniqueid=uniqueid,
                    )
                )

    def _month_bundle(self, month: dt.date) -> int:
        """The month's bundle in seconds: pro rata when the subscription covers only part of it."""
        on = max(month, self._dated.starts[0])
        seconds = self._terms_on(on).bundle_landline_minutes * 60
        if self.subscription is None:
            return seconds
        covered = covered_days(month, *self.subscription)
        return prorated(seconds, covered[1], days_in_month(month)) if covered else 0

    def _trial_call(self, day: dt.date, start: int, number: str, cls: str, country: str, billsec: int,
                    uniqueid: str) -> bool:
        """A free trial call: on the statement (when in its range) at 0p, with no bundle and no
        day fee. Returns whether the account has trial calls left after it."""
        self.trial_left -= 1
        if self.trial_left == 0:
            self._trial_used_up = day
        if self.first_day <= day <= self.last_day:
            increment = self._terms_on(day).increment_seconds
            billed = -(-billsec // increment) * increment
            self._calls += 1
            self._seconds += billed
            if self.keep_lines:
                self._lines.append(
                    RatedCall(day=day, start=dt.datetime.fromtimestamp(start, self.zone), number=number,
                              number_class=str(cls), country=country, billsec=billsec, billed_seconds=billed,
                              bundle_seconds=0, pence_per_minute=Fraction(0), units=0, uniqueid=uniqueid, trial=True)
                )
        return self.trial_left > 0

    def add_group(self, day: dt.date, number_class: str, country: str, increments: int, calls: int) -> None:
        """Rate ``calls`` answered calls started on ``day`` to numbers of one class and country,
        each billed ``increments`` of the day's increment: the same as adding them one by one.
        Daily plan without lines only (the monthly bundle and the lines need every call)."""
        if self.plan != "daily" or self.keep_lines:
            raise ValueError("grouped calls are rated on the daily plan without lines only")
        if calls <= 0 or number_class not in _EXTERNAL or not self.first_day <= day <= self.last_day:
            return
        terms = self._terms_on(day)
        billed = increments * terms.increment_seconds
        if number_class == _LANDLINE:
            price = terms.landline
        elif number_class == _MOBILE:
            price = terms.mobile
        else:
            price = self.tariff.additional.on(day).price(number_class, country)
        units = billed * price.units_per_second
        if 0 < units < terms.minimum_units:
            units = terms.minimum_units
        self._calls += calls
        self._seconds += billed * calls
        self._units_by_day[day] = self._units_by_day.get(day, 0) + units * calls

    def _fees(self) -> list[Fee]:
        if not self.charge_fees:
            return []
        if self.plan == "daily":
            return [Fee(d, "daily fee", self._terms_on(d).fee_pence) for d in sorted(self._units_by_day)]
        if self.subscription is not None:
            return self._subscribed_month_fees()
        fees = []
        for month in month_starts(self.first_day, self.last_day):
            try:
                terms = self._terms_on(month)
            except TariffError:
                continue  # no monthly plan yet on that date
            fees.append(Fee(month, f"monthly fee {month:%B %Y}", terms.fee_pence))
        return fees

    def _subscribed_month_fees(self) -> list[Fee]:
        """Each month's fee, dated the first day of it the subscription covers (the 1st of a
        whole month), pro rata by days; waived for a month of trial calls only."""
        assert self.subscription is not None
        fees = []
        month = self.first_day.replace(day=1)
        while month <= self.last_day:
            covered = covered_days(month, *self.subscription)
            if covered is not None and self.first_day <= covered[0] <= self.last_day and not self._trial_month(month):
                day, days = covered
                try:
                    terms = self._terms_on(day)
                except TariffError:
                    terms = None  # no monthly plan yet on that date
                if terms is not None:
                    of_days = days_in_month(month)
                    part = "" if days >= of_days else f" ({days}/{of_days} days)"
                    fees.append(Fee(day, f"monthly fee {month:%B %Y}{part}", prorated(terms.fee_pence, days, of_days)))
            month = (month + dt.timedelta(days=32)).replace(day=1)
        return fees

    def _trial_month(self, month: dt.date) -> bool:
        if self._paid_months is None or month in self._paid_months:
            return False
        return self._trial_used_up is None or self._trial_used_up >= month

    def statement(self) -> Statement:
        fees = self._fees()
        units_by_day = dict(self._units_by_day)
        for fee in fees:
            units_by_day[fee.day] = units_by_day.get(fee.day, 0) + fee.pence * UNITS_PER_PENNY
        by_percent: dict[Fraction, int] = {}
        for day, units in units_by_day.items():
            percent = self.tariff.vat_percent.on(day)
            by_percent[percent] = by_percent.get(percent, 0) + units
        parts = tuple(VatPart(p, Fraction(u, UNITS_PER_PENNY)) for p, u in sorted(by_percent.items()))
        calls_pence = Fraction(sum(self._units_by_day.values()), UNITS_PER_PENNY)
        fees_pence = sum(f.pence for f in fees)
        net_pence = round_half_up(calls_pence + fees_pence)
        vat_pence = round_half_up(sum((part.net_pence * part.percent / 100 for part in parts), Fraction(0)))
        return Statement(
            account=self.account,
            plan=self.plan,
            first_day=self.first_day,
            last_day=self.last_day,
            tariff=self.tariff.name,
            lines=tuple(self._lines),
            fees=tuple(fees),
            calls=self._calls,
            billed_seconds=self._seconds,
            calls_pence=calls_pence,
            fees_pence=fees_pence,
            vat_parts=parts,
            net_pence=net_pence,
            vat_pence=vat_pence,
            total_pence=net_pence + vat_pence,
        )


def rate(
    calls: Iterable[Call],
    tariff: Tariff,
    plan: str,
    first_day: dt.date,
    last_day: dt.date,
    account: str = "",
    keep_lines: bool = True,
) -> Statement:
    """The statement for ``calls`` (in start order) over [first_day, last_day] inclusive."""
    rater = Rater(tariff, plan, first_day, last_day, account, keep_lines)
    rater.add_all(calls)
    return rater.statement()


def statement_window(plan: str, first_day: dt.date, last_day: dt.date, zone: dt.tzinfo = BILLING_ZONE) -> tuple[int, int]:
    """The UTC epoch range [from, to) of calls a statement must be given: from the first day of
    the month (the monthly bundle counts earlier calls) up to the end of ``last_day``."""
    begin = first_day.replace(day=1) if plan == "monthly" else first_day
    start = dt.datetime.combine(begin, dt.time(0), zone)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), zone)
    return int(start.timestamp()), int(end.timestamp())
