"""Rating: every class, both plans, increments, effective dates, VAT and the rounding rule."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecall_ari.charges.rating import Call, Rater, rate, round_half_up, statement_window
from livecall_ari.charges.tariff import load_tariff, parse_tariff
from livecall_ari.charges.statement import to_csv, to_data, to_html

D = dt.date
LONDON_BST = dt.timezone(dt.timedelta(hours=1))
TARIFF = load_tariff()


def at(y: int, mo: int, d: int, h: int = 12, mi: int = 0, tz: dt.tzinfo = dt.timezone.utc) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp())


def call(start: int, billsec: int, cls: str = "landline", number: str = "+442079460000", country: str = "GB") -> Call:
    return Call(start, number, cls, country, billsec, f"{start}.1")


def test_daily_plan_example() -> None:
    s = rate(
        [
            call(at(2025, 6, 2, 9), 61),  # 2 started minutes of landline: 20p
            call(at(2025, 6, 2, 10), 60, "mobile", "+447700900123"),  # 1 minute mobile: 20p
            call(at(2025, 6, 2, 11), 0),  # not answered
            call(at(2025, 6, 2, 12), 300, "internal", "2001", ""),  # internal: not billed
            call(at(2025, 6, 4, 9), 1, "mobile"),  # 1 s -> 1 minute: 20p
        ],
        TARIFF, "daily", D(2025, 6, 1), D(2025, 6, 30), "acc1",
    )  # fmt: skip
    assert [line.pence for line in s.lines] == [20, 20, 20]
    assert [line.billed_seconds for line in s.lines] == [120, 60, 60]
    assert [(f.day, f.pence) for f in s.fees] == [(D(2025, 6, 2), 800), (D(2025, 6, 4), 800)]
    assert (s.net_pence, s.vat_pence, s.total_pence) == (1660, 332, 1992)


def test_daily_fee_counts_calendar_days_in_london() -> None:
    # 23:30 UTC on 1 June is 00:30 on 2 June in London (BST).
    s = rate([call(at(2025, 6, 1, 23, 30), 10)], TARIFF, "daily", D(2025, 6, 1), D(2025, 6, 30))
    assert [f.day for f in s.fees] == [D(2025, 6, 2)]
    assert s.lines[0].day == D(2025, 6, 2) and s.lines[0].start.utcoffset() == dt.timedelta(hours=1)


def test_freephone_and_emergency_days() -> None:
    s = rate(
        [call(at(2025, 6, 2), 120, "freephone", "+448001234567"), call(at(2025, 6, 3), 120, "emergency", "999", "GB")],
        TARIFF, "daily", D(2025, 6, 1), D(2025, 6, 30),
    )  # fmt: skip
    # Freephone is an answered external call (the day fee applies) charged 0p; 999 is never billed.
    assert [(line.number_class, line.pence) for line in s.lines] == [("freephone", 0)]
    assert [f.day for f in s.fees] == [D(2025, 6, 2)]


@pytest.mark.parametrize(
    ("cls", "country", "per_minute"),
    [
        ("landline", "GB", 10), ("mobile", "GB", 20), ("freephone", "GB", 0), ("service", "GB", 15),
        ("premium", "GB", 150), ("personal", "GB", 50), ("pager", "GB", 50), ("other", "GB", 20),
        ("international", "FR", 20), ("international", "US", 10), ("international", "ZW", 100),
        ("international", "", 100),
    ],
)  # fmt: skip
def test_each_class_price_on_both_plans(cls: str, country: str, per_minute: int) -> None:
    for plan in ("daily", "monthly"):
        s = rate([call(at(2025, 6, 2), 150, cls, country=country)], TARIFF, plan, D(2025, 6, 1), D(2025, 6, 30))
        bundle = 150 if (plan == "monthly" and cls == "landline") else 0
        expected = 0 if bundle else 3 * per_minute
        assert s.lines[0].pence == expected, (plan, cls)
        assert s.lines[0].bundle_seconds == (180 if bundle else 0)


def test_monthly_bundle_is_used_in_call_order_then_charged() -> None:
    calls = [call(at(2025, 6, 2, 9, i), 60 * 100) for i in range(3)]  # 300 minutes: all in the bundle
    calls.append(call(at(2025, 6, 3, 9), 150))  # 3 minutes past the bundle: 30p
    calls.append(call(at(2025, 6, 3, 10), 90, "freephone"))  # does not touch the bundle
    calls.append(call(at(2025, 6, 3, 11), 60, "mobile"))  # mobiles are never in the bundle: 20p
    calls.append(call(at(2025, 7, 1, 9), 60))  # July: a fresh bundle
    s = rate(calls, TARIFF, "monthly", D(2025, 6, 1), D(2025, 7, 31))
    assert [line.bundle_seconds for line in s.lines] == [6000, 6000, 6000, 0, 0, 0, 60]
    assert [line.pence for line in s.lines] == [0, 0, 0, 30, 0, 20, 0]
    assert [(f.day, f.pence) for f in s.fees] == [(D(2025, 6, 1), 3500), (D(2025, 7, 1), 3500)]
    assert s.net_pence == 7050


def test_a_call_straddling_the_end_of_the_bundle() -> None:
    calls = [call(at(2025, 6, 2, 9), 299 * 60), call(at(2025, 6, 2, 10), 150)]
    s = rate(calls, TARIFF, "monthly", D(2025, 6, 1), D(2025, 6, 30))
    assert s.lines[1].bundle_seconds == 60 and s.lines[1].pence == 20  # 2 of its 3 minutes charged


def test_monthly_statement_mid_month_counts_the_earlier_bundle_use() -> None:
    calls = [call(at(2025, 6, 2), 300 * 60), call(at(2025, 6, 20), 60)]
    s = rate(calls, TARIFF, "monthly", D(2025, 6, 15), D(2025, 6, 30))
    assert [line.pence for line in s.lines] == [10]  # the bundle went on 2 June
    assert s.fees == ()  # the June fee is dated 1 June, on the statement that includes that day
    begin, _ = statement_window("monthly", D(2025, 6, 15), D(2025, 6, 30))
    assert begin == int(dt.datetime(2025, 6, 1, tzinfo=LONDON_BST).timestamp())


def test_per_second_increment_and_minimum_charge() -> None:
    tariff = parse_tariff(
        load_tariff_text().replace("increment_seconds = 60", "increment_seconds = 1").replace(
            "minimum_charge_pence = 0", 'minimum_charge_pence = "1.5"'
        )
    )
    s = rate(
        [call(at(2025, 6, 2, 9), 61), call(at(2025, 6, 2, 10), 5), call(at(2025, 6, 2, 11), 19, "mobile"),
         call(at(2025, 6, 2, 12), 30, "freephone")],
        tariff, "daily", D(2025, 6, 1), D(2025, 6, 30),
    )  # fmt: skip
    # 61 s at 10p/min = 61/6p; 5 s = 5/6p, raised to the 1.5p minimum; 19 s at 20p = 19/3p.
    assert [line.pence for line in s.lines] == [Fraction(61, 6), Fraction(3, 2), Fraction(19, 3), 0]
    assert [line.billed_seconds for line in s.lines] == [61, 5, 19, 30]
    exact = Fraction(61, 6) + Fraction(3, 2) + Fraction(19, 3)  # 18p exactly
    assert s.calls_pence == exact and s.net_pence == 818


def load_tariff_text() -> str:
    from livecall_ari.charges.tariff import default_tariff_text

    return default_tariff_text()


def test_prices_and_vat_follow_the_date_of_each_call() -> None:
    text = load_tariff_text() + """
