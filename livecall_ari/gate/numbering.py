"""The UK's short codes and special ranges, as pure data: which dialled digits are not a
subscriber's number but a service every phone must reach.

Source: Ofcom, *The National Telephone Numbering Plan* (made under section 56 of the
Communications Act 2003), its designations of short codes (999, 112, 100, 101, 105, 111, 119,
123, 155, 159), of the harmonised European 116 range (116xxx), of directory enquiries (118xxx)
and of the text relay prefixes (18000 for the emergency services, 18001 and 18002 followed by a
full number). Only what that plan designates is here; nothing is guessed from a number's shape.

Emergency-class codes (999, 112 and 18000, the emergency services by text relay) never wait for
the gate: the generated dialplan sends them to the trunk first. The others pass through the gate,
which allows them for every purpose with the reason ``special_number``. A text relay prefix is
followed by the number the relay assistant connects: that number is a person's and is screened
as if dialled alone (the prefix never lets anything else through).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ShortCodeKind = Literal["emergency", "service"]


@dataclass(frozen=True)
class ShortCode:
    """A designated code: exactly ``code`` when ``length`` is its own length, else ``code``
    followed by digits up to ``length`` in all (116123 is 116 and three digits)."""

    code: str
    length: int
    name: str
    kind: ShortCodeKind = "service"

    def matches(self, digits: str) -> bool:
        return len(digits) == self.length and digits.startswith(self.code) and digits.isdigit() and digits.isascii()


SHORT_CODES: tuple[ShortCode, ...] = (
    ShortCode("999", 3, "emergency services", "emergency"),
    ShortCode("112", 3, "emergency services (European number)", "emergency"),
    ShortCode("18000", 5, "emergency services by text relay", "emergency"),
    ShortCode("100", 3, "operator assistance"),
    ShortCode("101", 3, "police non-emergency"),
    ShortCode("105", 3, "power cut (electricity network operators)"),
    ShortCode("111", 3, "NHS non-emergency"),
    ShortCode("119", 3, "NHS services"),
    ShortCode("123", 3, "speaking clock"),
    ShortCode("155", 3, "international operator"),
    ShortCode("159", 3, "bank fraud line"),
    ShortCode("116", 6, "harmonised European service of social value (116xxx)"),
    ShortCode("118", 6, "directory enquiries (118xxx)"),
)

# Text relay (Relay UK): the prefix, then the full number the relay assistant connects.
RELAY_PREFIXES: dict[str, str] = {
    "18001": "text relay, from a text user",
    "18002": "text relay, to a textphone user",
}
# What may follow a relay prefix: a national (0...) or international (00...) number of at least
# this many digits; a short code behind a prefix is not a relay call.
RELAYED_MIN_DIGITS = 10

EMERGENCY_NUMBERS = frozenset(c.code for c in SHORT_CODES if c.kind == "emergency")


@dataclass(frozen=True)
class SpecialNumber:
    """Dialled digits that are a short code, or a relay prefix with the number behind it."""

    digits: str
    name: str
    kind: ShortCodeKind
    # For a relay call: the prefix and the number it carries; empty otherwise.
    relay_prefix: str = ""
    relayed: str = ""


def special_number(digits: str) -> SpecialNumber | None:
    """The short code or relay call ``digits`` is (outside-line prefix already dropped), else None."""
    for code in SHORT_CODES:
        if code.matches(digits):
            return SpecialNumber(digits, code.name, code.kind)
    for prefix, name in RELAY_PREFIXES.items():
        rest = digits[len(prefix):]
        if (digits.startswith(prefix) and rest.startswith("0") and len(rest) >= RELAYED_MIN_DIGITS
                and rest.isdigit() and rest.isascii()):
            return SpecialNumber(digits, name, "service", prefix, rest)
    return None
