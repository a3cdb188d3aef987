"""What data protection stores: the audit trail, lawful-basis changes, subject access requests,
erasure jobs and the numbers they suppress, legal holds, retention runs and the breach register.

No table here holds an erased number: suppression and erasure jobs keep only its keyed hash
(HMAC with a key kept outside the database, see crypto.py). Times are naive UTC, except the
audit trail's, which is ISO-8601 text exactly as hashed.
"""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration, create_tables


class AuditEntry(peewee.Model):
    id = peewee.AutoField()
    seq = peewee.BigIntegerField(unique=True)
    at = peewee.CharField()  # ISO-8601 UTC with microseconds, as hashed
    actor = peewee.CharField()
    action = peewee.CharField(index=True)  # e.g. recording.play, objection.add, dsar.export
    subject = peewee.TextField(index=True)  # e.g. recording:12, number:+442079460018, call:1700000000.1
    details = peewee.TextField(default="{}")  # canonical JSON
    salt = peewee.CharField(default="")  # emptied when the entry is redacted by an erasure
    content_hash = peewee.CharField()
    prev_hash = peewee.CharField()
    entry_hash = peewee.CharField()
    redacted = peewee.BooleanField(default=False)
    mac = peewee.CharField(default="")  # keyed MAC of entry_hash (anchors.py); empty before the key existed
    # Whose service wrote it (several organisations' services may share a database): what the
    # portal filters by. Not part of the hashed content; "" for entries from before the column.
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "audit_log"


class AuditHead(peewee.Model):
    """The newest entry's sequence and hash, written with it: a cut tail shows."""

    id = peewee.IntegerField(primary_key=True)
    seq = peewee.BigIntegerField()
    entry_hash = peewee.CharField()
    mac = peewee.CharField(default="")  # keyed MAC of (seq, entry_hash): a writer without the key cannot move it

    class Meta:
        table_name = "audit_head"


class CallLawfulBasis(peewee.Model):
    id = peewee.AutoField()
    """A call's lawful basis when someone changed it from the default of its purpose."""

    call_id = peewee.CharField(unique=True)
    basis = peewee.CharField()
    reason = peewee.TextField()
    set_by = peewee.CharField()
    set_at = peewee.DateTimeField()

    class Meta:
        table_name = "protection_call_bases"


class LawfulBasisChange(peewee.Model):
    id = peewee.AutoField()
    kind = peewee.CharField()  # "call" or "recording"
    target = peewee.CharField(index=True)  # call id or recording id
    old_basis = peewee.CharField()
    new_basis = peewee.CharField()
    reason = peewee.TextField()
    changed_by = peewee.CharField()
    changed_at = peewee.DateTimeField()

    class Meta:
        table_name = "protection_basis_changes"


class DsarRequest(peewee.Model):
    id = peewee.AutoField()
    number = peewee.CharField(index=True)  # E.164 (pseudonymised if the number is later erased)
    received_at = peewee.DateTimeField()
    due_on = peewee.DateField()
    status = peewee.CharField(default="open")  # open, exported, closed
    logged_by = peewee.CharField()
    exported_at = peewee.DateTimeField(null=True)
    export_file = peewee.TextField(null=True)
    export_sha256 = peewee.CharField(null=True)
    # [organisation] id; "" for requests from before the column
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "protection_dsar_requests"


class Suppression(peewee.Model):
    id = peewee.AutoField()
    """An erased number, as its keyed hash: screening blocks it for marketing and claims calls."""

    number_hash = peewee.CharField(unique=True)
    key_fingerprint = peewee.CharField()  # which erasure key made the hash
    job = peewee.IntegerField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "protection_suppressions"


