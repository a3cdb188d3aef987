"""What charges stores: every CDR once, and how far each CDR file has been read.

A record's identity (account, start second and :meth:`CdrRecord.key`, a 64-bit hash of its
uniqueid, channels, number and times) is unique: a record read twice (the same file imported
again, a rotated copy, a re-run after a crash) is ignored by the database itself. Records of
several PBXs sharing the database differ by their uniqueid, which Asterisk prefixes with its
``systemname`` (set it to each PBX's [asterisk] system_name; the sandbox does). ``cdr_files``
remembers, per PBX and file, the byte offset and line number up to which records are committed; it is written in the same transaction as the records, so the two never disagree.
Times are UTC epoch seconds; the number is stored classified (E.164, class, country).
Billing: accounts with their subscription periods, and issued invoices and credit notes, each
numbered from its series' counter (see :class:`DocumentCounter`).
"""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration, create_tables


class CdrRow(peewee.Model):
    """One CDR: what rating needs as columns, and the line exactly as Asterisk wrote it."""

    id = peewee.AutoField()
    account = peewee.CharField()  # accountcode, or the configured default account when empty
    start_utc = peewee.BigIntegerField()
    record_key = peewee.BigIntegerField()  # CdrRecord.key(): unique with account and start
    end_utc = peewee.BigIntegerField()
    duration = peewee.IntegerField()
    billsec = peewee.IntegerField()
    number = peewee.CharField()  # dst as E.164, or the extension as dialled
    number_class = peewee.CharField()
    country = peewee.CharField(default="")
    uniqueid = peewee.CharField(default="")
    call_id = peewee.CharField(default="")  # LiveCall's call id (its cdr_custom record only)
    cdr_line = peewee.TextField()  # the CSV line as read: every other field, for explaining a charge
    source = peewee.TextField(default="")  # the file the record was first read from
    line_no = peewee.IntegerField(default=0)

    class Meta:
        table_name = "cdr_records"
        # One index does both jobs: refuses a record already stored, and finds calls in time
        # order. Time first: rows arrive in time order, so it grows at its right edge.
        indexes = ((("start_utc", "account", "record_key"), True),)


class CdrFile(peewee.Model):
    # "system_name:/resolved/path" (store.Checkpoint.key); a bare path was saved before PBXs had names.
    path = peewee.TextField(primary_key=True)
    head_hash = peewee.CharField()  # hash of the first line: tells a new file from the old one
    offset = peewee.BigIntegerField()  # bytes committed
    line_no = peewee.BigIntegerField()  # lines committed
    records = peewee.BigIntegerField(default=0)  # records read from this file (new or not)
    bad_lines = peewee.BigIntegerField(default=0)
    updated_at = peewee.DateTimeField()  # UTC

    class Meta:
        table_name = "cdr_files"


class BillingAccount(peewee.Model):
    """A customer: the account (a CDR's accountcode), name and address, free trial calls."""

    account = peewee.CharField(primary_key=True)
    name = peewee.TextField()
    address = peewee.TextField()
    trial_calls = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField()  # UTC

    class Meta:
        table_name = "billing_accounts"


class SubscriptionRow(peewee.Model):
    """One subscription period: a plan from ``start`` to ``end`` inclusive (NULL: open)."""

    id = peewee.AutoField()
    account = peewee.CharField(index=True)
    plan = peewee.CharField()
    start = peewee.DateField()
    end = peewee.DateField(null=True)

    class Meta:
        table_name = "billing_subscriptions"


class DocumentCounter(peewee.Model):
    """The last number issued in a series ("invoice", "credit_note"). Taking a number updates
    this row in the transaction that stores the document, so numbers have no gaps and two
    processes never get the same one (the row lock queues them)."""

    series = peewee.CharField(primary_key=True)
    last = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "billing_counters"


class InvoiceRow(peewee.Model):
    """An issued invoice or credit note, frozen: the document as issued (JSON)."""

    id = peewee.AutoField()
    kind = peewee.CharField()  # "invoice" or "credit_note"
    number = peewee.BigIntegerField()
    account = peewee.CharField()
    month = peewee.CharField()  # YYYY-MM
    issued_on = peewee.DateField()
    credits = peewee.BigIntegerField(null=True)  # a credit note: the number of the invoice it cancels
    net_pence = peewee.BigIntegerField()
    vat_pence = peewee.BigIntegerField()
    total_pence = peewee.BigIntegerField()
    document = peewee.TextField()
    created_at = peewee.DateTimeField()  # UTC

    class Meta:
        table_name = "billing_invoices"
        indexes = (
            (("kind", "number"), True),
            (("account", "month"), False),
        )


def _billing_tables(db: peewee.Database) -> None:
    db.create_tables([BillingAccount, SubscriptionRow, DocumentCounter, InvoiceRow])
    with db.bind_ctx([DocumentCounter]):
        for series in ("invoice", "credit_note"):
            DocumentCounter.create(series=series, last=0)


# Column order of the bulk insert (store.py builds tuples in this order).
INSERT_COLUMNS = (
    "account", "start_utc", "record_key", "end_utc", "duration", "billsec", "number",
    "number_class", "country", "uniqueid", "call_id", "cdr_line", "source", "line_no",
)  # fmt: skip



def _index_by_time(db: peewee.Database) -> None:
    """The same unique identity, with time first (0001 had the account first, which made
    every insert land in one of as many places as there are accounts)."""
    table = CdrRow._meta.table_name
    db.execute_sql("DROP INDEX IF EXISTS cdrrow_account_start_utc_record_key")  # type: ignore[no-untyped-call]
    db.execute_sql(  # type: ignore[no-untyped-call]
        f"CREATE UNIQUE INDEX IF NOT EXISTS cdrrow_start_utc_account_record_key ON {table} (start_utc, account, record_key)"
    )


MODELS: list[type[peewee.Model]] = [CdrRow, CdrFile, BillingAccount, SubscriptionRow, DocumentCounter, InvoiceRow]
MIGRATIONS = [
    Migration("charges-0001-cdrs", create_tables(CdrRow, CdrFile)),
    Migration("charges-0002-records-by-time", _index_by_time),
    Migration("charges-0003-billing", _billing_tables),
]
