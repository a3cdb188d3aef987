"""Tariff files: the shipped defaults, effective dates, and errors that name the field."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path

import pytest

from livecall_ari.charges.tariff import TariffError, default_tariff_text, load_tariff, parse_tariff

D = dt.date


def test_shipped_defaults_are_the_issue_s() -> None:
    t = load_tariff()
    daily = t.daily.on(D(2025, 6, 1))
    assert (daily.fee_pence, daily.landline.pence_per_minute, daily.mobile.pence_per_minute) == (800, 10, 20)
    assert daily.increment_seconds == 60 and daily.minimum_pence == 0
    monthly = t.monthly.on(D(2025, 6, 1))
    assert (monthly.fee_pence, monthly.bundle_landline_minutes) == (3500, 300)
    assert (monthly.landline.pence_per_minute, monthly.mobile.pence_per_minute) == (10, 20)
    extra = t.additional.on(D(2025, 6, 1))
    assert extra.price("freephone", "").pence_per_minute == 0
    assert extra.price("international", "FR").pence_per_minute == 20
    assert extra.price("international", "ZW") == extra.international_default
    assert t.vat_percent.on(D(2025, 6, 1)) == 20
    assert t.vat_percent.on(D(2010, 6, 1)) == Fraction(35, 2)
    assert t.vat_percent.on(D(2009, 6, 1)) == 15


SMALL = """
name = "test"
increment_seconds = 1
minimum_charge_pence = "2.5"
[[vat]]
from = 2020-01-01
percent = 20
[[daily]]
from = 2020-01-01
day_fee_pence = 800
landline_per_minute = 10
mobile_per_minute = 20
[[daily]]
from = 2025-09-01
day_fee_pence = 900
landline_per_minute = "12.5"
mobile_per_minute = 20
increment_seconds = 60
[[monthly]]
from = 2020-01-01
month_fee_pence = 3500
bundle_landline_minutes = 300
landline_per_minute = 10
mobile_per_minute = 20
[[additional]]
from = 2020-01-01
freephone = 0
service = 15
premium = 150
personal = 50
pager = 50
other = 20
international_default = 100
international = { IE = 20 }
"""


def test_prices_change_on_their_date() -> None:
    t = parse_tariff(SMALL)
    assert t.daily.on(D(2025, 8, 31)).fee_pence == 800  # "the daily rate until September 1"
    new = t.daily.on(D(2025, 9, 1))
    assert new.fee_pence == 900 and new.landline.pence_per_minute == Fraction(25, 2)
    assert new.landline.units_per_second == 125000
    # Top-level increment and minimum are the defaults; a period can override them.
    assert t.daily.on(D(2025, 8, 31)).increment_seconds == 1
    assert new.increment_seconds == 60
    assert new.minimum_pence == Fraction(5, 2)


def test_before_the_first_period_is_an_error() -> None:
    with pytest.raises(TariffError, match="no daily plan prices in effect on 2019-12-31"):
        parse_tariff(SMALL).daily.on(D(2019, 12, 31))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("landline_per_minute = 10\nmobile", "landline_per_minute = 10.5\nmobile", r"\[\[daily\]\] #1 \(from 2020-01-01\): landline_per_minute: write pence as a whole number"),
        ('landline_per_minute = "12.5"', 'landline_per_minute = "12.12345"', "at most 4 decimal places"),
        ("day_fee_pence = 900", 'day_fee_pence = "900.5"', "day_fee_pence: must be whole pence"),
        ("from = 2025-09-01", "from = 2019-09-01", r"\[\[daily\]\] #2 \(from 2019-09-01\): periods must be in date order"),
        ("service = 15", "servce = 15", "unknown field 'servce'"),
        ("premium = 150", 'premium = "-1"', "premium: must not be negative"),
        ("percent = 20", "", r"\[\[vat\]\] #1 \(from 2020-01-01\): percent is required"),
        ("international = { IE = 20 }", "international = { ie = 20 }", "international.ie: expected a two-letter country code"),
        ("increment_seconds = 1", "increment_seconds = 0", "increment_seconds: expected a whole number of at least 1"),
        ("from = 2020-01-01\nday_fee", "from = 2020-01-01T10:00:00\nday_fee", "'from' must be a date"),
        ('name = "test"', 'name = "test', "line 2"),
    ],
)
def test_errors_name_the_table_and_field(old: str, new: str, message: str) -> None:
    assert old in SMALL
    with pytest.raises(TariffError, match=message):
        parse_tariff(SMALL.replace(old, new, 1), "my.toml")


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(SMALL.replace("service = 15", "service = 1.5"))
    with pytest.raises(TariffError, match=f"{path}: .*service"):
        load_tariff(path)
    with pytest.raises(TariffError, match="cannot read"):
        load_tariff(tmp_path / "missing.toml")


def test_default_tariff_is_packaged() -> None:
    assert "[[daily]]" in default_tariff_text()
