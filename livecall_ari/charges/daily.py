"""Daily-plan statements from grouped calls: the database counts, the rater prices.

A daily-plan statement without lines needs of each answered external call only its account,
local day, class, country and number of increments: every call alike in those five costs the
same. So the database groups the calls in one pass and sends back a count per group (a hundred
thousand groups for a million calls), and :meth:`~livecall_ari.charges.rating.Rater.add_group`
prices each group as that many identical calls, which gives the statement the rater gives call
by call (a test compares the two on generated calls, clock changes included). Monthly plans
(the bundle is used in call order) and statements with lines still rate call by call.

Both steps the rater takes per call are written in SQL here, exactly as the rater takes them:

* the local day: the rater reads the zone's offset at the start of the call's quarter hour of
  UTC, so the SQL adds a CASE over the quarter hours at which the offset changes inside the
  window (two a year in Europe/London) to the quarter hour's start, and divides by 86400;
* the increment: a CASE over the days on which the plan's increment changes.

Pure: this module builds the query text and turns day numbers back into dates.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from livecall_ari.charges.classify import EXTERNAL
from livecall_ari.charges.tariff import Dated, Terms

SLOT = 900  # seconds: the rater caches the local day per quarter hour of UTC
EPOCH_DAY = dt.date(1970, 1, 1)
_EXTERNAL_SQL = ", ".join(f"'{c}'" for c in sorted(str(c) for c in EXTERNAL))


def offset_changes(zone: dt.tzinfo, start: int, end: int) -> list[tuple[int, int]]:
    """The zone's UTC offset (seconds) at the quarter hours of UTC in [start, end): the first
    quarter hour's offset, then each quarter hour at which it differs from the one before, as
    (epoch of the quarter hour, offset)."""
    changes: list[tuple[int, int]] = []
    last: int | None = None
    for slot in range(start // SLOT, (end - 1) // SLOT + 1):
        at = slot * SLOT
        offset = dt.datetime.fromtimestamp(at, zone).utcoffset()
        seconds = int(offset.total_seconds()) if offset is not None else 0
        if seconds != last:
            changes.append((at, seconds))
            last = seconds
    return changes


def _case(column: str, steps: Sequence[tuple[int, int]]) -> str:
    """SQL for the value of the last step whose start is at most ``column`` (the first step's
    value below all of them): ``steps`` are (start, value) in order of start."""
    if len({value for _, value in steps}) == 1:
        return str(steps[0][1])
    branches = " ".join(f"WHEN {column} < {steps[i + 1][0]} THEN {steps[i][1]}" for i in range(len(steps) - 1))
    return f"(CASE {branches} ELSE {steps[-1][1]} END)"


def groups_sql(table: str, param: str, zone: dt.tzinfo, terms: Dated[Terms], start: int, end: int) -> str | None:
    """SQL giving (account, day number, class, country, increments, calls) for the answered
    external calls with start in [start, end) (two parameters), grouped; None when the
    window starts so near 1970 that SQL's division would not round down as the rater does."""
    changes = offset_changes(zone, start, end)
    if start - 86400 < 0 or any(offset <= -86400 for _, offset in changes):
        return None
    day = f"((start_utc / {SLOT}) * {SLOT} + {_case('start_utc', changes)}) / 86400"
    increments = [((d - EPOCH_DAY).days, t.increment_seconds) for d, t in zip(terms.starts, terms.values)]
    increment = _case("day", increments)
    return (
        f"SELECT account, day, number_class, country, (billsec + {increment} - 1) / {increment} AS increments, "
        f"count(*) FROM (SELECT account, {day} AS day, number_class, country, billsec FROM {table} "
        f"WHERE start_utc >= {param} AND start_utc < {param} AND billsec > 0 AND number_class IN ({_EXTERNAL_SQL})) "
        "AS calls GROUP BY account, day, number_class, country, increments ORDER BY day"
    )


def day_of(number: int) -> dt.date:
    """The date of a day number (days since 1970-01-01)."""
    return EPOCH_DAY + dt.timedelta(days=number)
