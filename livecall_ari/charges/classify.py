"""What kind of number a call went to, for rating: pure, with phonenumbers' UK metadata.

The classes follow how UK calls are charged, not only libphonenumber's number types:

* ``landline``: 01 and 02, and 03, which Ofcom requires to be charged like geographic numbers
  (libphonenumber calls 03 a "UAN");
* ``mobile``: 07 mobile ranges (including the Crown Dependencies' +44 mobiles, 07624 and so on);
  070 ``personal`` numbers and 076 ``pager``\\s are not mobiles;
* ``freephone`` 0800/0808 and 116xxx; ``service`` 084/087 (libphonenumber files them as
  premium rate); ``premium`` 09 and 118xxx directory enquiries; ``other`` for the rest of +44
  (055 corporate, 056 VoIP, numbers of no valid length);
* ``international``, with the ISO country (region) the tariff looks up;
* ``internal`` extensions and ``emergency`` (999, 112): never billed.

Numbers libphonenumber does not know (new Ofcom allocations, and Ofcom's drama ranges such as
07700 900xxx and 01632 960xxx used in tests) fall back to the leading digits of the national
number plan, so a real answered call is never left unclassified.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
from enum import StrEnum
from typing import NamedTuple, Sequence, cast

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers.phonemetadata import PhoneMetadata

from livecall_ari.gate.numbering import EMERGENCY_NUMBERS as _GATE_EMERGENCY_NUMBERS


class NumberClass(StrEnum):
    LANDLINE = "landline"
    MOBILE = "mobile"
    PERSONAL = "personal"
    PAGER = "pager"
    FREEPHONE = "freephone"
    SERVICE = "service"
    PREMIUM = "premium"
    OTHER = "other"
    INTERNATIONAL = "international"
    INTERNAL = "internal"
    EMERGENCY = "emergency"
    # A call to one of the organisation's DIDs (LiveCall's CDR column livecall_purpose is
    # "inbound"): its "dialled number" is the DID, which the caller pays for, not the account.
    INBOUND = "inbound"


# Classes a call is charged for (freephone is charged at 0p but is an external call).
EXTERNAL = frozenset(NumberClass) - {NumberClass.INTERNAL, NumberClass.EMERGENCY, NumberClass.INBOUND}

_FIRST5, _AFTER1 = operator.itemgetter(slice(None, 5)), operator.itemgetter(slice(1, None))
_FIRST, _SECOND = operator.itemgetter(0), operator.itemgetter(1)

# 999, 112 and 18000 (emergency calls by text relay): the gate's own list.
EMERGENCY_NUMBERS = _GATE_EMERGENCY_NUMBERS
UK_COUNTRY_CODE = "44"


class Classified(NamedTuple):
    """A dialled number as rated: ``number`` in E.164 (or the extension as dialled), its class,
    and the ISO country (region) the tariff looks international numbers up by."""

    number: str
    number_class: NumberClass
    country: str


_UK_TYPES = {
    PhoneNumberType.FIXED_LINE: NumberClass.LANDLINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberClass.LANDLINE,
    PhoneNumberType.MOBILE: NumberClass.MOBILE,
    PhoneNumberType.PERSONAL_NUMBER: NumberClass.PERSONAL,
    PhoneNumberType.PAGER: NumberClass.PAGER,
    PhoneNumberType.TOLL_FREE: NumberClass.FREEPHONE,
    PhoneNumberType.SHARED_COST: NumberClass.SERVICE,
    PhoneNumberType.PREMIUM_RATE: NumberClass.PREMIUM,
    PhoneNumberType.VOIP: NumberClass.OTHER,
    PhoneNumberType.VOICEMAIL: NumberClass.OTHER,
}


def uk_class_by_prefix(national: str) -> NumberClass:
    """The class of a UK national significant number (no leading 0) from the numbering plan."""
    if len(national) not in (9, 10):
        return NumberClass.OTHER
    first = national[0]
    if first in "123":
        return NumberClass.LANDLINE
    if national.startswith("70"):
        return NumberClass.PERSONAL
    if national.startswith("76") and not national.startswith("7624"):
        return NumberClass.PAGER
    if first == "7":
        return NumberClass.MOBILE
    if national.startswith(("800", "808")):
        return NumberClass.FREEPHONE
    if national.startswith(("84", "87")):
        return NumberClass.SERVICE
    if first == "9":
        return NumberClass.PREMIUM
    return NumberClass.OTHER


def classify_e164(e164: str) -> tuple[NumberClass, str]:
    """(class, country) of a number in E.164, straight from phonenumbers (no cache)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return NumberClass.OTHER, ""
    cc = str(parsed.country_code)
    national = phonenumbers.national_significant_number(parsed)
    if cc == UK_COUNTRY_CODE:
        if phonenumbers.is_valid_number(parsed):
            ntype = phonenumbers.number_type(parsed)
            if ntype == PhoneNumberType.UAN:
                # Ofcom: 03 numbers are charged like geographic ones; 055 is corporate.
                cls = NumberClass.LANDLINE if national.startswith("3") else NumberClass.OTHER
            elif ntype == PhoneNumberType.PREMIUM_RATE and national.startswith(("84", "87")):
                cls = NumberClass.SERVICE
            else:
                cls = _UK_TYPES.get(ntype, NumberClass.OTHER)
            return cls, "GB"
        return uk_class_by_prefix(national), "GB"
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    if region == phonenumbers.UNKNOWN_REGION:
        region = ""
    return NumberClass.INTERNATIONAL, region


