"""VAT invoices and credit notes as documents: a month's statement in, plain data out. Pure: no
database, no clock (the issue date is handed in), no files.

An invoice is frozen when issued: its document (supplier, customer, lines, totals per VAT rate)
is stored as it was, so printing it again gives the same invoice whatever changes later (the
tariff, late CDRs, the supplier's address). A correction is a credit note against it (the same
lines and amounts, negative) followed by a new invoice. Totals per rate are rounded per rate,
half up (HMRC asks for the VAT at each rate); the invoice's totals are their sums. With one
rate, that is exactly the statement's net and VAT.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

from livecall_ari.charges.months import days_in_month, round_half_up
from livecall_ari.charges.rating import Statement
from livecall_ari.charges.statement import decimal_pence
from livecall_ari.charges.subscriptions import Customer

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
PREFIX = {INVOICE: "INV", CREDIT_NOTE: "CN"}


class InvoiceError(ValueError):
    """An invoice that cannot be issued; the message says what is missing or wrong."""


@dataclass(frozen=True)
class Supplier:
    name: str
    address: str
    vat_number: str

    def check(self) -> None:
        missing = [f"[invoicing] {k}" for k, v in (("supplier_name", self.name), ("supplier_address", self.address),
                                                    ("vat_number", self.vat_number)) if not v.strip()]
        if missing:
            raise InvoiceError(f"a VAT invoice needs {', '.join(missing)} in the settings")


def address_lines(text: str) -> list[str]:
    """An address written on one line with commas, or on several lines, as its lines."""
    parts = text.replace("\r", "").replace("\n", ",").split(",")
    return [p.strip() for p in parts if p.strip()]


def parse_month(text: str) -> dt.date:
    """'2025-06' -> 2025-06-01; InvoiceError names the problem."""
    try:
        day = dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise InvoiceError(f"--month: expected YYYY-MM, got {text!r}") from None
    if len(text) != 7:
        raise InvoiceError(f"--month: expected YYYY-MM, got {text!r}")
    return day


def month_range(month: dt.date) -> tuple[dt.date, dt.date]:
    return month, month.replace(day=days_in_month(month))


def reference(kind: str, number: int) -> str:
    return f"{PREFIX[kind]}-{number:06d}"


def invoice_document(
    statement: Statement,
    customer: Customer,
    supplier: Supplier,
    number: int,
    issued_on: dt.date,
    vat_on: Callable[[dt.date], Fraction],
) -> dict[str, Any]:
    """The invoice for a month's statement. ``vat_on`` gives the VAT percent of a day (the
    tariff's), shown on each line; the tax point is the issue date (a continuous supply of
    services: the invoice is issued after the month, before payment)."""
    supplier.check()
    if issued_on <= statement.last_day:
        raise InvoiceError(f"the month ends on {statement.last_day}: invoice it from the day after")
    rates: list[dict[str, Any]] = []
    for part in statement.vat_parts:
        net = round_half_up(part.net_pence)
        vat = round_half_up(part.net_pence * part.percent / 100)
        rates.append({"percent": decimal_pence(part.percent), "net_pence": net, "vat_pence": vat, "total_pence": net + vat})
    net_total = sum(r["net_pence"] for r in rates)
    vat_total = sum(r["vat_pence"] for r in rates)
    return {
        "kind": INVOICE,
        "number": number,
        "reference": reference(INVOICE, number),
        "account": statement.account,
        "month": f"{statement.first_day:%Y-%m}",
        "issued_on": issued_on.isoformat(),
        "tax_point": issued_on.isoformat(),
        "supplier": {"name": supplier.name, "address": address_lines(supplier.address), "vat_number": supplier.vat_number},
        "customer": {"name": customer.name, "address": address_lines(customer.address)},
        "plan": statement.plan,
        "from": statement.first_day.isoformat(),
        "to": statement.last_day.isoformat(),
        "lines": [
            {
                "date": line.day.isoformat(),
                "time": f"{line.start:%H:%M:%S}",
                "description": f"call to {line.number} ({line.number_class}{', trial' if line.trial else ''})",
                "number": line.number,
                "class": line.number_class,
                "billed_seconds": line.billed_seconds,
                "bundle_seconds": line.bundle_seconds,
                "pence_per_minute": decimal_pence(line.pence_per_minute),
                "pence": decimal_pence(line.pence),
                "vat_percent": decimal_pence(vat_on(line.day)),
                "trial": line.trial,
            }
            for line in statement.lines
        ],
        "fees": [
            {"date": f.day.isoformat(), "description": f.description, "pence": f.pence,
             "vat_percent": decimal_pence(vat_on(f.day))}
            for f in statement.fees
        ],
        "rates": rates,
        "net_pence": net_total,
        "vat_pence": vat_total,
        "total_pence": net_total + vat_total,
    }


def credit_note_document(invoice: dict[str, Any], number: int, issued_on: dt.date, reason: str) -> dict[str, Any]:
    """A credit note cancelling ``invoice`` in full: its lines and totals, negative, naming the
    invoice's number and date and the reason."""
    if invoice.get("kind") != INVOICE:
        raise InvoiceError("only an invoice can be credited")

    def negative(pence: Any) -> Any:
        return -pence if isinstance(pence, int) else decimal_pence(-Fraction(pence))

    return {
        **invoice,
        "kind": CREDIT_NOTE,
        "number": number,
        "reference": reference(CREDIT_NOTE, number),
        "issued_on": issued_on.isoformat(),
        "tax_point": issued_on.isoformat(),
        "credits": {"number": invoice["number"], "reference": invoice["reference"], "issued_on": invoice["issued_on"]},
        "reason": reason,
        "lines": [{**line, "pence": negative(line["pence"])} for line in invoice["lines"]],
        "fees": [{**fee, "pence": -fee["pence"]} for fee in invoice["fees"]],
        "rates": [{**r, "net_pence": -r["net_pence"], "vat_pence": -r["vat_pence"], "total_pence": -r["total_pence"]}
                  for r in invoice["rates"]],
        "net_pence": -invoice["net_pence"],
        "vat_pence": -invoice["vat_pence"],
        "total_pence": -invoice["total_pence"],
    }


def summary(document: dict[str, Any]) -> dict[str, Any]:
    """What ``livecall invoice --json`` prints: the keys other tools rely on, then the rest."""
    keys = ("number", "account", "month", "net_pence", "vat_pence", "total_pence")
    return {**{k: document[k] for k in keys}, **{k: v for k, v in document.items() if k not in keys}}
