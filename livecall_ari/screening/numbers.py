"""Telephone numbers: what an agent dialled, normalised to E.164 and to a compact integer key.

Normalisation follows libphonenumber (the ``phonenumbers`` package) with the UK as default
region. Parsing a string with ``phonenumbers.parse`` and validating it costs about 45 µs, most
of the 50 µs a whole decision may take, so UK numbers written the usual ways (``020 7946 0018``,
``+44 20 7946 0018``, ``0044 20 7946 0018``) take a fast path: the digits are picked out by hand
and checked against the same libphonenumber metadata for the +44 regions (GB, Guernsey, Isle of
Man, Jersey), choosing the region and then the type in the order ``phonenumbers`` uses. Anything else goes to ``phonenumbers.parse`` itself. A property test
checks that both paths always agree with ``phonenumbers``.

A number is stored as the integer of its E.164 digits (``+442079460018`` -> 442079460018): eight
bytes, sortable, and the same key the TPS files are converted to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Pattern

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from livecall_ari.gate.numbering import EMERGENCY_NUMBERS as EMERGENCY_NUMBERS

# Characters agents and spreadsheets put between digits; dropped before anything else.
_PUNCTUATION = str.maketrans("", "", " \t-().,/\u00a0\u2010\u2011\u2012\u2013\u2014")

# Number types that can be rung back as a presented caller ID. Premium rate (09, 087x) and
# personal numbering (070) are excluded following Ofcom's CLI guidance; pagers and
# voicemail-only numbers cannot answer a call back.
CALLBACK_TYPES = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.VOIP,
        PhoneNumberType.UAN,
    }
)


@dataclass(frozen=True)
class Number:
    """A valid telephone number: E.164 text, integer key, country code and libphonenumber type."""

    e164: str
    key: int
    country_code: int
    kind: int

    @property
    def is_uk(self) -> bool:
        return self.country_code == 44


def key_to_e164(key: int) -> str:
    return f"+{key}"


def e164_to_key(e164: str) -> int:
    return int(e164.lstrip("+"))


def national_to_key(national: str) -> int:
    """UK national digits as written in the TPS files (``02073787244``) to the integer key."""
    if not national.startswith("0") or not national.isdigit():
        raise ValueError(f"not a UK national number: {national!r}")
    return int("44" + national[1:])


def compact(dialled: str) -> str:
    """Drop spaces and punctuation, keep digits, ``+`` and anything unexpected."""
    return dialled.translate(_PUNCTUATION)


_FIXED = int(PhoneNumberType.FIXED_LINE)


class _RegionTypes:
    """libphonenumber's type rules for one region, with the patterns compiled once."""

    _ORDER = (
        ("premium_rate", PhoneNumberType.PREMIUM_RATE),
        ("toll_free", PhoneNumberType.TOLL_FREE),
        ("shared_cost", PhoneNumberType.SHARED_COST),
        ("voip", PhoneNumberType.VOIP),
        ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
        ("pager", PhoneNumberType.PAGER),
        ("uan", PhoneNumberType.UAN),
        ("voicemail", PhoneNumberType.VOICEMAIL),
    )

    def __init__(self, region: str) -> None:
        meta = PhoneMetadata.metadata_for_region(region)
        assert meta is not None
        self.region = region
        self.leading_digits = re.compile(meta.leading_digits) if meta.leading_digits else None
        general = self._desc(meta.general_desc)
        assert general is not None
        self._general_lengths, self._general = general
        ordered = [(kind, d) for name, kind in self._ORDER if (d := self._desc(getattr(meta, name))) is not None]
        fixed = self._desc(meta.fixed_line)
        mobile = self._desc(meta.mobile)
        self._same = bool(meta.same_mobile_and_fixed_line_pattern)
        self._mobile = mobile
        if fixed is not None:
            ordered.append((_FIXED, fixed))
        if mobile is not None and not self._same:
            ordered.append((PhoneNumberType.MOBILE, mobile))
        # One alternation per number length, types in phonenumbers' order: fullmatch takes the
        # first alternative that matches the whole number, as its chain of checks does.
        self._by_length: dict[int, Pattern[str]] = {}
        for length in range(1, 18):
            parts = [
                f"(?P<t{kind}>{pattern.pattern})"
                for kind, (lengths, pattern) in ordered
                if not lengths or length in lengths
            ]
            if parts:
                self._by_length[length] = re.compile("|".join(parts))

    @staticmethod
    def _desc(desc: object) -> tuple[frozenset[int], Pattern[str]] | None:
        pattern = getattr(desc, "national_number_pattern", None)
        if desc is None or pattern is None:
            return None
        return frozenset(getattr(desc, "possible_length", ()) or ()), re.compile(pattern)

    def type_of(self, nsn: str) -> int:
        """As phonenumbers' ``_number_type_helper``: the first matching type, in its order."""
        length = len(nsn)
        if self._general_lengths and length not in self._general_lengths:
            return PhoneNumberType.UNKNOWN
        if self._general.fullmatch(nsn) is None:
            return PhoneNumberType.UNKNOWN
        combined = self._by_length.get(length)
        found = combined.fullmatch(nsn) if combined is not None else None
        if found is None or found.lastgroup is None:
            return PhoneNumberType.UNKNOWN
        kind = int(found.lastgroup[1:])
        if kind != _FIXED:
            return kind
        if self._same:
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        mobile = self._mobile
        if mobile is not None and (not mobile[0] or length in mobile[0]) and mobile[1].fullmatch(nsn):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE


