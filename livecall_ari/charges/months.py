"""Months and pence: rounding half up, and a month's share of a fee or bundle. Pure.

The pro-rata rule (docs/charges.md): a month the subscription covers only partly pays
``amount x days covered / days in the month``, rounded half up once, to a penny (the fee) or a
second (the bundle).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

__all__ = ["covered_days", "days_in_month", "prorated", "round_half_up"]


def round_half_up(amount: Fraction) -> int:
    """To the nearest penny, halves away from zero (0.5p -> 1p, -0.5p -> -1p)."""
    if amount < 0:
        return -round_half_up(-amount)
    return int((2 * amount.numerator + amount.denominator) // (2 * amount.denominator))


def days_in_month(day: dt.date) -> int:
    following = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return (following - day.replace(day=1)).days


def covered_days(month: dt.date, start: dt.date, end: dt.date | None) -> tuple[dt.date, int] | None:
    """The first day of ``month`` inside [start, end] (end None: open) and how many of the
    month's days are, or None when none is."""
    first = max(month.replace(day=1), start)
    last = month.replace(day=days_in_month(month))
    if end is not None:
        last = min(last, end)
    if last < first:
        return None
    return first, (last - first).days + 1


def prorated(amount: int, days: int, of_days: int) -> int:
    """``amount`` (a month's fee in pence, or its bundle in seconds) for ``days`` of a month of
    ``of_days``: amount x days / of_days, rounded half up once, to a penny or a second."""
    return amount if days >= of_days else round_half_up(Fraction(amount * days, of_days))
