"""A statement as JSON-ready data, CSV and printable HTML: the same figures in every form.

Line amounts are exact (a per-second call can cost 19/6p): ``pence`` is an integer when the
amount is whole and otherwise a decimal string to 4 places, and ``pence_exact`` is always the
exact fraction. Only the statement's net and VAT are rounded (see rating.py).
"""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import jinja2

from livecall_ari.charges.rating import Statement
from livecall_ari.portal.formats import london_date, money


def exact(amount: Fraction) -> str:
    return str(amount.numerator) if amount.denominator == 1 else f"{amount.numerator}/{amount.denominator}"


def decimal_pence(amount: Fraction, places: int = 4) -> str:
    """An exact amount as decimal text, to ``places`` decimals (half up) only if it needs them."""
    if amount.denominator == 1:
        return str(amount.numerator)
    value = Decimal(amount.numerator) / Decimal(amount.denominator)
    return format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).normalize(), "f")


def _json_pence(amount: Fraction) -> int | str:
    return amount.numerator if amount.denominator == 1 else decimal_pence(amount)


def pounds(pence: int | Fraction) -> str:
    """Pence as people read money, "£1,234.56" (portal/formats.py: one rule for every page)."""
    return money(pence)


def to_data(statement: Statement) -> dict[str, Any]:
    """The statement as plain data (what ``livecall charges --json`` prints)."""
    return {
        "account": statement.account,
        "plan": statement.plan,
        "from": statement.first_day.isoformat(),
        "to": statement.last_day.isoformat(),
        "tariff": statement.tariff,
        "calls": statement.calls,
        "billed_seconds": statement.billed_seconds,
        "calls_pence_exact": exact(statement.calls_pence),
        "fees_pence": statement.fees_pence,
        "fees": [{"date": f.day.isoformat(), "description": f.description, "pence": f.pence} for f in statement.fees],
        "vat": [
            {"percent": decimal_pence(part.percent), "net_pence_exact": exact(part.net_pence)}
            for part in statement.vat_parts
        ],
        "net_pence": statement.net_pence,
        "vat_pence": statement.vat_pence,
        "total_pence": statement.total_pence,
        "lines": [
            {
                "date": line.day.isoformat(),
                "time": line.start.isoformat(),
                "number": line.number,
                "class": line.number_class,
                "country": line.country,
                "billsec": line.billsec,
                "billed_seconds": line.billed_seconds,
                "bundle_seconds": line.bundle_seconds,
                "pence_per_minute": decimal_pence(line.pence_per_minute),
                "pence": _json_pence(line.pence),
                "pence_exact": exact(line.pence),
                "uniqueid": line.uniqueid,
                "trial": line.trial,
            }
            for line in statement.lines
        ],
    }


CSV_HEADER = (
    "date", "time", "number", "class", "country", "billsec", "billed_seconds", "bundle_seconds",
    "pence_per_minute", "pence", "pence_exact", "uniqueid",
)  # fmt: skip


def to_csv(statement: Statement) -> str:
    """One row per call, then the fees and the totals as rows of the same shape."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for line in statement.lines:
        w.writerow(
            (
                line.day.isoformat(), line.start.isoformat(), line.number,
                line.number_class + (" trial" if line.trial else ""), line.country,
                line.billsec, line.billed_seconds, line.bundle_seconds, decimal_pence(line.pence_per_minute),
                decimal_pence(line.pence), exact(line.pence), line.uniqueid,
            )
        )  # fmt: skip
    for fee in statement.fees:
        w.writerow((fee.day.isoformat(), "", "", "fee: " + fee.description, "", "", "", "", "", fee.pence, fee.pence, ""))
    for label, pence in (("net", statement.net_pence), ("vat", statement.vat_pence), ("total", statement.total_pence)):
        w.writerow((statement.last_day.isoformat(), "", "", label, "", "", "", "", "", pence, pence, ""))
    return out.getvalue()


_HTML = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(
    """<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<title>Statement {{ s.account }} {{ s.first_day }} to {{ s.last_day }}</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
td.n, th.n { text-align: right; }
@media print { body { margin: 0; } }
</style>
</head>
<body>
<h1>Statement</h1>
<p>Account <strong>{{ s.account }}</strong>, {{ s.plan }} plan ({{ s.tariff }}),
{{ day(s.first_day) }} to {{ day(s.last_day) }}. Amounts in pounds; each call's to the penny, the totals from the exact amounts.</p>
<h2>Calls</h2>
<table>
<tr><th>Date</th><th>Time</th><th>Number</th><th>Class</th><th class="n">Seconds</th><th class="n">Billed</th><th class="n">In bundle</th><th class="n">Rate per minute</th><th class="n">Cost</th></tr>
{% for l in s.lines %}
<tr><td>{{ day(l.day) }}</td><td>{{ l.start.strftime("%H:%M:%S") }}</td><td>{{ l.number }}</td><td>{{ l.number_class }}{% if l.country and l.number_class == "international" %} ({{ l.country }}){% endif %}</td><td class="n">{{ l.billsec }}</td><td class="n">{{ l.billed_seconds }}</td><td class="n">{{ l.bundle_seconds }}</td><td class="n">{{ dec(l.pence_per_minute) }}p</td><td class="n">{{ money(l.pence) }}{% if l.trial %} (trial){% endif %}</td></tr>
{% else %}
<tr><td colspan="9">No billed calls.</td></tr>
{% endfor %}
</table>
<h2>Fees</h2>
<table>
{% for f in s.fees %}
<tr><td>{{ day(f.day) }}</td><td>{{ f.description }}</td><td class="n">{{ money(f.pence) }}</td></tr>
{% else %}
<tr><td>No fees.</td></tr>
{% endfor %}
</table>
<h2>Total</h2>
<table>
<tr><td>Calls ({{ s.calls }})</td><td class="n">{{ money(s.calls_pence) }}</td></tr>
<tr><td>Fees</td><td class="n">{{ money(s.fees_pence) }}</td></tr>
<tr><td>Net (rounded half up)</td><td class="n">{{ money(s.net_pence) }}</td></tr>
{% for part in s.vat_parts %}
<tr><td>VAT {{ dec(part.percent) }}% on {{ money(part.net_pence) }}</td><td></td></tr>
{% endfor %}
<tr><td>VAT</td><td class="n">{{ money(s.vat_pence) }}</td></tr>
<tr><th>Total</th><th class="n">{{ money(s.total_pence) }}</th></tr>
</table>
</body>
</html>
"""
)


def to_html(statement: Statement) -> str:
    """A printable statement (the web portal shows the same data)."""
    return _HTML.render(s=statement, dec=decimal_pence, money=money, day=london_date)