[[daily]]
from = 2025-09-01
day_fee_pence = 900
landline_per_minute = 12
mobile_per_minute = 20
"""
    tariff = parse_tariff(text)
    s = rate([call(at(2025, 8, 31), 60), call(at(2025, 9, 1), 60)], tariff, "daily", D(2025, 8, 1), D(2025, 9, 30))
    assert [line.pence for line in s.lines] == [10, 12]
    assert [f.pence for f in s.fees] == [800, 900]


def test_vat_rate_changes_on_its_date() -> None:
    tariff = parse_tariff(load_tariff_text().replace("from = 2020-01-01", "from = 2009-01-01"))
    s = rate([call(at(2009, 12, 31), 60), call(at(2010, 1, 1), 60)], tariff, "daily", D(2009, 12, 1), D(2010, 1, 31))
    # 810p at 15% and 810p at 17.5%: 121.5 + 141.75 = 263.25 -> 263p.
    assert [(p.percent, p.net_pence) for p in s.vat_parts] == [(15, 810), (Fraction(35, 2), 810)]
    assert (s.net_pence, s.vat_pence, s.total_pence) == (1620, 263, 1883)


def test_rounding_is_half_up_once_at_the_total() -> None:
    assert [round_half_up(Fraction(n, 2)) for n in (1, 3, 5)] == [1, 2, 3]
    assert round_half_up(Fraction(-1, 2)) == -1 and round_half_up(Fraction(149, 100)) == 1
    tariff = parse_tariff(load_tariff_text().replace("increment_seconds = 60", "increment_seconds = 1"))
    # Three 1-second mobile calls at 20p/min: 1/3p each. Rounded per call they would be 0p;
    # the exact sum is 1p.
    s = rate([call(at(2025, 6, 2, 9, i), 1, "mobile") for i in range(3)], tariff, "daily", D(2025, 6, 2), D(2025, 6, 2))
    assert [line.pence for line in s.lines] == [Fraction(1, 3)] * 3
    assert s.calls_pence == 1 and s.net_pence == 801
    assert s.vat_pence == 160  # 801 * 20% = 160.2
    # Half a penny rounds up: 7 s + 8 s of landline at 10p/min = 2.5p; net 802.5p -> 803p.
    s = rate([call(at(2025, 6, 2, 9), 7), call(at(2025, 6, 2, 10), 8)],
             tariff, "daily", D(2025, 6, 2), D(2025, 6, 2))  # fmt: skip
    assert s.net_exact == Fraction(1605, 2) and s.net_pence == 803


def test_out_of_order_calls_are_refused() -> None:
    rater = Rater(TARIFF, "daily", D(2025, 6, 1), D(2025, 6, 30))
    rater.add(call(at(2025, 6, 2), 60))
    with pytest.raises(ValueError, match="start order"):
        rater.add(call(at(2025, 6, 1), 60))


def test_statement_outputs_carry_the_same_figures() -> None:
    tariff = parse_tariff(load_tariff_text().replace("increment_seconds = 60", "increment_seconds = 1"))
    s = rate([call(at(2025, 6, 2), 61), call(at(2025, 6, 3), 60, "international", "+33123456789", "FR")],
             tariff, "daily", D(2025, 6, 1), D(2025, 6, 30), "acc<1>")  # fmt: skip
    data = to_data(s)
    assert (data["net_pence"], data["vat_pence"], data["total_pence"]) == (s.net_pence, s.vat_pence, s.total_pence)
    assert data["lines"][0]["pence"] == "10.1667" and data["lines"][0]["pence_exact"] == "61/6"
    assert data["lines"][1]["pence"] == 20 and data["lines"][1]["class"] == "international"
    assert [f["pence"] for f in data["fees"]] == [800, 800]
    rows = to_csv(s).splitlines()
    assert rows[0].startswith("date,time,number,class")
    assert rows[1].split(",")[9:11] == ["10.1667", "61/6"]
    assert rows[-1].split(",")[3] == "total" and rows[-1].split(",")[9] == str(s.total_pence)
    html = to_html(s)
    assert "acc&lt;1&gt;" in html and "acc<1>" not in html
    assert f"£{s.total_pence // 100}.{s.total_pence % 100:02d}" in html


# Properties over random calls.

CLASSES = ["landline", "mobile", "freephone", "service", "premium", "personal", "pager", "other",
           "international", "internal", "emergency"]  # fmt: skip
START = at(2025, 1, 1, 0)
calls_strategy = st.lists(
    st.tuples(st.integers(0, 120 * 86400), st.integers(0, 4000), st.sampled_from(CLASSES), st.sampled_from(["FR", "US", "ZW"])),
    max_size=60,
).map(lambda rows: [call(START + off, bs, cls, country=c) for off, bs, cls, c in sorted(rows)])
per_second = parse_tariff(
    load_tariff_text().replace("increment_seconds = 60", "increment_seconds = 1").replace(
        "minimum_charge_pence = 0", 'minimum_charge_pence = "0.7"'
    )
)


@settings(max_examples=200, deadline=None)
@given(calls_strategy, st.sampled_from(["daily", "monthly"]), st.sampled_from([TARIFF, per_second]), st.integers(1, 118))
def test_statements_of_adjoining_ranges_add_up(calls: list[Call], plan: str, tariff: object, split: int) -> None:
    assert tariff is TARIFF or tariff is per_second
    first, last = D(2025, 1, 1), D(2025, 5, 1)
    middle = first + dt.timedelta(days=split)
    whole = rate(calls, tariff, plan, first, last)
    a = rate(calls, tariff, plan, first, middle - dt.timedelta(days=1))
    b = rate(calls, tariff, plan, middle, last)
    assert a.net_exact + b.net_exact == whole.net_exact
    assert a.lines + b.lines == whole.lines
    assert len(whole.lines) == sum(1 for c in calls if c.billsec > 0 and c.number_class not in ("internal", "emergency"))


@settings(max_examples=200, deadline=None)
@given(calls_strategy, st.sampled_from(["daily", "monthly"]), st.sampled_from([TARIFF, per_second]))
def test_lines_add_up_and_are_rounded_only_at_the_total(calls: list[Call], plan: str, tariff: object) -> None:
    assert tariff is TARIFF or tariff is per_second
    s = rate(calls, tariff, plan, D(2025, 1, 1), D(2025, 5, 1))
    assert sum((line.pence for line in s.lines), Fraction(0)) == s.calls_pence
    assert s.fees_pence == sum(f.pence for f in s.fees)
    assert abs(s.net_pence - s.net_exact) <= Fraction(1, 2)
    vat_exact = sum((p.net_pence * p.percent / 100 for p in s.vat_parts), Fraction(0))
    assert abs(s.vat_pence - vat_exact) <= Fraction(1, 2)
    assert s.total_pence == s.net_pence + s.vat_pence
    for line in s.lines:
        assert line.billed_seconds >= line.billsec > 0
        assert line.billed_seconds % (1 if tariff is per_second else 60) == 0
        assert 0 <= line.bundle_seconds <= line.billed_seconds


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20000), st.integers(0, 200), st.sampled_from(["landline", "mobile", "premium", "international"]))
def test_a_longer_call_never_costs_less(billsec: int, extra: int, cls: str) -> None:
    def cost(seconds: int) -> Fraction:
        return rate([call(at(2025, 6, 2), seconds, cls, country="FR")], per_second, "daily", D(2025, 6, 2), D(2025, 6, 2)).calls_pence

    assert cost(billsec + extra) >= cost(billsec)
