"""The portal's one way of writing times, dates, money and reasons (portal/formats.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.portal.formats import REASON_TEXT, london_date, london_datetime, money, reason_text
from livecall_ari.screening.core import REASONS

UTC = dt.timezone.utc


def test_a_moment_is_london_wall_clock_time_with_its_zone() -> None:
    assert london_datetime(dt.datetime(2026, 11, 29, 14, 5, 59, tzinfo=UTC)) == "29 Nov 2026 14:05 GMT"
    assert london_datetime(dt.datetime(2026, 7, 1, 8, 30, tzinfo=UTC)) == "1 Jul 2026 09:30 BST"
    # Naive values are the database's UTC; ISO text with a T or an offset reads the same.
    assert london_datetime(dt.datetime(2026, 7, 1, 8, 30)) == "1 Jul 2026 09:30 BST"
    assert london_datetime("2026-07-01T08:30:00") == "1 Jul 2026 09:30 BST"
    assert london_datetime("2026-07-01T09:30+01:00") == "1 Jul 2026 09:30 BST"
    assert london_datetime("2026-07-01 08:30:00.123456+00:00") == "1 Jul 2026 09:30 BST"


def test_the_clocks_changing_is_followed() -> None:
    # 29 Mar 2026 01:00 UTC: GMT ends; 25 Oct 2026 01:00 UTC: BST ends.
    assert london_datetime(dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == "29 Mar 2026 00:59 GMT"
    assert london_datetime(dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "29 Mar 2026 02:00 BST"
    assert london_datetime(dt.datetime(2026, 10, 25, 0, 59, tzinfo=UTC)) == "25 Oct 2026 01:59 BST"
    assert london_datetime(dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)) == "25 Oct 2026 01:00 GMT"


def test_a_date_is_a_date_never_a_made_up_midnight() -> None:
    assert london_date(dt.date(2026, 9, 3)) == "3 Sep 2026"
    assert london_date("2026-09-03") == "3 Sep 2026"
    assert london_datetime("2026-09-03") == "3 Sep 2026"
    assert london_datetime(dt.date(2026, 12, 31)) == "31 Dec 2026"
    # A moment's date is its date in London: 23:30 UTC on 30 June is 1 July there.
    assert london_date(dt.datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == "1 Jul 2026"


def test_nothing_is_a_dash_and_text_that_is_no_time_stays_as_it_is() -> None:
    for nothing in (None, ""):
        assert london_datetime(nothing) == "-" and london_date(nothing) == "-" and money(nothing) == "-"
    assert london_datetime("soon") == "soon" and london_date("2026-13-45") == "2026-13-45"


def test_money_is_pounds_with_two_decimals_from_pence() -> None:
    assert money(0) == "£0.00"
    assert money(5) == "£0.05"
    assert money(4000) == "£40.00"
    assert money(123456) == "£1,234.56"
    assert money(-50) == "-£0.50"
    assert money(Decimal("40.00")) == "£0.40"
    assert money("123456") == "£1,234.56"
    # A per-second call's exact cost is rounded half up to the penny, as the invoice rounds.
    assert money(Fraction(19, 6)) == "£0.03"
    assert money(Fraction(7, 2)) == "£0.04"
    assert money(Fraction(-7, 2)) == "-£0.04"


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_money_reads_back_as_the_same_pence(pence: int) -> None:
    text = money(pence)
    value = Decimal(text.replace("£", "").replace(",", ""))
    assert int(value * 100) == pence and text.count(".") == 1 and len(text.split(".")[1]) == 2


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_every_moment_has_one_shape(at: dt.datetime) -> None:
    day, month, year, clock, zone = london_datetime(at).split(" ")
    assert 1 <= int(day) <= 31 and len(month) == 3 and len(year) == 4 and len(clock) == 5 and zone in ("GMT", "BST")
    assert london_date(at) == f"{day} {month} {year}"


def test_every_reason_code_of_the_gate_has_plain_words() -> None:
    for code in (*REASONS, "blocked", "error"):
        assert code in REASON_TEXT and "_" not in reason_text(code) and reason_text(code)[0].isupper()
    assert reason_text("new_rule") == "new rule"
