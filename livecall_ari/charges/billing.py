"""Billing, wired: accounts and subscriptions in the database, statements rated by the plan of
each day (subscriptions.py, rating.py), and invoices issued with gap-free numbers.

Invoice numbers come from a counter row (``billing_counters``) updated in the transaction that
stores the invoice: a rolled-back issue gives its number back, a committed one keeps it for
ever, and a second process waits on the row (PostgreSQL's row lock; SQLite's write lock, taken
at BEGIN IMMEDIATE) until the first commits, then takes the next number. The look-up of an
account's existing invoice for the month happens after the lock, so two processes invoicing
the same month get the same invoice.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator

import peewee

from livecall_ari.charges import services
from livecall_ari.charges.classify import EXTERNAL, NumberClass
from livecall_ari.charges.invoice import (
    CREDIT_NOTE, INVOICE, InvoiceError, Supplier, credit_note_document, invoice_document, month_range, parse_month,
)  # fmt: skip
from livecall_ari.charges.models import BillingAccount, CdrRow, DocumentCounter, InvoiceRow, SubscriptionRow
from livecall_ari.charges.months import days_in_month
from livecall_ari.charges.rating import BILLING_ZONE, Rater, Statement
from livecall_ari.charges.subscriptions import NO_PLAN, Customer, Period, Segment, combine, segments
from livecall_ari.charges.tariff import Tariff

if TYPE_CHECKING:
    from livecall_ari.app import App

_TRIAL_CLASSES = sorted(str(c) for c in EXTERNAL if c != NumberClass.FREEPHONE)


def _utc(day: dt.date) -> int:
    """Epoch seconds of the start of ``day`` in Europe/London."""
    return int(dt.datetime.combine(day, dt.time(0), BILLING_ZONE).timestamp())


# Accounts -----------------------------------------------------------------------------------


def load_customer(db: peewee.Database, account: str) -> Customer | None:
    row = BillingAccount.get_or_none(BillingAccount.account == account)
    if row is None:
        return None
    periods = tuple(
        Period(p.plan, p.start, p.end)
        for p in SubscriptionRow.select().where(SubscriptionRow.account == account).order_by(SubscriptionRow.start)
    )
    return Customer(row.account, row.name, row.address, row.trial_calls, periods)


def customers(db: peewee.Database) -> list[Customer]:
    accounts = [r.account for r in BillingAccount.select(BillingAccount.account).order_by(BillingAccount.account)]
    return [c for a in accounts if (c := load_customer(db, a)) is not None]


def save_customer(db: peewee.Database, customer: Customer, *, now: dt.datetime, new: bool = False) -> None:
    """Store the account and replace its periods, in one transaction."""
    with db.atomic():
        if new:
            if BillingAccount.get_or_none(BillingAccount.account == customer.account) is not None:
                raise InvoiceError(f"account {customer.account} already exists (use accounts change)")
            BillingAccount.create(account=customer.account, name=customer.name, address=customer.address,
                                  trial_calls=customer.trial_calls, created_at=now)
        else:
            BillingAccount.update(name=customer.name, address=customer.address, trial_calls=customer.trial_calls).where(
                BillingAccount.account == customer.account
            ).execute()
        SubscriptionRow.delete().where(SubscriptionRow.account == customer.account).execute()
        for p in customer.periods:
            SubscriptionRow.create(account=customer.account, plan=p.plan, start=p.start, end=p.end)


def trial_calls_used(db: peewee.Database, customer: Customer, before: dt.date) -> int:
    """How many of the account's trial calls were made before ``before`` (answered external
    calls, freephone aside, on days with a subscription), at most its trial calls."""
    if customer.trial_calls <= 0:
        return 0
    used = 0
    p = db.param
    classes = ", ".join(p for _ in _TRIAL_CLASSES)
    for period in customer.periods:
        if period.start >= before:
            break
        last = before if period.end is None else min(before, period.end + dt.timedelta(days=1))
        row = db.execute_sql(  # type: ignore[no-untyped-call]
            f"SELECT count(*) FROM {CdrRow._meta.table_name} WHERE start_utc >= {p} AND start_utc < {p} "
            f"AND account = {p} AND billsec > 0 AND number_class IN ({classes})",
            (_utc(period.start), _utc(last), customer.account, *_TRIAL_CLASSES),
        ).fetchone()
        used += int(row[0])
    return min(used, customer.trial_calls)


# Statements ---------------------------------------------------------------------------------


def _segment_statement(db: peewee.Database, tariff: Tariff, customer: Customer, seg: Segment,
                       keep_lines: bool) -> Statement:
    account = customer.account
    if seg.period is None:
        rater = Rater(tariff, "daily", seg.first_day, seg.last_day, account, keep_lines, charge_fees=False)
        rater.add_all(services.account_calls(db, account, _utc(seg.first_day), _utc(seg.last_day + dt.timedelta(days=1))))
        return replace(rater.statement(), plan=NO_PLAN)
    period = seg.period
    first = seg.first_day
    if period.plan == "monthly":
        first = max(first.replace(day=1), period.start)  # the bundle counts the month's earlier calls
    trial = customer.trial_calls - trial_calls_used(db, customer, first)
    last = seg.last_day
    if trial > 0 and period.plan == "monthly":
        # Whether a month was trial calls only depends on its later calls too.
        month_end = last.replace(day=days_in_month(last))
        last = month_end if period.end is None else min(month_end, period.end)
    rater = Rater(tariff, period.plan, seg.first_day, seg.last_day, account, keep_lines,
                  subscription=(period.start, period.end), trial_left=max(trial, 0))
    rater.add_all(services.account_calls(db, account, _utc(first), _utc(last + dt.timedelta(days=1))))
    return rater.statement()


def subscribed_statement(app: App, customer: Customer, first_day: dt.date, last_day: dt.date, *,
                         keep_lines: bool = True, rate_with: Tariff | None = None) -> Statement:
    """The account's statement by its subscriptions: each day by the plan it had that day."""
    if last_day < first_day:
        raise ValueError(f"the statement ends ({last_day}) before it starts ({first_day})")
    tariff = rate_with or services.tariff(app)
    db = app.database()
    parts = [_segment_statement(db, tariff, customer, seg, keep_lines)
             for seg in segments(customer.periods, first_day, last_day)]
    return combine(parts, customer.account, first_day, last_day, tariff.name)