def classify_digits(digits: str) -> tuple[NumberClass, str]:
    """:func:`classify_e164` of ``"+" + digits``, quicker for a country code shared by several
    regions (+1, +61, +7...), whose numbers each need their region looked up.

    Of all phonenumbers does, only the region look-up depends on more than the leading digits;
    its parse can change nothing of such a number unless the national number has a leading
    zero, a length it refuses, or starts with what the country strips as a national prefix
    (+1 1..., +61 0... or 1831...). Those go the whole way; the rest skip the parse.
    """
    cc = _country_code(digits) if digits[:1] != "0" else ""
    if cc and cc != UK_COUNTRY_CODE:
        code = int(cc)
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
        national = digits[len(cc):]
        if len(regions) > 1 and 2 <= len(national) <= 17 and national[0] != "0" and not _strips_prefix(code, national):
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
            region = phonenumbers.region_code_for_number(number) or regions[0]
            return NumberClass.INTERNATIONAL, "" if region == phonenumbers.UNKNOWN_REGION else region
    return classify_e164("+" + digits)


@functools.cache
def _national_prefix(code: int) -> re.Pattern[str] | None:
    # The metadata phonenumbers' parse strips a national prefix by: the country's main region's.
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, phonenumbers.region_code_for_country_code(code))
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(prefix) if prefix else None


def _strips_prefix(code: int, national: str) -> bool:
    prefix = _national_prefix(code)
    return prefix is not None and prefix.match(national) is not None


def _country_code(digits: str) -> str:
    for n in (1, 2, 3):
        if int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:n]
    return ""


def _cache_key(digits: str) -> str:
    """Digits that decide the class and country of an E.164 number (without +).

    +44: the first 4 digits of the national number and the length (checked against
    phonenumbers for every 4-digit prefix). A country code of one region: the code. A code
    shared by several regions (+1 US/Canada/Caribbean, +7 Russia/Kazakhstan...): the whole
    number, since which region depends on whether phonenumbers knows the number.
    """
    if digits.startswith(UK_COUNTRY_CODE):
        return f"{digits[:6]}/{len(digits)}"
    cc = _country_code(digits)
    if cc and len(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[int(cc)]) == 1:
        return cc
    return digits


