"""Charges: an account's statement for a period, with a chart of daily minutes and cost drawn
on the server as SVG (no script, nothing fetched), and the same statement as CSV and as the
printable HTML of charges/statement.py; the account's subscription, trial calls left and
invoices, each invoice and credit note downloadable as the same PDF `livecall invoice` writes."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from livecall_ari.portal.web import Ctx, Portal, secure

MAX_DAYS = 366


@dataclass(frozen=True)
class DayBar:
    day: dt.date
    minutes: float
    pence: Fraction
    # Drawing: x, width, heights of the minutes and cost bars, in the SVG's units.
    x: float = 0
    width: float = 0
    minutes_height: float = 0
    pence_height: float = 0


def daily_totals(lines: Iterable[Any], first: dt.date, last: dt.date) -> list[DayBar]:
    """Billed minutes and cost per day of [first, last], days without calls included."""
    minutes: dict[dt.date, int] = {}
    pence: dict[dt.date, Fraction] = {}
    for line in lines:
        minutes[line.day] = minutes.get(line.day, 0) + int(line.billed_seconds)
        pence[line.day] = pence.get(line.day, Fraction(0)) + line.pence
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [DayBar(d, round(minutes.get(d, 0) / 60, 1), pence.get(d, Fraction(0))) for d in days]


def chart(bars: list[DayBar], width: float = 720, height: float = 160) -> list[DayBar]:
    """Lay the bars out: two per day (minutes, cost), each scaled to its own maximum."""
    if not bars:
        return []
    top_minutes = max(b.minutes for b in bars) or 1
    top_pence = max(b.pence for b in bars) or Fraction(1)
    slot = width / len(bars)
    bar = max(slot * 0.4, 0.5)
    return [DayBar(b.day, b.minutes, b.pence, x=round(i * slot, 2), width=round(bar, 2),
                   minutes_height=round(height * b.minutes / top_minutes, 2),
                   pence_height=round(float(height * b.pence / top_pence), 2)) for i, b in enumerate(bars)]


def period(params: Any, today: dt.date) -> tuple[dt.date, dt.date, str]:
    """The period asked for (default: this month to today); a problem comes back as text."""
    try:
        first = dt.date.fromisoformat(params.get("from")) if params.get("from") else today.replace(day=1)
        last = dt.date.fromisoformat(params.get("to")) if params.get("to") else today
    except ValueError:
        return today.replace(day=1), today, "Dates are YYYY-MM-DD."
    if last < first:
        return first, first, "The period ends before it starts."
    if (last - first).days >= MAX_DAYS:
        return first, first + dt.timedelta(days=MAX_DAYS - 1), f"A statement covers at most {MAX_DAYS} days."
    return first, last, ""


def routes(portal: Portal) -> list[BaseRoute]:
    from livecall_ari.charges import billing, services
    from livecall_ari.charges.invoice import CREDIT_NOTE, INVOICE
    from livecall_ari.charges.invoice_pdf import render_pdf
    from livecall_ari.charges.statement import to_csv, to_html

    def statement_for(request: Request) -> tuple[Any, dict[str, Any]]:
        today = portal.clock().astimezone(ZoneInfo("Europe/London")).date()
        first, last, problem = period(request.query_params, today)
        db = portal.app.database()
        accounts = sorted(set(services.accounts(db)) | {c.account for c in billing.customers(db)})
        account = request.query_params.get("account") or (accounts[0] if accounts else portal.settings.charges.default_account)
        customer = billing.load_customer(db, account)
        # No plan asked for: the account's subscriptions, else the default plan.
        plan = request.query_params.get("plan") or ("" if customer and customer.periods else portal.settings.charges.default_plan)
        values = {"accounts": accounts, "account": account, "first": first, "last": last, "plan": plan, "problem": problem,
                  "today": today, "customer": customer, "subscription": customer.current(today) if customer else None,
                  "trial_left": billing.trial_calls_left(portal.app, customer, today) if customer else 0,
                  "invoices": billing.invoices(db, account)}
        try:
            statement = billing.statement(portal.app, account, first, last, plan or None)
        except Exception as exc:  # a bad tariff or plan: say so on the page
            values["problem"] = f"No statement: {exc}"
            return None, values
        return statement, values

    async def show(request: Request, ctx: Ctx) -> Response:
        statement, values = statement_for(request)
        bars = chart(daily_totals(statement.lines, values["first"], values["last"])) if statement else []
        query = f"account={values['account']}&from={values['first']}&to={values['last']}&plan={values['plan']}"
        return portal.render(request, "charges.html", ctx, title="Charges", statement=statement, bars=bars,
                             query=query, **values)

    async def csv_file(request: Request, ctx: Ctx) -> Response:
        statement, values = statement_for(request)
        if statement is None:
            return portal.refuse(request, ctx, values["problem"], status=400)
        # A header is Latin-1: the account (any text) goes into the file name as safe ASCII.
        account = re.sub(r"[^A-Za-z0-9._-]", "_", str(values["account"]))[:60]
        name = f"statement-{account}-{values['first']}-{values['last']}.csv"
        return secure(Response(to_csv(statement), media_type="text/csv; charset=utf-8",
                               headers={"Content-Disposition": f'attachment; filename="{name}"'}))

    async def printable(request: Request, ctx: Ctx) -> Response:
        statement, values = statement_for(request)
        if statement is None:
            return portal.refuse(request, ctx, values["problem"], status=400)
        response = secure(HTMLResponse(to_html(statement)))
        # The printable statement carries its own inline styles.
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        return response

    async def pdf(request: Request, ctx: Ctx) -> Response:
        kind = INVOICE if request.url.path.startswith("/charges/invoices/") else CREDIT_NOTE
        document = billing.document(portal.app.database(), kind, int(request.path_params["number"]))
        if document is None:
            return portal.refuse(request, ctx, "No such invoice.", status=404)
        name = f"{document['reference']}.pdf"
        return secure(Response(render_pdf(document), media_type="application/pdf",
                               headers={"Content-Disposition": f'attachment; filename="{name}"'}))

    return [
        Route("/charges/invoices/{number:int}.pdf", portal.page("charges.view", pdf)),
        Route("/charges/credit-notes/{number:int}.pdf", portal.page("charges.view", pdf)),
        Route("/charges", portal.page("charges.view", show)),
        Route("/charges/statement.csv", portal.page("charges.view", csv_file)),
        Route("/charges/statement.html", portal.page("charges.view", printable)),
    ]