class ErasureJob(peewee.Model):
    id = peewee.AutoField()
    request_hash = peewee.CharField(unique=True)  # the number's keyed hash
    pseudonym = peewee.CharField()
    state = peewee.CharField(default="running")  # running, done
    steps_done = peewee.TextField(default="[]")  # JSON list of step names
    counts = peewee.TextField(default="{}")  # JSON: step -> {what: count}
    requested_by = peewee.CharField()
    started_at = peewee.DateTimeField()
    finished_at = peewee.DateTimeField(null=True)
    certificate = peewee.TextField(null=True)  # path of the certificate file
    certificate_sha256 = peewee.CharField(null=True)
    # [organisation] id of the service that wrote it; "" for rows from before the column
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "protection_erasure_jobs"


class LegalHoldRecord(peewee.Model):
    id = peewee.AutoField()
    kind = peewee.CharField()  # number, call or recording
    target = peewee.CharField(index=True)
    reason = peewee.TextField()
    placed_by = peewee.CharField()
    placed_at = peewee.DateTimeField()
    released_at = peewee.DateTimeField(null=True)
    released_by = peewee.CharField(null=True)
    # [organisation] id of the service that wrote it; "" for rows from before the column
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "protection_legal_holds"


class RetentionRun(peewee.Model):
    id = peewee.AutoField()
    started_at = peewee.DateTimeField()
    finished_at = peewee.DateTimeField(null=True)
    dry_run = peewee.BooleanField()
    deleted = peewee.TextField(default="{}")  # JSON: kind -> count
    held = peewee.IntegerField(default=0)
    actor = peewee.CharField()
    # [organisation] id of the service that wrote it; "" for rows from before the column
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "protection_retention_runs"


class Breach(peewee.Model):
    id = peewee.AutoField()
    title = peewee.CharField()
    aware_at = peewee.DateTimeField()  # when the organisation became aware: the 72 hours start
    occurred_at = peewee.DateTimeField(null=True)
    nature = peewee.TextField()  # what happened
    categories = peewee.TextField(default="")  # categories of data and of people
    subjects = peewee.IntegerField(default=0)  # approximate number of people
    records = peewee.IntegerField(default=0)  # approximate number of records
    consequences = peewee.TextField(default="")
    measures = peewee.TextField(default="")  # taken or proposed
    notifiable = peewee.BooleanField(default=True)  # False: unlikely to result in a risk (art. 33(1))
    reported_at = peewee.DateTimeField(null=True)
    ico_reference = peewee.CharField(default="")
    recorded_by = peewee.CharField()
    recorded_at = peewee.DateTimeField()
    # [organisation] id; "" for breaches from before the column
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "protection_breaches"


MODELS: list[type[peewee.Model]] = [
    AuditEntry, AuditHead, CallLawfulBasis, LawfulBasisChange, DsarRequest, Suppression, ErasureJob,
    LegalHoldRecord, RetentionRun, Breach,
]
def _audit_macs(db: peewee.Database) -> None:
    """The MAC columns of the audit trail (a database made by protection-0001 today has them)."""
    from playhouse.migrate import SchemaMigrator, migrate

    migrator = SchemaMigrator.from_database(db)
    for table in ("audit_log", "audit_head"):
        if "mac" not in {c.name for c in db.get_columns(table)}:
            migrate(migrator.add_column(table, "mac", peewee.CharField(default="")))


def _organisations(db: peewee.Database) -> None:
    """Which organisation each audit entry, subject access request and breach belongs to."""
    from livecall_ari.storage.migrations import add_column_once

    for table in ("audit_log", "protection_dsar_requests", "protection_breaches"):
        add_column_once(db, table, "organisation", peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")]))


def _more_organisations(db: peewee.Database) -> None:
    """Which organisation each erasure, legal hold and retention run belongs to."""
    from livecall_ari.storage.migrations import add_column_once

    for table in ("protection_erasure_jobs", "protection_legal_holds", "protection_retention_runs"):
        add_column_once(db, table, "organisation", peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")]))


MIGRATIONS: list[Migration] = [
    Migration("protection-0001", create_tables(*MODELS)),
    Migration("protection-0002-audit-macs", _audit_macs),
    Migration("protection-0003-organisations", _organisations),
    Migration("protection-0004-organisations", _more_organisations),
]
