"""How the portal writes a time, a date, an amount of money and a screening reason for people.

One rule each, used by every page (registered as Jinja filters in web.py), by the printable
statement and the invoice PDF, and mirrored by ``formatLondon`` in static/portal.js for the live
board: a moment is London wall-clock time with its zone ("29 Nov 2026 14:05 GMT"), a date is
"29 Nov 2026", money is pounds with two decimals ("£1,234.56") from pence. Pure functions: no
clock, no locale (month names are fixed English abbreviations, whatever the machine's locale),
so the server and the browser write the same text. CSV and JSON keep ISO times and pence.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Mapping
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NONE = "-"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# The gate's stable reason codes (screening/core.py REASONS, and gate/core.refusal's), in plain
# words: the calls list and a call's page show these, the code only as secondary text.
REASON_TEXT: Mapping[str, str] = {
    "invalid_number": "Not a valid UK or international number",
    "objection": "The person asked not to get our marketing calls (objection list or erasure)",
    "tps": "Registered with the Telephone Preference Service (TPS)",
    "ctps": "Registered with the Corporate TPS (CTPS)",
    "consent_required": "Claims and pension calls need the person's consent (pensions: or an existing client relationship), and none is on record",
    "stale_list": "The TPS/CTPS lists are too old to rely on: import a newer file",
    "outside_hours": "Outside the permitted calling hours",
    "bank_holiday": "A bank holiday: no marketing calls",
    "caller_id": "No valid caller ID to present (PECR reg. 21(A1))",
    "blocked": "On the static block list",
    "error": "The call could not be screened, so it was not connected",
    "special_number": "A special number (NHS 111, 101, a 116 helpline...): allowed for every purpose",
    "emergency": "An emergency number: always connected",
}


def reason_text(code: str) -> str:
    """A reason code in plain words; an unknown code is shown as it is rather than hidden."""
    return REASON_TEXT.get(code, code.replace("_", " "))


def _moment(value: object) -> dt.datetime | dt.date | None:
    """A stored value as a datetime (naive means UTC, as the database keeps it) or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    text = str(value).strip()
    if _DATE_ONLY.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def london_date(value: object) -> str:
    """A date as "29 Nov 2026"; a moment as its date in London; "-" for nothing."""
    found = _moment(value)
    if found is None:
        return NONE if value in (None, "") else str(value)
    if isinstance(found, dt.datetime):
        found = _in_london(found).date()
    return f"{found.day} {MONTHS[found.month - 1]} {found.year}"


def london_datetime(value: object) -> str:
    """A moment as London wall-clock time with its zone, "29 Nov 2026 14:05 GMT" (BST in
    summer); a date-only value is written as a date, never as a made-up midnight; "-" for
    nothing; text that is no time at all comes back as it is."""
    found = _moment(value)
    if found is None:
        return NONE if value in (None, "") else str(value)
    if not isinstance(found, dt.datetime):
        return london_date(found)
    at = _in_london(found)
    return f"{at.day} {MONTHS[at.month - 1]} {at.year} {at:%H:%M} {at.tzname()}"


def _in_london(at: dt.datetime) -> dt.datetime:
    return (at if at.tzinfo is not None else at.replace(tzinfo=dt.timezone.utc)).astimezone(LONDON)


def money(pence: int | Fraction | Decimal | str | None) -> str:
    """Pence as pounds with two decimals and thousands separated, "£1,234.56" ("-£0.50" when
    negative); an exact fraction of a penny is rounded half up to the penny, as invoices round."""
    if pence is None or pence == "":
        return NONE
    try:
        exact = Fraction(pence) if not isinstance(pence, Fraction) else pence
    except (ValueError, ZeroDivisionError):
        return str(pence)
    whole = int((Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP)) \
        if exact.denominator != 1 else exact.numerator
    sign = "-" if whole < 0 else ""
    return f"{sign}£{abs(whole) // 100:,}.{abs(whole) % 100:02d}"
