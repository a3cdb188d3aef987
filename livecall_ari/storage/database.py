"""Open the database named by a URL: ``sqlite:///path`` (embedded) or ``postgresql://...``.

Models are declared without a database and bound to the one opened here, so nothing holds a
module-level connection and tests open as many throwaway databases as they like.
"""

from __future__ import annotations

from pathlib import Path

import peewee
from playhouse.db_url import connect, parse
from playhouse.shortcuts import ReconnectMixin

# SQLite: WAL lets the CLI import lists while `livecall serve` reads them; a busy timeout makes
# a briefly locked database wait instead of failing a call.
_SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
}


class ReconnectingPostgresqlDatabase(ReconnectMixin, peewee.PostgresqlDatabase):  # type: ignore[misc]
    """PostgreSQL that opens a new connection when the server dropped the old one (restarted,
    failed over): without it every statement after a restart fails with "connection already
    closed" until `livecall serve` is restarted. A statement outside a transaction is retried
    once on the new connection; while the server is still down it fails (the gate refuses the
    call) and the next one tries again."""

    reconnect_errors = (
        (peewee.OperationalError, "server closed the connection"),
        (peewee.OperationalError, "terminating connection"),
        (peewee.InterfaceError, "connection already closed"),
    )


def open_database(url: str) -> peewee.Database:
    """Connect to ``url``, create the SQLite file's folder if needed, bind every model, migrate."""
    from livecall_ari.storage.migrations import all_models, migrate

    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            from livecall_ari.storage.private import private_dir, private_file

            # SQLite gives the -wal and -shm files the database file's mode: 0600 for all three.
            private_dir(Path(path).parent)
            if not Path(path).exists():
                private_file(Path(path))
        db: peewee.Database = peewee.SqliteDatabase(path, pragmas=_SQLITE_PRAGMAS, check_same_thread=False)
    elif url.startswith(("postgres://", "postgresql://")):
        db = ReconnectingPostgresqlDatabase(**parse(url))
    else:
        db = connect(url)
    db.connect(reuse_if_open=True)
    db.bind(all_models())
    migrate(db)
    return db
