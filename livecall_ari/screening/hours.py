"""Permitted calling hours and UK bank holidays. Pure: the time of the call is passed in.

Hours are a set of weekdays and a start and end time of day in a named time zone (by default
Monday to Friday, 09:00 to 17:00, Europe/London). The call's instant is converted to that zone
before comparing, so 08:30 UTC is 09:30 in British Summer Time and inside the hours, but 08:30
in winter and outside them. Bank holidays come from the ``holidays`` package for the configured
nation; substitute ("observed") days count as bank holidays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# The nation names accepted in [screening] nation, to the holidays package's GB subdivisions.
NATIONS = {
    "england": "ENG",
    "wales": "WLS",
    "scotland": "SCT",
    "northern ireland": "NIR",
    "northern-ireland": "NIR",
    "northern_ireland": "NIR",
    "eng": "ENG",
    "wls": "WLS",
    "sct": "SCT",
    "nir": "NIR",
}


def _parse_time(text: str, what: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{what}: expected a time of day like 09:00, got {text!r}") from None


def _parse_days(days: list[str], what: str) -> frozenset[int]:
    """``["mon-fri"]``, ``["mon", "tue"]`` or ``["mon-wed", "sat"]`` to weekday numbers (Monday 0)."""
    chosen: set[int] = set()
    for item in days:
        for part in item.split(","):
            part = part.strip().lower()[:7]
            if not part:
                continue
            first, _, last = part.partition("-")
            try:
                a = WEEKDAYS.index(first.strip()[:3])
                b = WEEKDAYS.index(last.strip()[:3]) if last else a
            except ValueError:
                raise ValueError(f"{what}: unknown day {item!r} (use mon, tue, ... sun or a range mon-fri)") from None
            chosen.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    if not chosen:
        raise ValueError(f"{what}: no calling days given")
    return frozenset(chosen)


@dataclass(frozen=True)
class CallingHours:
    """When marketing calls may be made: weekdays (Monday is 0) and [start, end) in ``zone``."""

    days: frozenset[int]
    start: dt.time
    end: dt.time
    zone: dt.tzinfo

    @classmethod
    def from_settings(cls, days: list[str], start: str, end: str, timezone: str) -> "CallingHours":
        """Build from the ``[screening]`` settings; a bad value raises ValueError naming the field."""
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"[screening] timezone: unknown time zone {timezone!r}") from None
        begin = _parse_time(start, "[screening] calling_start")
        finish = _parse_time(end, "[screening] calling_end")
        if finish <= begin:
            raise ValueError(f"[screening] calling_end ({end}) must be after calling_start ({start})")
        return cls(_parse_days(days, "[screening] calling_days"), begin, finish, zone)

    def local(self, at: dt.datetime) -> dt.datetime:
        if at.tzinfo is None:
            raise ValueError("the time of a call must carry a time zone")
        return at.astimezone(self.zone)

    def permits(self, local: dt.datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def describe(self) -> str:
        days = ",".join(WEEKDAYS[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.zone}"


class BankHolidays:
    """The bank holidays of one UK nation, substitute days included; looked up by local date."""

    def __init__(self, nation: str) -> None:
        code = NATIONS.get(nation.strip().lower())
        if code is None:
            raise ValueError(
                f"[screening] nation: unknown nation {nation!r} (use England, Wales, Scotland or Northern Ireland)"
            )
        self.nation = code
        self._calendar: Any = holidays.country_holidays("GB", subdiv=code)
        self._seen: dict[dt.date, str | None] = {}

    def name(self, day: dt.date) -> str | None:
        """The holiday's name (``"Boxing Day (observed)"``) or None on a working day."""
        try:
            return self._seen[day]
        except KeyError:
            found = self._calendar.get(day)
            name = str(found) if found else None
            self._seen[day] = name
            return name
