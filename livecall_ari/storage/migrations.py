"""Ordered schema migrations, collected from every capability's ``models.py``.

Each capability declares ``MODELS`` (its peewee models) and ``MIGRATIONS`` (a list of
:class:`Migration`). A migration runs once, inside a transaction, and is remembered in the
``schema_migrations`` table; schema changes are made by adding a migration, never by dropping
tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import peewee


@dataclass(frozen=True)
class Migration:
    id: str
    apply: Callable[[peewee.Database], None]


def create_tables(*models: type[peewee.Model]) -> Callable[[peewee.Database], None]:
    """A migration step that creates the given tables (and their indexes) as first declared."""

    def step(db: peewee.Database) -> None:
        db.create_tables(list(models))

    return step


def add_column_once(db: peewee.Database, table: str, name: str, field: peewee.Field) -> None:
    """Add a column to an existing table unless it is there already (a table created after the
    model gained the field has it), on SQLite and PostgreSQL alike."""
    from playhouse.migrate import SchemaMigrator, migrate as run

    if name not in {c.name for c in db.get_columns(table)}:
        run(SchemaMigrator.from_database(db).add_column(table, name, field))


def _capabilities() -> list[ModuleType]:
    # Imported here, not at module level, so a capability's models can import this module.
    from livecall_ari.alarms import models as alarms
    from livecall_ari.charges import models as charges
    from livecall_ari.gate import models as gate
    from livecall_ari.objects import models as objects
    from livecall_ari.portal import models as portal
    from livecall_ari.protection import models as protection
    from livecall_ari.recording import models as recording
    from livecall_ari.screening import models as screening
    from livecall_ari.supervision import models as supervision

    return [gate, screening, charges, recording, objects, supervision, protection, portal, alarms]


def all_models() -> list[type[peewee.Model]]:
    return [m for cap in _capabilities() for m in cap.MODELS]


class _SchemaMigration(peewee.Model):
    id = peewee.CharField(primary_key=True)
    applied_at = peewee.DateTimeField()

    class Meta:
        table_name = "schema_migrations"


def migrate(db: peewee.Database) -> list[str]:
    """Apply every migration not yet applied; return the ids applied now."""
    applied: list[str] = []
    with db.bind_ctx([_SchemaMigration]):
        db.create_tables([_SchemaMigration])
        done = {row.id for row in _SchemaMigration.select()}
        for cap in _capabilities():
            for migration in cap.MIGRATIONS:
                if migration.id in done:
                    continue
                with db.atomic():
                    migration.apply(db)
                    _SchemaMigration.create(id=migration.id, applied_at=dt.datetime.now(dt.timezone.utc))
                applied.append(migration.id)
    return applied
