"""``livecall accounts add|change|end|list`` and ``livecall invoice``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from livecall_ari.app import App
from livecall_ari.charges import billing
from livecall_ari.charges.invoice import InvoiceError, summary
from livecall_ari.charges.statement import pounds
from livecall_ari.charges.subscriptions import (
    Customer, SubscriptionError, change_plan, end_subscription, new_customer, rename,
)  # fmt: skip
from livecall_ari.charges.tariff import PLANS, TariffError
from livecall_ari.config import ConfigError

_DAY = click.DateTime(["%Y-%m-%d"])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _today() -> dt.date:
    return _now().astimezone(ZoneInfo("Europe/London")).date()


def _customer(app: App, account: str) -> Customer:
    customer = billing.load_customer(app.database(), account)
    if customer is None:
        raise click.ClickException(f"no account {account!r} (livecall accounts list shows them)")
    return customer


def _periods_text(customer: Customer) -> str:
    return ", ".join(f"{p.plan} from {p.start}" + (f" to {p.end}" if p.end else "") for p in customer.periods) or "none"


@click.group("accounts")
def accounts_group() -> None:
    """Customers' accounts (a CDR's accountcode) and their subscriptions."""


@accounts_group.command("add")
@click.argument("account")
@click.option("--name", required=True, help="The customer's name (on the invoice).")
@click.option("--address", required=True, help="The customer's address (lines separated by commas).")
@click.option("--plan", type=click.Choice(PLANS), required=True)
@click.option("--from", "first_day", type=_DAY, required=True, help="First day of the subscription, YYYY-MM-DD.")
@click.option("--to", "last_day", type=_DAY, default=None, help="Last day (inclusive); none: until ended.")
@click.option("--trial-calls", type=int, default=0, show_default=True, help="Free answered calls at the start.")
@click.pass_obj
def add(app: App, account: str, name: str, address: str, plan: str, first_day: dt.datetime,
        last_day: dt.datetime | None, trial_calls: int) -> None:
    """Add ACCOUNT with a subscription to a plan from --from."""
    try:
        customer = new_customer(account, name, address, plan, first_day.date(), last_day.date() if last_day else None,
                                trial_calls)
        billing.save_customer(app.database(), customer, now=_now(), new=True)
    except (SubscriptionError, InvoiceError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{account}: {_periods_text(customer)}; {trial_calls} trial calls")


@accounts_group.command("change")
@click.argument("account")
@click.option("--plan", type=click.Choice(PLANS), default=None, help="The new plan (with --from).")
@click.option("--from", "first_day", type=_DAY, default=None, help="The day the new plan takes effect.")
@click.option("--name", default=None, help="A new customer name (for invoices from now on).")
@click.option("--address", default=None, help="A new customer address (for invoices from now on).")
@click.pass_obj
def change(app: App, account: str, plan: str | None, first_day: dt.datetime | None, name: str | None,
           address: str | None) -> None:
    """Change ACCOUNT's plan from a date (the old plan ends the day before), or its name or address."""
    if (plan is None) != (first_day is None):
        raise click.ClickException("--plan and --from go together: a plan change takes effect from a date")
    if plan is None and name is None and address is None:
        raise click.ClickException("nothing to change: give --plan and --from, --name or --address")
    customer = _customer(app, account)
    try:
        if plan is not None and first_day is not None:
            customer = change_plan(customer, plan, first_day.date())
        customer = rename(customer, name, address)
    except SubscriptionError as exc:
        raise click.ClickException(str(exc)) from None
    billing.save_customer(app.database(), customer, now=_now())
    click.echo(f"{account}: {customer.name}, {customer.address}; {_periods_text(customer)}")


@accounts_group.command("end")
@click.argument("account")
@click.option("--on", "last_day", type=_DAY, required=True, help="The subscription's last day (charged).")
@click.pass_obj
def end(app: App, account: str, last_day: dt.datetime) -> None:
    """End ACCOUNT's subscription after --on."""
    try:
        customer = end_subscription(_customer(app, account), last_day.date())
    except SubscriptionError as exc:
        raise click.ClickException(str(exc)) from None
    billing.save_customer(app.database(), customer, now=_now())
    click.echo(f"{account}: {_periods_text(customer)}")


@accounts_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_accounts(app: App, as_json: bool) -> None:
    """Every account with its subscriptions and trial calls left."""
    today = _today()
    rows: list[dict[str, Any]] = []
    for c in billing.customers(app.database()):
        rows.append({
            "account": c.account, "name": c.name, "address": c.address, "trial_calls": c.trial_calls,
            "trial_calls_left": billing.trial_calls_left(app, c, today), "plan": c.plan_on(today),
            "subscriptions": [{"plan": p.plan, "from": p.start.isoformat(), "to": p.end.isoformat() if p.end else None}
                              for p in c.periods],
        })  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        subs = ", ".join(f"{s['plan']} from {s['from']}" + (f" to {s['to']}" if s["to"] else "") for s in row["subscriptions"])
        click.echo(f"{row['account']:<16} {row['name']:<30} {subs}; trial calls left {row['trial_calls_left']}")


@click.command("invoice")
@click.option("--account", required=True)
@click.option("--month", required=True, help="YYYY-MM (a month that has ended).")
@click.option("--pdf", "pdf_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the invoice as PDF to this file.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@click.option("--correct", "reason", default=None,
              help="Cancel the month's invoice with a credit note giving this reason, and issue a new one.")  # fmt: skip
@click.option("--date", "issued_on", type=_DAY, default=None, help="Invoice date (default: today).")
@click.pass_obj
def invoice(app: App, account: str, month: str, pdf_file: Path | None, as_json: bool, reason: str | None,
            issued_on: dt.datetime | None) -> None:
    """ACCOUNT's VAT invoice for --month: issued once with the next number, the same one after."""
    from livecall_ari.charges.invoice_pdf import render_pdf

    try:
        issued = billing.issue_invoice(app, account, month, issued_on.date() if issued_on else _today(), now=_now(),
                                       correction=reason)
    except (InvoiceError, SubscriptionError, ConfigError, TariffError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    doc = issued.invoice
    if pdf_file is not None:
        pdf_file.write_bytes(render_pdf(doc))
    if as_json:
        data = summary(doc)
        if issued.credit_note is not None:
            data["credit_note"] = summary(issued.credit_note)
        click.echo(json.dumps(data, indent=2))
        return
    if issued.credit_note is not None:
        cn = issued.credit_note
        click.echo(f"Credit note {cn['reference']} cancels {cn['credits']['reference']}: {pounds(cn['total_pence'])}")
    state = "issued" if issued.new else "already issued on " + doc["issued_on"]
    click.echo(f"Invoice {doc['reference']} ({state}) {account} {doc['month']}: net {pounds(doc['net_pence'])}, "
               f"VAT {pounds(doc['vat_pence'])}, total {pounds(doc['total_pence'])}")


commands: list[click.Command] = [accounts_group, invoice]
