"""Number normalisation: the fast path must always agree with phonenumbers itself."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from livecall_ari.screening.numbers import NumberParser, national_to_key, reference_e164

PARSER = NumberParser()


@pytest.mark.parametrize(
    "dialled",
    ["020 7946 0018", "+44 20 7946 0018", "0044 20 7946 0018", "(020) 7946-0018", "020-7946-0018", "02079460018",
     "+44 (0)20 7946 0018", "+44.20.7946.0018"],
)
def test_the_ways_agents_dial_a_london_number_all_normalise_to_one_e164(dialled: str) -> None:
    number = PARSER.parse(dialled)
    assert number is not None
    assert number.e164 == "+442079460018"
    assert number.key == 442079460018


def test_outside_line_prefix_is_dropped_only_before_a_number() -> None:
    parser = NumberParser("9")
    assert parser.parse("9 020 7946 0018").e164 == "+442079460018"  # type: ignore[union-attr]
    assert parser.parse("9+44 20 7946 0018").e164 == "+442079460018"  # type: ignore[union-attr]
    assert parser.parse("020 7946 0018").e164 == "+442079460018"  # type: ignore[union-attr]  (forgot the 9)
    assert parser.display("9999") == "999"


def test_invalid_and_foreign_numbers() -> None:
    assert PARSER.parse("1001") is None
    assert PARSER.parse("01632 960000") is None  # Ofcom drama range: not a real number
    assert PARSER.parse("hello") is None
    foreign = PARSER.parse("+33 1 23 45 67 89")
    assert foreign is not None and foreign.e164 == "+33123456789" and not foreign.is_uk


@pytest.mark.parametrize("caller_id", [None, "", "anonymous", "Anonymous", "01632 960000", "09098 790000", "070 1234 5678", "+33123456789", "1001"])
def test_caller_ids_that_cannot_be_rung_back_are_refused(caller_id: str | None) -> None:
    assert PARSER.callback_caller_id(caller_id) is None


@pytest.mark.parametrize("caller_id", ["020 7946 0000", "+442079460000", "442079460000", "07781 123456", "0800 123 4567", "0300 123 4567"])
def test_uk_caller_ids_that_can_be_rung_back_are_accepted(caller_id: str) -> None:
    assert PARSER.callback_caller_id(caller_id) is not None


def test_national_to_key() -> None:
    assert national_to_key("02073787244") == 442073787244
    with pytest.raises(ValueError):
        national_to_key("2073787244")


_nsn = st.one_of(
    st.from_regex(r"\A[1-9][0-9]{9}\Z"),
    st.from_regex(r"\A(20|7[0-9]|1[0-9]{2})[0-9]{7,8}\Z"),
    st.from_regex(r"\A[1-9][0-9]{6,10}\Z"),
)
_lead = st.sampled_from(["0", "+44", "0044", "+44 ", "0044 ", "+44(0)", "", "+"])
_separator = st.sampled_from(["", " ", "-", "  ", ".", "(", ")"])


@settings(max_examples=1500, deadline=None)
@given(_lead, _nsn, st.lists(st.tuples(st.integers(0, 12), _separator), max_size=4))
@example("0", "2079460018", [])
@example("+44", "7911123456", [(2, " ")])
def test_normalisation_agrees_with_phonenumbers(lead: str, nsn: str, cuts: list[tuple[int, str]]) -> None:
    digits = list(nsn)
    for position, separator in sorted(cuts, reverse=True):
        digits.insert(min(position, len(digits)), separator)
    dialled = lead + "".join(digits)
    number = PARSER.parse(dialled)
    assert (number.e164 if number else None) == reference_e164(dialled)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789+ -()", max_size=20))
@example("+-+60102000000")  # found by this test: two plus signs must not be merged into one
@example("++60102000000")
def test_normalisation_agrees_with_phonenumbers_on_any_dial_string(dialled: str) -> None:
    number = PARSER.parse(dialled)
    assert (number.e164 if number else None) == reference_e164(dialled)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["9", "0", "81"]), _nsn)
def test_prefix_then_national_number_equals_the_number_alone(prefix: str, nsn: str) -> None:
    parser = NumberParser(prefix)
    with_prefix = parser.parse(prefix + "0" + nsn)
    assert (with_prefix.e164 if with_prefix else None) == reference_e164("0" + nsn)
