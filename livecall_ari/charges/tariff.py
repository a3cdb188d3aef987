"""Tariffs: effective-dated prices read from TOML (the default one ships in this folder).

Parsing is pure (:func:`parse_tariff` takes the text); :func:`load_tariff` only reads the file.
Prices are exact: pence as whole numbers or decimal strings with at most four decimal places,
so a per-minute price divides into per-second prices without loss (see :data:`UNITS_PER_PENNY`).
"""

from __future__ import annotations

import bisect
import datetime as dt
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Generic, Mapping, TypeVar

from livecall_ari.charges.classify import NumberClass

# Charges are summed as whole "units" of 1/600000 penny: a price of P pence a minute, with at
# most 4 decimal places, is exactly P * 10**4 units a second. Nothing is rounded until the
# statement total.
PRICE_DECIMALS = 4
UNITS_PER_PENNY = 60 * 10**PRICE_DECIMALS

DEFAULT_TARIFF = "default_tariff.toml"
PLANS = ("daily", "monthly")

T = TypeVar("T")


class TariffError(ValueError):
    """A tariff that cannot be used; the message names the file, the table and the field."""


@dataclass(frozen=True)
class Price:
    """Pence per minute, exact."""

    pence_per_minute: Fraction
    units_per_second: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "units_per_second", int(self.pence_per_minute * 10**PRICE_DECIMALS))


@dataclass(frozen=True)
class Terms:
    """What one plan charges from one date: fee, bundle, per-minute prices, increment, minimum."""

    fee_pence: int
    landline: Price
    mobile: Price
    increment_seconds: int
    minimum_pence: Fraction
    bundle_landline_minutes: int = 0
    minimum_units: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "minimum_units", int(self.minimum_pence * UNITS_PER_PENNY))


@dataclass(frozen=True)
class AdditionalPrices:
    """Per-minute prices of the classes the plans do not price themselves."""

    by_class: Mapping[str, Price]
    international: Mapping[str, Price]
    international_default: Price

    def price(self, number_class: str, country: str) -> Price:
        if number_class == NumberClass.INTERNATIONAL:
            return self.international.get(country, self.international_default)
        return self.by_class[number_class]


@dataclass(frozen=True)
class Dated(Generic[T]):
    """Values that change on dates: each applies from its date until the next one's."""

    what: str
    starts: tuple[dt.date, ...]
    values: tuple[T, ...]

    def on(self, day: dt.date) -> T:
        i = bisect.bisect_right(self.starts, day) - 1
        if i < 0:
            raise TariffError(f"no {self.what} in effect on {day} (the first period starts {self.starts[0]})")
        return self.values[i]


@dataclass(frozen=True)
class Tariff:
    name: str
    source: str
    daily: Dated[Terms]
    monthly: Dated[Terms]
    additional: Dated[AdditionalPrices]
    vat_percent: Dated[Fraction]

    def terms(self, plan: str) -> Dated[Terms]:
        if plan == "daily":
            return self.daily
        if plan == "monthly":
            return self.monthly
        raise TariffError(f"unknown plan {plan!r} (use daily or monthly)")


_ADDITIONAL_CLASSES = {
    "freephone": NumberClass.FREEPHONE,
    "service": NumberClass.SERVICE,
    "premium": NumberClass.PREMIUM,
    "personal": NumberClass.PERSONAL,
    "pager": NumberClass.PAGER,
    "other": NumberClass.OTHER,
}


def _pence(value: Any, where: str, *, whole: bool = False) -> Fraction:
    if isinstance(value, bool) or isinstance(value, float):
        raise TariffError(f"{where}: write pence as a whole number or a decimal string like \"12.5\", not {value!r}")
    if isinstance(value, (int, Fraction)):
        amount = Fraction(value)
    elif isinstance(value, str):
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            raise TariffError(f"{where}: not an amount of pence: {value!r}") from None
        if not dec.is_finite():
            raise TariffError(f"{where}: not an amount of pence: {value!r}")
        exponent = dec.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -PRICE_DECIMALS:
            raise TariffError(f"{where}: at most {PRICE_DECIMALS} decimal places, got {value!r}")
        amount = Fraction(dec)
    else:
        raise TariffError(f"{where}: expected pence, got {value!r}")
    if amount < 0:
        raise TariffError(f"{where}: must not be negative, got {value!r}")
    if whole and amount.denominator != 1:
        raise TariffError(f"{where}: must be whole pence, got {value!r}")
    return amount


