"""Subscriptions, pro-rata months and trials, pure: periods, segments, the rater's fees and bundle."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecall_ari.charges.invoice import InvoiceError, Supplier, credit_note_document, invoice_document
from livecall_ari.charges.months import covered_days, days_in_month, prorated
from livecall_ari.charges.rating import Call, Rater, Statement
from livecall_ari.charges.subscriptions import (
    Customer, Period, SubscriptionError, change_plan, combine, end_subscription, new_customer, segments,
)  # fmt: skip
from livecall_ari.charges.tariff import load_tariff, parse_tariff, default_tariff_text

D = dt.date
TARIFF = load_tariff()
# The shipped tariff with its plans from 2010, so a month can straddle the VAT change of 4 January 2011.
OLD_TARIFF = parse_tariff(default_tariff_text().replace("from = 2020-01-01", "from = 2010-01-01"), "old.toml")
LANDLINE = "+442079460000"


def at(day: dt.date, hour: int = 12) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc).timestamp())


def call(day: dt.date, billsec: int = 60, cls: str = "landline", hour: int = 12) -> Call:
    return Call(at(day, hour), LANDLINE if cls == "landline" else "+447700900123", cls, "GB", billsec, f"{at(day, hour)}.{hour}")


def rate_period(calls: list[Call], plan: str, first: dt.date, last: dt.date, period: tuple[dt.date, dt.date | None],
                trial: int = 0, tariff=TARIFF) -> Statement:  # type: ignore[no-untyped-def]
    rater = Rater(tariff, plan, first, last, "acc", subscription=period, trial_left=trial)
    rater.add_all(calls)
    return rater.statement()


def test_days_in_month_and_cover() -> None:
    assert [days_in_month(D(2024, 2, 1)), days_in_month(D(2025, 2, 1)), days_in_month(D(2025, 12, 31))] == [29, 28, 31]
    assert covered_days(D(2024, 2, 1), D(2024, 2, 15), None) == (D(2024, 2, 15), 15)
    assert covered_days(D(2025, 2, 1), D(2024, 1, 1), D(2025, 2, 10)) == (D(2025, 2, 1), 10)
    assert covered_days(D(2025, 3, 1), D(2024, 1, 1), D(2025, 2, 10)) is None
    # Half up once: 3500 x 15 / 29 = 1810.34 -> 1810; 3500 x 1 / 28 = 125 exactly; 100 x 1 / 8 = 12.5 -> 13.
    assert (prorated(3500, 15, 29), prorated(3500, 1, 28), prorated(100, 1, 8), prorated(3500, 31, 31)) == (1810, 125, 13, 3500)


def test_monthly_starting_mid_february_of_a_leap_year_is_pro_rata_fee_and_bundle() -> None:
    start = D(2024, 2, 15)
    # 300 min x 15/29 = 155.17 min = 9310.34 s -> a 9310 s bundle. The first call (9300 s) fits;
    # of the second (120 s) 10 s are in the bundle and 110 s are charged at 10p/min.
    calls = [call(D(2024, 2, 16), 9300), call(D(2024, 2, 20), 120)]
    s = rate_period(calls, "monthly", D(2024, 2, 1), D(2024, 2, 29), (start, None))
    assert [(f.day, f.pence, f.description) for f in s.fees] == [(start, 1810, "monthly fee February 2024 (15/29 days)")]
    assert [line.bundle_seconds for line in s.lines] == [9300, 10]
    assert s.lines[1].pence == Fraction(110 * 10, 60)
    # A whole month after it: the full fee and bundle, dated the 1st.
    march = rate_period([call(D(2024, 3, 2), 18000)], "monthly", D(2024, 3, 1), D(2024, 3, 31), (start, None))
    assert [(f.day, f.pence) for f in march.fees] == [(D(2024, 3, 1), 3500)] and march.lines[0].pence == 0


def test_monthly_ending_mid_february_of_a_common_year() -> None:
    s = rate_period([call(D(2025, 2, 3), 6480)], "monthly", D(2025, 2, 1), D(2025, 2, 28), (D(2024, 1, 1), D(2025, 2, 10)))
    # 3500 x 10/28 = 1250; bundle 18000 s x 10/28 = 6428.57 -> 6429 s, so 6480 s leaves 51 s charged.
    assert [(f.day, f.pence) for f in s.fees] == [(D(2025, 2, 1), 1250)]
    assert s.lines[0].bundle_seconds == 6429


def test_the_nth_call_is_trial_and_the_next_is_charged_and_a_day_of_trial_calls_has_no_fee() -> None:
    calls = [call(D(2025, 6, 2), 60, hour=9), call(D(2025, 6, 2), 60, hour=10),  # trial calls 1 and 2
             call(D(2025, 6, 3), 60, "freephone", hour=9),  # freephone: never a trial call, earns the day fee
             call(D(2025, 6, 4), 60, hour=9), call(D(2025, 6, 4), 60, "mobile", hour=10)]  # the 3rd is trial, the 4th not
    s = rate_period(calls, "daily", D(2025, 6, 1), D(2025, 6, 30), (D(2025, 6, 1), None), trial=3)
    assert [(line.day.day, line.trial, line.pence) for line in s.lines] == [
        (2, True, 0), (2, True, 0), (3, False, 0), (4, True, 0), (4, False, 20)]
    assert [f.day.day for f in s.fees] == [3, 4]  # 2 June had only trial calls
    assert s.net_pence == 800 + 800 + 20


def test_a_month_of_trial_calls_only_has_no_fee_and_the_next_month_does() -> None:
    period = (D(2025, 6, 1), None)
    june = rate_period([call(D(2025, 6, 2)), call(D(2025, 6, 20))], "monthly", D(2025, 6, 1), D(2025, 6, 30), period, trial=2)
    assert june.fees == () and june.net_pence == 0 and all(line.trial for line in june.lines)
    # The statement for 1-10 June knows a later call of June was charged: June's fee stands.
    later = [call(D(2025, 6, 2)), call(D(2025, 6, 20))]
    early = rate_period(later, "monthly", D(2025, 6, 1), D(2025, 6, 10), period, trial=1)
    assert [f.pence for f in early.fees] == [3500] and [line.trial for line in early.lines] == [True]
    # A month with no call while a trial is left is not charged either.
    july = rate_period([], "monthly", D(2025, 7, 1), D(2025, 7, 31), period, trial=2)
    assert july.fees == ()


def test_periods_change_and_end() -> None:
    c = new_customer("acc", "Acme Ltd", "1 High St, Leeds", "daily", D(2025, 1, 10), trial_calls=5)
    c = change_plan(c, "monthly", D(2025, 3, 15))
    assert c.periods == (Period("daily", D(2025, 1, 10), D(2025, 3, 14)), Period("monthly", D(2025, 3, 15)))
    c = end_subscription(c, D(2025, 5, 20))
    assert c.periods[-1] == Period("monthly", D(2025, 3, 15), D(2025, 5, 20))
    assert (c.plan_on(D(2025, 1, 9)), c.plan_on(D(2025, 3, 14)), c.plan_on(D(2025, 5, 21))) == (None, "daily", None)
    with pytest.raises(SubscriptionError, match="ended on 2025-05-20"):
        change_plan(c, "daily", D(2025, 6, 1))
    with pytest.raises(SubscriptionError, match="before it starts"):
        new_customer("acc", "A", "B", "daily", D(2025, 2, 1), D(2025, 1, 1))
    with pytest.raises(SubscriptionError, match="name and address"):
        new_customer("acc", "", "B", "daily", D(2025, 2, 1))
    assert [(s.first_day, s.last_day, s.plan) for s in segments(c.periods, D(2025, 1, 1), D(2025, 6, 30))] == [
        (D(2025, 1, 1), D(2025, 1, 9), "none"), (D(2025, 1, 10), D(2025, 3, 14), "daily"),
        (D(2025, 3, 15), D(2025, 5, 20), "monthly"), (D(2025, 5, 21), D(2025, 6, 30), "none")]


def test_a_month_across_the_vat_change_is_invoiced_per_rate() -> None:
    period = (D(2010, 12, 20), D(2011, 1, 20))
    calls = [call(D(2011, 1, 3), 60, "mobile"), call(D(2011, 1, 5), 60, "mobile")]
    s = rate_period(calls, "monthly", D(2011, 1, 1), D(2011, 1, 31), period, tariff=OLD_TARIFF)
    # January: 20 of 31 days -> 3500 x 20/31 = 2258.06 -> 2258p on 1 January (17.5%); a 20p call each side.
    assert [(f.day, f.pence) for f in s.fees] == [(D(2011, 1, 1), 2258)]
    assert [(p.percent, p.net_pence) for p in s.vat_parts] == [(Fraction(35, 2), 2278), (20, 20)]
    customer = Customer("acc", "Acme Ltd", "1 High St, Leeds LS1 1AA", 0, (Period("monthly", *period),))
    supplier = Supplier("LiveCall Telecom Ltd", "2 Low St\nYork YO1 1AA", "GB123456789")
    doc = invoice_document(s, customer, supplier, 7, D(2011, 2, 1), OLD_TARIFF.vat_percent.on)
    # 2278 x 17.5% = 398.65 -> 399; 20 x 20% = 4.
    assert doc["rates"] == [{"percent": "17.5", "net_pence": 2278, "vat_pence": 399, "total_pence": 2677},
                            {"percent": "20", "net_pence": 20, "vat_pence": 4, "total_pence": 24}]
    assert (doc["net_pence"], doc["vat_pence"], doc["total_pence"]) == (2298, 403, 2701)
    assert [line["vat_percent"] for line in doc["lines"]] == ["17.5", "20"]
    assert doc["supplier"]["address"] == ["2 Low St", "York YO1 1AA"] and doc["tax_point"] == "2011-02-01"
    credit = credit_note_document(doc, 3, D(2011, 2, 9), "wrong address")
    assert (credit["number"], credit["reference"], credit["credits"]["reference"]) == (3, "CN-000003", "INV-000007")
    assert (credit["total_pence"], credit["rates"][0]["vat_pence"], credit["lines"][0]["pence"]) == (-2701, -399, "-20")
    with pytest.raises(InvoiceError, match="from the day after"):
        invoice_document(s, customer, supplier, 7, D(2011, 1, 31), OLD_TARIFF.vat_percent.on)
    with pytest.raises(InvoiceError, match=r"\[invoicing\] vat_number"):
        invoice_document(s, customer, Supplier("X", "Y", " "), 7, D(2011, 2, 1), OLD_TARIFF.vat_percent.on)


def test_combined_segments_round_once() -> None:
    # Two segments of a third of a penny each add up to 2/3p: one penny, not 0 + 0.
    tariff = parse_tariff(default_tariff_text().replace("landline_per_minute = 10", 'landline_per_minute = "0.3333"'), "t")
    a = Rater(tariff, "daily", D(2025, 6, 1), D(2025, 6, 1), "acc", charge_fees=False)
    a.add(call(D(2025, 6, 1)))
    b = Rater(tariff, "daily", D(2025, 6, 2), D(2025, 6, 2), "acc", charge_fees=False)
    b.add(call(D(2025, 6, 2)))
    parts = [a.statement(), b.statement()]
    assert [p.net_pence for p in parts] == [0, 0]
    total = combine(parts, "acc", D(2025, 6, 1), D(2025, 6, 2), tariff.name)
    assert total.net_pence == 1 and total.calls == 2 and total.fees == ()


_CALL = st.tuples(st.integers(0, 60 * 86400 - 1), st.integers(0, 4000), st.sampled_from(["landline", "mobile", "freephone"]))


@settings(max_examples=60, deadline=None)
@given(calls=st.lists(_CALL, max_size=25), start=st.integers(0, 40), length=st.one_of(st.none(), st.integers(0, 40)),
       split=st.integers(1, 60), plan=st.sampled_from(["daily", "monthly"]))
def test_adjoining_statements_of_a_subscription_add_up_to_the_whole(
    calls: list[tuple[int, int, str]], start: int, length: int | None, split: int, plan: str
) -> None:
    # Calls over June and July 2025; a subscription from June 1 + start for length days (or open).
    base = at(D(2025, 6, 1), 0)
    stream = sorted(Call(base + t, LANDLINE, cls, "GB", billsec, str(t)) for t, billsec, cls in calls)
    first = D(2025, 6, 1) + dt.timedelta(days=start)
    period = (first, None if length is None else first + dt.timedelta(days=length))
    split_day = D(2025, 6, 1) + dt.timedelta(days=split)

    def statement(a: dt.date, b: dt.date) -> Statement:
        return rate_period(stream, plan, a, b, period)

    whole = statement(D(2025, 6, 1), D(2025, 7, 31))
    parts = [statement(D(2025, 6, 1), split_day - dt.timedelta(days=1)), statement(split_day, D(2025, 7, 31))]
    assert sum((p.net_exact for p in parts), Fraction(0)) == whole.net_exact
    assert [f for p in parts for f in p.fees] == list(whole.fees)
    # A subscription covering every day bills as the plan always did.
    if start == 0 and length is None:
        plain = Rater(TARIFF, plan, D(2025, 6, 1), D(2025, 7, 31), "acc")
        plain.add_all(stream)
        assert plain.statement() == whole