class _Plus44:
    """The regions sharing +44 (GB and the Crown dependencies), chosen as phonenumbers does."""

    def __init__(self) -> None:
        self._regions = [_RegionTypes(r) for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[44]]

    def type_of(self, nsn: str) -> int:
        for region in self._regions:
            if region.leading_digits is not None:
                if region.leading_digits.match(nsn):
                    return region.type_of(nsn)
            elif region.type_of(nsn) != PhoneNumberType.UNKNOWN:
                return region.type_of(nsn)
        return PhoneNumberType.UNKNOWN


class NumberParser:
    """Turns dialled strings into :class:`Number` values. Build one and keep it: it compiles the
    GB patterns once. Pure: no I/O, no clock."""

    def __init__(self, outside_line_prefix: str = "") -> None:
        self.outside_line_prefix = outside_line_prefix
        self._plus44 = _Plus44()

    def strip_prefix(self, digits: str) -> str:
        """Drop the PBX's outside-line prefix when what follows it is a number in its own right."""
        prefix = self.outside_line_prefix
        if prefix and digits.startswith(prefix):
            rest = digits[len(prefix):]
            if rest[:1] in ("0", "+") or rest in EMERGENCY_NUMBERS:
                return rest
        return digits

    def _fast_nsn(self, digits: str) -> str | None:
        if digits.startswith("+44"):
            nsn = digits[3:]
        elif digits.startswith("0044"):
            nsn = digits[4:]
        elif digits.startswith("0") and not digits.startswith("00"):
            nsn = digits[1:]
        else:
            return None
        # A leading 0, or 180020 (a national prefix GB also strips), makes phonenumbers rewrite
        # the digits: leave those to it.
        if not (nsn.isdigit() and nsn.isascii()) or nsn.startswith(("0", "180020")):
            return None
        return nsn

    def parse(self, dialled: str) -> Number | None:
        """The valid number behind ``dialled`` (prefix and punctuation dropped), else None."""
        digits = self.strip_prefix(compact(dialled))
        if digits.count("+") > 1:
            # Punctuation between two plus signs ("+-+60...") is not a number; dropping it first
            # would make one ("++60..."): leave the text as written to phonenumbers.
            return self._slow(self.strip_prefix(dialled.strip()))
        nsn = self._fast_nsn(digits)
        if nsn is not None:
            kind = self._plus44.type_of(nsn)
            if kind == PhoneNumberType.UNKNOWN:
                return None
            return Number("+44" + nsn, int("44" + nsn), 44, kind)
        return self._slow(digits)

    @staticmethod
    def _slow(digits: str) -> Number | None:
        try:
            parsed = phonenumbers.parse(digits, "GB")
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
        return Number(e164, e164_to_key(e164), int(parsed.country_code or 0), int(phonenumbers.number_type(parsed)))

    def callback_caller_id(self, caller_id: str | None) -> Number | None:
        """The presented caller ID when it is a UK number that can be called back, else None."""
        if caller_id is None or caller_id.strip().lower() in ("", "anonymous", "withheld", "unavailable"):
            return None
        number = self.parse(caller_id)
        digits = compact(caller_id)
        if number is None and digits.startswith("44") and digits.isdigit():
            # Trunks often present the CLI in international form without the "+".
            number = self.parse("+" + digits)
        if number is None or not number.is_uk or number.kind not in CALLBACK_TYPES:
            return None
        return number

    def display(self, dialled: str) -> str:
        """What a decision shows for an invalid number: the dialled digits without the prefix."""
        return self.strip_prefix(compact(dialled))


def reference_e164(dialled: str) -> str | None:
    """The E.164 form by ``phonenumbers`` alone (slow; the property tests compare against it)."""
    try:
        parsed = phonenumbers.parse(dialled, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, PhoneNumberFormat.E164))
