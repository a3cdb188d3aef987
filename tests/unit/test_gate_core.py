import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.gate.core import (
    MAX_DIGITS,
    MIN_DIGITS,
    CallAttempt,
    Decision,
    StaticDecider,
    decide,
    dialplan_extension,
    is_emergency,
    is_whole_number,
    prompts_for,
    strip_prefix,
    trunk_number,
)

AT = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)


def attempt(dialled: str, purpose: str = "marketing") -> CallAttempt:
    return CallAttempt("c1", "1001", dialled, purpose, AT, "+441632960000")


class BlockEverything:
    def decide(self, attempt: CallAttempt) -> Decision:
        return Decision(False, attempt.dialled, ("tps",))


@pytest.mark.parametrize("dialled", ["999", "112", "9999", "9112"])
def test_emergency_numbers_pass_whatever_the_decider_says(dialled: str) -> None:
    d = decide(attempt(dialled), BlockEverything(), outside_line_prefix="9")
    assert d.allowed and d.reasons == ("emergency",)
    assert d.number in {"999", "112"}


def test_other_numbers_are_the_deciders() -> None:
    d = decide(attempt("02079460018"), BlockEverything())
    assert not d.allowed and d.reasons == ("tps",)


def test_strip_prefix_keeps_short_numbers() -> None:
    assert strip_prefix("902079460018", "9") == "02079460018"
    assert strip_prefix("999", "9") == "999"
    assert strip_prefix("02079460018", "") == "02079460018"


@given(st.text(alphabet="0123456789", min_size=4, max_size=15))
def test_a_non_emergency_number_is_never_taken_for_one(digits: str) -> None:
    # 18000 is text relay's emergency number (gate/numbering.py), with or without the prefix.
    assert is_emergency(digits, "9") == (digits in {"9999", "9112", "18000", "918000"})


def test_static_decider_blocks_listed_numbers_only() -> None:
    decider = StaticDecider(frozenset({"07700900123"}), "9")
    assert decider.decide(attempt("907700900123")).reasons == ("blocked",)
    assert decider.decide(attempt("02079460018")).allowed
    assert decider.decide(attempt("07700900123", purpose="internal")).allowed


def test_prompts_are_one_per_reason() -> None:
    assert prompts_for(Decision(False, "x", ("tps", "outside_hours"))) == "livecall/reason-tps&livecall/reason-outside_hours"
    assert prompts_for(Decision(False, "x", ())) == "livecall/reason-blocked"


class AllowEverything:
    def decide(self, attempt: CallAttempt) -> Decision:
        return Decision(True, attempt.dialled)


class MustNotBeAsked:
    def decide(self, attempt: CallAttempt) -> Decision:
        raise AssertionError(f"a decider was asked about {attempt.dialled!r}")


@pytest.mark.parametrize("dialled", ["999", "02079460018", "+442079460018", "9" * MAX_DIGITS, "+" + "1" * MAX_DIGITS])
def test_whole_numbers(dialled: str) -> None:
    assert is_whole_number(dialled)


@pytest.mark.parametrize("dialled", [
    "", "+", "12", "9" * (MAX_DIGITS + 1), "0207946001&8", "02079460018&PJSIP/07700900123@trunk", "02079460018,60",
    "02079460018^x", "0207 946 0018", "0207-946-0018", "02079460018\n", "02079460018\n", "++442079460018",
    "4+4", "０２０７９４６００１８", "٠٢٠٧٩٤٦٠٠١٨", "invalid:02079460018", "02079460018 ",
])
def test_anything_else_is_no_whole_number_and_is_refused_before_any_decider(dialled: str) -> None:
    assert not is_whole_number(dialled)
    d = decide(attempt(dialled), MustNotBeAsked(), outside_line_prefix="9")
    assert (d.allowed, d.reasons, d.number, d.dial) == (False, ("invalid_number",), dialled, "")
    assert dialplan_extension(dialled) == "invalid"


@given(st.text(min_size=1))
def test_no_dialled_text_with_a_character_a_number_does_not_need_is_ever_allowed(text: str) -> None:
    d = decide(attempt(text), AllowEverything())
    if set(text) - set("+0123456789") or not MIN_DIGITS <= len(text.lstrip("+")) <= MAX_DIGITS:
        assert not d.allowed and d.reasons == ("invalid_number",)
    if d.allowed:
        # What the dialplan dials holds nothing but digits and a leading "+".
        assert is_whole_number(d.dial) and dialplan_extension(text) == text


@pytest.mark.parametrize(("number", "national", "e164"), [
    ("02079460018", "02079460018", "+442079460018"),
    ("+442079460018", "02079460018", "+442079460018"),
    ("+33123456789", "0033123456789", "+33123456789"),
    ("0033123456789", "0033123456789", "+33123456789"),
    ("999", "999", "999"),
    ("0207946001&8", None, None),
])
def test_trunk_number_forms(number: str, national: str | None, e164: str | None) -> None:
    assert trunk_number(number) == national
    assert trunk_number(number, "e164") == e164


def test_an_allowed_decision_carries_what_the_trunk_dials_without_the_prefix() -> None:
    d = decide(attempt("902079460018"), StaticDecider(frozenset(), "9"), outside_line_prefix="9")
    assert d.allowed and d.dial == "02079460018"
    assert decide(attempt("9999"), BlockEverything(), outside_line_prefix="9").dial == "999"
    e164 = decide(attempt("+442079460018"), AllowEverything(), number_format="e164")
    assert e164.dial == "+442079460018"


def test_a_decider_allowing_a_number_that_is_no_whole_number_is_refused() -> None:
    class Odd:
        def decide(self, attempt: CallAttempt) -> Decision:
            return Decision(True, "020 7946 0018")

    d = decide(attempt("02079460018"), Odd())
    assert not d.allowed and d.reasons == ("invalid_number",) and d.dial == ""