class NumberClassifier:
    """Classifies what an agent dialled, as in a CDR's ``dst``.

    Results are cached by the leading digits that decide them (see :func:`_cache_key`; tests
    check the cache against :func:`classify_e164` number by number), so a million calls to a
    million different numbers parse only a few thousand.
    """

    def __init__(self, outside_line_prefix: str = "", internal_max_digits: int = 6) -> None:
        self.outside_line_prefix = outside_line_prefix
        self.internal_max_digits = internal_max_digits
        self._cache: dict[str, tuple[NumberClass, str]] = {}
        # "0" + the first 4 national digits of an 11-digit UK number already classified, to its
        # class and country as plain strings: all that :meth:`plain` needs for most numbers.
        self._uk_prefix_hits: dict[str, tuple[str, str]] = {}
        self._hits_allowed = not outside_line_prefix.startswith("0")

    def plain(self, dialled: str) -> tuple[str, str, str]:
        """:meth:`classify` as plain strings (number, class, country), for bulk callers."""
        if len(dialled) == 11 and dialled.isdigit() and dialled.isascii():
            hit = self._uk_prefix_hits.get(dialled[:5])
            if hit is not None:
                return "+44" + dialled[1:], hit[0], hit[1]
        number, number_class, country = self.classify(dialled)
        return number, str(number_class), country

    def plain_columns(self, dialled: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
        """:meth:`plain` of each of ``dialled``, as columns (numbers, classes, countries): the
        11-digit UK numbers of a prefix already seen a column at a time, the rest one by one."""
        found: list[tuple[str, str] | None] = list(map(self._uk_prefix_hits.get, map(_FIRST5, dialled)))
        numbers = list(map("+44".__add__, map(_AFTER1, dialled)))
        regular = map(all, zip(found, map((11).__eq__, map(len, dialled)), map(str.isdigit, dialled), map(str.isascii, dialled)))
        for i in itertools.compress(range(len(numbers)), map(operator.not_, regular)):
            number, number_class, country = self.plain(dialled[i])
            numbers[i], found[i] = number, (number_class, country)
        known = cast("list[tuple[str, str]]", found)
        return numbers, list(map(_FIRST, known)), list(map(_SECOND, known))

    def classify(self, dialled: str) -> Classified:
        """The number (E.164), class and country of what was dialled."""
        if (
            len(dialled) in (10, 11)
            and dialled[0] == "0"
            and dialled[1] != "0"
            and dialled.isdigit()
            and dialled.isascii()
            and not (self.outside_line_prefix and dialled.startswith(self.outside_line_prefix))
        ):
            # The common case, kept short: a UK national number already seen (see _cache_key).
            hit = self._cache.get(f"44{dialled[1:5]}/{len(dialled) + 1}")
            if hit is not None:
                if len(dialled) == 11 and self._hits_allowed:
                    self._uk_prefix_hits[dialled[:5]] = (str(hit[0]), hit[1])
                return Classified("+44" + dialled[1:], hit[0], hit[1])
        d = dialled.strip()
        if d and not d[0].isdigit() and d[0] != "+":
            return Classified(d, NumberClass.INTERNAL, "")
        if " " in d or "-" in d:
            d = d.replace(" ", "").replace("-", "")
        prefix = self.outside_line_prefix
        if prefix and d.startswith(prefix):
            rest = d[len(prefix):]
            if (rest[:1] in ("0", "+") and len(rest) >= 8) or rest in EMERGENCY_NUMBERS:
                d = rest
        if d.startswith("+"):
            digits = d[1:]
        elif d.startswith("00"):
            digits = d[2:]
        elif d.startswith("0"):
            digits = UK_COUNTRY_CODE + d[1:]
        elif d in EMERGENCY_NUMBERS:
            return Classified(d, NumberClass.EMERGENCY, "GB")
        elif len(d) == 6 and d.startswith("118"):
            return Classified(d, NumberClass.PREMIUM, "GB")
        elif len(d) == 6 and d.startswith("116"):
            return Classified(d, NumberClass.FREEPHONE, "GB")
        elif len(d) <= self.internal_max_digits:
            return Classified(d, NumberClass.INTERNAL, "")
        elif len(d) < 8:
            return Classified(d, NumberClass.OTHER, "")
        else:
            # A long number without 0 or + (some trunks drop the +): international format.
            digits = d
        if not (digits.isascii() and digits.isdigit()) or len(digits) < 4:
            return Classified(d, NumberClass.OTHER, "")
        e164 = "+" + digits
        hit = self._cache.get(_cache_key(digits))
        if hit is None:
            hit = classify_digits(digits)
            if len(self._cache) > 500_000:
                self._cache.clear()
            self._cache[_cache_key(digits)] = hit
        return Classified(e164, hit[0], hit[1])
