import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.gate.core import (
    CallAttempt,
    Decision,
    StaticDecider,
    decide,
    is_emergency,
    prompts_for,
    strip_prefix,
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
    assert is_emergency(digits, "9") == (digits in {"9999", "9112"})


def test_static_decider_blocks_listed_numbers_only() -> None:
    decider = StaticDecider(frozenset({"07700900123"}), "9")
    assert decider.decide(attempt("907700900123")).reasons == ("blocked",)
    assert decider.decide(attempt("02079460018")).allowed
    assert decider.decide(attempt("07700900123", purpose="internal")).allowed


def test_prompts_are_one_per_reason() -> None:
    assert prompts_for(Decision(False, "x", ("tps", "outside_hours"))) == "livecall/reason-tps&livecall/reason-outside_hours"
    assert prompts_for(Decision(False, "x", ())) == "livecall/reason-blocked"
