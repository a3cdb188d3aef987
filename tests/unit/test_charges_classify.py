"""Classifying dialled numbers for rating."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecall_ari.charges.classify import NumberClass, NumberClassifier, classify_digits, classify_e164, uk_class_by_prefix

C = NumberClass


@pytest.mark.parametrize(
    ("dialled", "number", "cls", "country"),
    [
        ("02079460000", "+442079460000", C.LANDLINE, "GB"),
        ("01134960000", "+441134960000", C.LANDLINE, "GB"),
        ("01632960123", "+441632960123", C.LANDLINE, "GB"),  # Ofcom drama range: by the plan
        ("03001234567", "+443001234567", C.LANDLINE, "GB"),  # 03 charged like geographic
        ("07911123456", "+447911123456", C.MOBILE, "GB"),
        ("07700900123", "+447700900123", C.MOBILE, "GB"),  # drama range, unknown to phonenumbers
        ("07624123456", "+447624123456", C.MOBILE, "GB"),  # Isle of Man mobile, not a pager
        ("07012345678", "+447012345678", C.PERSONAL, "GB"),
        ("07640123456", "+447640123456", C.PAGER, "GB"),
        ("08001234567", "+448001234567", C.FREEPHONE, "GB"),
        ("08081570000", "+448081570000", C.FREEPHONE, "GB"),
        ("08451234567", "+448451234567", C.SERVICE, "GB"),
        ("08712345678", "+448712345678", C.SERVICE, "GB"),
        ("09012345678", "+449012345678", C.PREMIUM, "GB"),
        ("05512345678", "+445512345678", C.OTHER, "GB"),
        ("05612345678", "+445612345678", C.OTHER, "GB"),
        ("0207946", "+44207946", C.OTHER, "GB"),  # too short to be a UK number
        ("+442079460000", "+442079460000", C.LANDLINE, "GB"),
        ("00442079460000", "+442079460000", C.LANDLINE, "GB"),
        ("442079460000", "+442079460000", C.LANDLINE, "GB"),
        ("0033123456789", "+33123456789", C.INTERNATIONAL, "FR"),
        ("+12125551234", "+12125551234", C.INTERNATIONAL, "US"),
        ("+35312345678", "+35312345678", C.INTERNATIONAL, "IE"),
        ("999", "999", C.EMERGENCY, "GB"),
        ("112", "112", C.EMERGENCY, "GB"),
        ("118118", "118118", C.PREMIUM, "GB"),
        ("116123", "116123", C.FREEPHONE, "GB"),
        ("2001", "2001", C.INTERNAL, ""),
        ("101", "101", C.INTERNAL, ""),
        ("s", "s", C.INTERNAL, ""),
        ("*97", "*97", C.INTERNAL, ""),
        ("020 7946 0000", "+442079460000", C.LANDLINE, "GB"),
    ],
)
def test_classes(dialled: str, number: str, cls: NumberClass, country: str) -> None:
    got = NumberClassifier().classify(dialled)
    assert (got.number, got.number_class, got.country) == (number, cls, country)


def test_outside_line_prefix_is_dropped_before_a_number() -> None:
    c = NumberClassifier(outside_line_prefix="9")
    assert c.classify("907911123456").number_class == C.MOBILE
    assert c.classify("9999").number_class == C.EMERGENCY
    assert c.classify("9001").number_class == C.INTERNAL  # an extension that starts with 9


def test_internal_max_digits() -> None:
    assert NumberClassifier(internal_max_digits=4).classify("20011").number_class == C.OTHER
    assert NumberClassifier(internal_max_digits=6).classify("20011").number_class == C.INTERNAL


def test_every_uk_example_number_of_phonenumbers() -> None:
    expected = {
        phonenumbers.PhoneNumberType.FIXED_LINE: C.LANDLINE,
        phonenumbers.PhoneNumberType.MOBILE: C.MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE: C.FREEPHONE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE: C.PREMIUM,
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER: C.PERSONAL,
        phonenumbers.PhoneNumberType.PAGER: C.PAGER,
    }
    for ntype, cls in expected.items():
        example = phonenumbers.example_number_for_type("GB", ntype)
        assert example is not None
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        assert classify_e164(e164)[0] == cls, e164


def test_prefix_rule_lengths() -> None:
    assert uk_class_by_prefix("7700900123") == C.MOBILE
    assert uk_class_by_prefix("77009001234") == C.OTHER  # 11 digits
    assert uk_class_by_prefix("7624123456") == C.MOBILE
    assert uk_class_by_prefix("8081570000") == C.FREEPHONE


uk_numbers = st.tuples(st.sampled_from("123456789"), st.integers(8, 9)).flatmap(
    lambda t: st.text("0123456789", min_size=t[1], max_size=t[1]).map(lambda rest: "0" + t[0] + rest)
)


@settings(max_examples=500, deadline=None)
@given(st.lists(uk_numbers, min_size=1, max_size=20))
def test_the_cache_agrees_with_phonenumbers_number_by_number(numbers: list[str]) -> None:
    classifier = NumberClassifier()
    for number in numbers:
        got = classifier.classify(number)
        assert (got.number_class, got.country) == classify_e164("+44" + number[1:]), number


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text("0123456789", min_size=6, max_size=12).map(lambda d: "+" + d), min_size=1, max_size=20))
def test_the_cache_agrees_for_international_numbers(numbers: list[str]) -> None:
    classifier = NumberClassifier()
    for number in numbers:
        got = classifier.classify(number)
        assert (got.number_class, got.country) == classify_e164(number), number


SHARED_CODES = sorted(str(c) for c, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1 and c != 44)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(SHARED_CODES), st.text("0123456789", min_size=0, max_size=19))
def test_the_quick_region_look_up_agrees_with_phonenumbers(code: str, national: str) -> None:
    """+1, +61, +7...: numbers of every length, with and without a national prefix or a
    leading zero, get the class and region phonenumbers gives them."""
    assert classify_digits(code + national) == classify_e164("+" + code + national), code + national


def test_the_quick_region_look_up_agrees_on_real_looking_numbers() -> None:
    rng = random.Random(7)
    for code in SHARED_CODES:
        for length in range(6, 13):
            for _ in range(150):
                national = str(rng.randrange(1, 10)) + "".join(rng.choice("0123456789") for _ in range(length - 1))
                assert classify_digits(code + national) == classify_e164("+" + code + national), code + national
    # Caribbean and Canadian area codes, a US number, Christmas Island, Kazakhstan.
    for number, region in (("12684601234", "AG"), ("14165550123", "CA"), ("12125550123", "US"),
                           ("61891641234", "CX"), ("77172345678", "KZ")):  # fmt: skip
        assert classify_digits(number) == classify_e164("+" + number) == (NumberClass.INTERNATIONAL, region), number


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_any_text_gets_a_class(dialled: str) -> None:
    got = NumberClassifier("9").classify(dialled)
    assert got.number_class in set(NumberClass)