def _count(value: Any, where: str, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise TariffError(f"{where}: expected a whole number of at least {least}, got {value!r}")
    return value


def _periods(data: Mapping[str, Any], key: str, src: str) -> list[tuple[str, dt.date, dict[str, Any]]]:
    raw = data.get(key)
    if not isinstance(raw, list) or not raw:
        raise TariffError(f"{src}: [[{key}]]: at least one period is required")
    out: list[tuple[str, dt.date, dict[str, Any]]] = []
    for i, period in enumerate(raw, 1):
        where = f"{src}: [[{key}]] #{i}"
        if not isinstance(period, dict):
            raise TariffError(f"{where}: expected a table")
        start = period.get("from")
        if isinstance(start, dt.datetime) or not isinstance(start, dt.date):
            raise TariffError(f"{where}: 'from' must be a date like 2025-09-01, got {start!r}")
        where = f"{where} (from {start})"
        if out and start <= out[-1][1]:
            raise TariffError(f"{where}: periods must be in date order without repeats")
        out.append((where, start, {k: v for k, v in period.items() if k != "from"}))
    return out


def _no_unknown(values: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise TariffError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _terms(data: Mapping[str, Any], key: str, fee_key: str, src: str, defaults: tuple[int, Fraction]) -> Dated[Terms]:
    known = {fee_key, "landline_per_minute", "mobile_per_minute", "increment_seconds", "minimum_charge_pence"}
    if key == "monthly":
        known.add("bundle_landline_minutes")
    starts: list[dt.date] = []
    values: list[Terms] = []
    for where, start, p in _periods(data, key, src):
        _no_unknown(p, known, where)
        for required in sorted(known - {"increment_seconds", "minimum_charge_pence"}):
            if required not in p:
                raise TariffError(f"{where}: {required} is required")
        values.append(
            Terms(
                fee_pence=int(_pence(p[fee_key], f"{where}: {fee_key}", whole=True)),
                landline=Price(_pence(p["landline_per_minute"], f"{where}: landline_per_minute")),
                mobile=Price(_pence(p["mobile_per_minute"], f"{where}: mobile_per_minute")),
                increment_seconds=_count(p.get("increment_seconds", defaults[0]), f"{where}: increment_seconds", least=1),
                minimum_pence=_pence(p.get("minimum_charge_pence", defaults[1]), f"{where}: minimum_charge_pence"),
                bundle_landline_minutes=_count(p.get("bundle_landline_minutes", 0), f"{where}: bundle_landline_minutes"),
            )
        )
        starts.append(start)
    return Dated(f"{key} plan prices", tuple(starts), tuple(values))


def _additional(data: Mapping[str, Any], src: str) -> Dated[AdditionalPrices]:
    known = set(_ADDITIONAL_CLASSES) | {"international", "international_default"}
    starts: list[dt.date] = []
    values: list[AdditionalPrices] = []
    for where, start, p in _periods(data, "additional", src):
        _no_unknown(p, known, where)
        for required in sorted(known):
            if required not in p:
                raise TariffError(f"{where}: {required} is required")
        table = p["international"]
        if not isinstance(table, dict):
            raise TariffError(f"{where}: international must be a table of country codes, like IE = 20")
        international: dict[str, Price] = {}
        for country, value in table.items():
            if not (len(country) == 2 and country.isascii() and country.isalpha() and country.isupper()):
                raise TariffError(f"{where}: international.{country}: expected a two-letter country code like IE")
            international[country] = Price(_pence(value, f"{where}: international.{country}"))
        values.append(
            AdditionalPrices(
                by_class={cls: Price(_pence(p[name], f"{where}: {name}")) for name, cls in _ADDITIONAL_CLASSES.items()},
                international=international,
                international_default=Price(_pence(p["international_default"], f"{where}: international_default")),
            )
        )
        starts.append(start)
    return Dated("additional prices", tuple(starts), tuple(values))


def _vat(data: Mapping[str, Any], src: str) -> Dated[Fraction]:
    starts: list[dt.date] = []
    values: list[Fraction] = []
    for where, start, p in _periods(data, "vat", src):
        _no_unknown(p, {"percent"}, where)
        if "percent" not in p:
            raise TariffError(f"{where}: percent is required")
        values.append(_pence(p["percent"], f"{where}: percent"))
        starts.append(start)
    return Dated("VAT rate", tuple(starts), tuple(values))


def parse_tariff(text: str, source: str = "<tariff>") -> Tariff:
    """A :class:`Tariff` from TOML text; :class:`TariffError` names the file, table and field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffError(f"{source}: {exc}") from None
    _no_unknown(
        data,
        {"name", "increment_seconds", "minimum_charge_pence", "vat", "daily", "monthly", "additional"},
        source,
    )
    defaults = (
        _count(data.get("increment_seconds", 60), f"{source}: increment_seconds", least=1),
        _pence(data.get("minimum_charge_pence", 0), f"{source}: minimum_charge_pence"),
    )
    return Tariff(
        name=str(data.get("name", "")),
        source=source,
        daily=_terms(data, "daily", "day_fee_pence", source, defaults),
        monthly=_terms(data, "monthly", "month_fee_pence", source, defaults),
        additional=_additional(data, source),
        vat_percent=_vat(data, source),
    )


def default_tariff_text() -> str:
    return resources.files("livecall_ari.charges").joinpath(DEFAULT_TARIFF).read_text(encoding="utf-8")


def load_tariff(path: Path | str | None = None) -> Tariff:
    """The tariff file at ``path``, or the one shipped with LiveCall when ``path`` is empty."""
    if not path:
        return parse_tariff(default_tariff_text(), f"(LiveCall) {DEFAULT_TARIFF}")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TariffError(f"{p}: cannot read the tariff: {exc.strerror}") from None
    return parse_tariff(text, str(p))