def statement(app: App, account: str, first_day: dt.date, last_day: dt.date, plan: str | None = None, *,
              keep_lines: bool = True) -> Statement:
    """``livecall charges``: by the account's subscriptions when it has any, unless ``plan`` is
    given (a quote), else by [charges] default_plan as before."""
    if plan is None:
        customer = load_customer(app.database(), account)
        if customer is not None and customer.periods:
            return subscribed_statement(app, customer, first_day, last_day, keep_lines=keep_lines)
    return services.account_statement(app, account, first_day, last_day, plan, keep_lines=keep_lines)


def trial_calls_left(app: App, customer: Customer, today: dt.date) -> int:
    return customer.trial_calls - trial_calls_used(app.database(), customer, today + dt.timedelta(days=1))


# Invoices -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    invoice: dict[str, Any]
    new: bool  # issued now (False: the one issued before for this account and month)
    credit_note: dict[str, Any] | None = None


def supplier(app: App) -> Supplier:
    s = app.settings.invoicing
    return Supplier(s.supplier_name, s.supplier_address, s.vat_number)


@contextmanager
def _numbering(db: peewee.Database) -> Iterator[None]:
    """A transaction holding the invoice counter's lock (see the module's docstring)."""
    atomic = db.atomic(lock_type="IMMEDIATE") if isinstance(db, peewee.SqliteDatabase) else db.atomic()
    with atomic:
        DocumentCounter.update(last=DocumentCounter.last).where(DocumentCounter.series == INVOICE).execute()
        yield


def _next_number(series: str) -> int:
    DocumentCounter.update(last=DocumentCounter.last + 1).where(DocumentCounter.series == series).execute()
    return int(DocumentCounter.get_by_id(series).last)


def _store(document: dict[str, Any], now: dt.datetime) -> None:
    InvoiceRow.create(
        kind=document["kind"], number=document["number"], account=document["account"], month=document["month"],
        issued_on=dt.date.fromisoformat(document["issued_on"]), credits=(document.get("credits") or {}).get("number"),
        net_pence=document["net_pence"], vat_pence=document["vat_pence"], total_pence=document["total_pence"],
        document=json.dumps(document, sort_keys=True), created_at=now,
    )  # fmt: skip


def _current(account: str, month: str) -> InvoiceRow | None:
    credited = InvoiceRow.select(InvoiceRow.credits).where(
        (InvoiceRow.kind == CREDIT_NOTE) & InvoiceRow.credits.is_null(False)
    )
    query = (InvoiceRow.select()
             .where((InvoiceRow.kind == INVOICE) & (InvoiceRow.account == account) & (InvoiceRow.month == month)
                    & InvoiceRow.number.not_in(credited))
             .order_by(InvoiceRow.number.desc()).limit(1))  # fmt: skip
    return query.first()  # type: ignore[no-any-return]


def issue_invoice(app: App, account: str, month: str, issued_on: dt.date, *, now: dt.datetime,
                  correction: str | None = None) -> Issued:
    """The account's invoice for ``month`` (YYYY-MM): the one already issued, or a new one with
    the next number. With ``correction`` (the reason), the current invoice is cancelled by a
    credit note and a new invoice issued from today's figures."""
    first, last = month_range(parse_month(month))
    db = app.database()
    customer = load_customer(db, account)
    if customer is None:
        raise InvoiceError(f"no account {account!r}: add it first (livecall accounts add {account} ...)")
    who = supplier(app)
    who.check()
    tariff = services.tariff(app)
    statement_ = subscribed_statement(app, customer, first, last, rate_with=tariff)
    if not statement_.lines and not statement_.fees:
        raise InvoiceError(f"{account} has nothing to invoice for {month}: no subscription and no calls")
    draft = invoice_document(statement_, customer, who, 0, issued_on, tariff.vat_percent.on)
    with _numbering(db):
        current = _current(account, draft["month"])
        if current is not None and correction is None:
            return Issued(json.loads(current.document), new=False)
        credit = None
        if correction is not None:
            if current is None:
                raise InvoiceError(f"{account} has no invoice for {draft['month']} to correct")
            if not correction.strip():
                raise InvoiceError("a correction needs its reason")
            credit = credit_note_document(json.loads(current.document), _next_number(CREDIT_NOTE), issued_on,
                                          correction.strip())
            _store(credit, now)
        number = _next_number(INVOICE)
        document = {**draft, "number": number, "reference": f"INV-{number:06d}"}
        _store(document, now)
    return Issued(document, new=True, credit_note=credit)


def invoices(db: peewee.Database, account: str) -> list[dict[str, Any]]:
    """The account's invoices and credit notes, newest first, as issued."""
    rows = (InvoiceRow.select().where(InvoiceRow.account == account)
            .order_by(InvoiceRow.issued_on.desc(), InvoiceRow.id.desc()))  # fmt: skip
    return [json.loads(r.document) for r in rows]


def document(db: peewee.Database, kind: str, number: int) -> dict[str, Any] | None:
    row = InvoiceRow.get_or_none((InvoiceRow.kind == kind) & (InvoiceRow.number == number))
    return None if row is None else json.loads(row.document)
