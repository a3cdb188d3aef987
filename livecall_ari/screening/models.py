"""What screening stores: list versions, objections, consents, and a change counter.

Numbers are stored as the integer of their E.164 digits (``+442079460018`` -> 442079460018).
Every write to these tables bumps ``screening_state.revision`` in the same transaction and
stamps the changed row with it, so the long-running decider can fetch just what changed.
"""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration


class ScreeningState(peewee.Model):
    id = peewee.IntegerField(primary_key=True)
    revision = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "screening_state"


class ListVersion(peewee.Model):
    """One import of the TPS or CTPS; the newest row of a list names the file in force."""

    id = peewee.AutoField()
    list_name = peewee.CharField()  # "tps" or "ctps"
    file_name = peewee.CharField()  # the list file under the lists directory
    kind = peewee.CharField()  # "full" or "delta"
    source = peewee.TextField()  # the file imported, as given
    record_format = peewee.CharField(default="")  # "with spaces", "without spaces", "mixed"
    snapshot_date = peewee.DateField()
    imported_at = peewee.DateTimeField()  # UTC
    imported_by = peewee.CharField(default="")
    count = peewee.BigIntegerField()
    added = peewee.BigIntegerField(default=0)
    removed = peewee.BigIntegerField(default=0)
    bad_lines = peewee.IntegerField(default=0)
    revision = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "screening_list_versions"
        indexes = ((("list_name", "id"), False),)


class ObjectionRecord(peewee.Model):
    id = peewee.AutoField()
    organisation = peewee.CharField()
    number = peewee.BigIntegerField()
    recorded_at = peewee.DateTimeField()  # UTC
    recorded_by = peewee.CharField()
    reason = peewee.TextField(default="")
    removed_at = peewee.DateTimeField(null=True)
    removed_by = peewee.CharField(null=True)
    revision = peewee.BigIntegerField(index=True)

    class Meta:
        table_name = "screening_objections"
        indexes = ((("organisation", "number"), False),)


class ConsentRecord(peewee.Model):
    id = peewee.AutoField()
    organisation = peewee.CharField()
    number = peewee.BigIntegerField()
    given_at = peewee.DateTimeField()  # UTC
    recorded_by = peewee.CharField()
    evidence = peewee.TextField()
    scope = peewee.CharField(default="marketing")  # "marketing", "claims", "pensions" or "all"
    # "consent", or "relationship": an existing client relationship (pensions, PECR reg 21B(2)).
    basis = peewee.CharField(default="consent")
    withdrawn_at = peewee.DateTimeField(null=True)
    withdrawn_by = peewee.CharField(null=True)
    withdrawal_reason = peewee.TextField(null=True)
    revision = peewee.BigIntegerField(index=True)

    class Meta:
        table_name = "screening_consents"
        indexes = ((("organisation", "number"), False),)


def _create(db: peewee.Database) -> None:
    db.create_tables([ScreeningState, ListVersion, ObjectionRecord, ConsentRecord])
    with db.bind_ctx([ScreeningState]):
        ScreeningState.insert(id=1, revision=0).on_conflict_ignore().execute()


def _consent_basis(db: peewee.Database) -> None:
    """The consents' basis column (a database made by screening-0001 today has it already)."""
    from playhouse.migrate import SchemaMigrator, migrate

    if "basis" not in {c.name for c in db.get_columns(ConsentRecord._meta.table_name)}:
        migrate(SchemaMigrator.from_database(db).add_column(ConsentRecord._meta.table_name, "basis",
                                                             peewee.CharField(default="consent")))


MODELS: list[type[peewee.Model]] = [ScreeningState, ListVersion, ObjectionRecord, ConsentRecord]
MIGRATIONS: list[Migration] = [
    Migration("screening-0001-lists-objections-consents", _create),
    Migration("screening-0002-consent-basis", _consent_basis),
]
