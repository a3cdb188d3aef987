"""An invoice or credit note document (invoice.py) drawn as a PDF with reportlab.

The PDF is made from the stored document each time, with reportlab's invariant mode (no
creation time, a fixed document id), so the CLI and the portal give the same bytes for the
same invoice. Standard PDF fonts only (Helvetica): nothing is read from the machine.
"""

from __future__ import annotations

import io
from fractions import Fraction
from xml.sax.saxutils import escape
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from livecall_ari.charges.invoice import CREDIT_NOTE
from livecall_ari.charges.statement import pounds
from livecall_ari.portal.formats import london_date


def _money(pence: Any) -> str:
    """Pence (whole, or a line's exact amount as decimal text) as pounds to the penny."""
    return pounds(pence if isinstance(pence, int) else Fraction(str(pence)))


def _p(text: str, style: Any) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def render_pdf(document: dict[str, Any]) -> bytes:
    """The PDF of an invoice or credit note."""
    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], styles["BodyText"].clone("small", fontSize=8, leading=10)
    credit = document["kind"] == CREDIT_NOTE
    title = "Credit note" if credit else "VAT invoice"
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, invariant=1, title=f"{title} {document['reference']}",
                            author=document["supplier"]["name"], leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm)  # fmt: skip
    supplier, customer = document["supplier"], document["customer"]
    story: list[Any] = [
        _p(f"{title} {document['reference']}", styles["Title"]),
        Table(
            [[_p("From\n" + supplier["name"] + "\n" + "\n".join(supplier["address"]) + f"\nVAT registration number: {supplier['vat_number']}", body),
              _p("To\n" + customer["name"] + "\n" + "\n".join(customer["address"]) + f"\nAccount: {document['account']}", body)]],
            colWidths=[87 * mm, 87 * mm],
        ),
        Spacer(1, 4 * mm),
        _p(f"{'Credit note' if credit else 'Invoice'} number: {document['reference']} (number {document['number']})\n"
           f"Invoice date: {london_date(document['issued_on'])}\nTax point: {london_date(document['tax_point'])}\n"
           f"Supply: telephone calls and plan fees, {london_date(document['from'])} to {london_date(document['to'])} ({document['plan']} plan)", body),
    ]  # fmt: skip
    if credit:
        ref = document["credits"]
        story.append(_p(f"Credits invoice {ref['reference']} of {london_date(ref['issued_on'])}. Reason: {document['reason']}", body))
    story.append(Spacer(1, 4 * mm))
    rows: list[list[Any]] = [["Date", "Description", "Seconds", "p/min", "VAT %", "Net"]]
    for fee in document["fees"]:
        rows.append([london_date(fee["date"]), _p(fee["description"], small), "", "", fee["vat_percent"], _money(fee["pence"])])
    for line in document["lines"]:
        rows.append([f"{london_date(line['date'])} {line['time']}", _p(line["description"], small), str(line["billed_seconds"]),
                     line["pence_per_minute"], line["vat_percent"], _money(line["pence"])])
    if len(rows) == 1:
        rows.append(["", "No charges this month.", "", "", "", ""])
    table = Table(rows, colWidths=[32 * mm, 74 * mm, 17 * mm, 15 * mm, 14 * mm, 22 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8), ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("ALIGN", (2, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
    ]))  # fmt: skip
    story += [table, Spacer(1, 6 * mm)]
    totals: list[list[Any]] = [["VAT rate", "Net", "VAT", "Total"]]
    for rate in document["rates"]:
        totals.append([f"{rate['percent']}%", pounds(rate["net_pence"]), pounds(rate["vat_pence"]), pounds(rate["total_pence"])])
    totals.append(["All rates", pounds(document["net_pence"]), pounds(document["vat_pence"]), pounds(document["total_pence"])])
    summary = Table(totals, colWidths=[40 * mm, 30 * mm, 30 * mm, 30 * mm], hAlign="RIGHT")
    summary.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9), ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 9),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
    ]))  # fmt: skip
    story += [summary, Spacer(1, 4 * mm),
              _p(f"Total {'credited' if credit else 'payable'}: {pounds(abs(document['total_pence']))} "
                 f"(of which VAT {pounds(abs(document['vat_pence']))}).", body)]
    doc.build(story)
    return out.getvalue()
