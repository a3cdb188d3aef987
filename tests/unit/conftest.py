"""The unit tests' database: SQLite by default, or a real PostgreSQL server.

The tests open their databases the way LiveCall does: ``App(settings).database()`` on an SQLite
file in the test's ``tmp_path`` (``open_database("sqlite:///...")``), or a CLI run in a child
process. With ``LIVECALL_TEST_DATABASE_URL`` set to a PostgreSQL URL (``scripts/postgres start
DIR`` prints one), every test gets a fresh PostgreSQL database instead: each SQLite URL a test
opens is mapped to a database of its own (copied from a migrated template, so it costs tens of
milliseconds), and ``LIVECALL_DATABASE_URL`` names the first one for the CLI processes the test
starts. Child processes whose environment drops ``LIVECALL_*`` (protection_data.cli_env) or that
build ``Settings`` themselves get the same mapping through a ``sitecustomize`` on PYTHONPATH that
reads it from the file in ``PYTEST_LIVECALL_DB_MAP``. The databases are dropped after the test.

Tests whose own code reaches into SQLite (the file, ``sqlite3``, SQLite's SQL) are listed in
:data:`SQLITE_ONLY` with why, and skipped on PostgreSQL; the code they test runs on both.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from livecall_ari import storage
from livecall_ari.storage import database as storage_database

PG_URL = os.environ.get("LIVECALL_TEST_DATABASE_URL", "")
_TEMPLATE = "livecall_test_template"
_names = itertools.count(1)


# Test (node id without parameters) -> why it cannot run on PostgreSQL as written.
SQLITE_ONLY = {
    "test_charges_store.py::test_bad_lines_are_reported_with_file_and_line_and_skipped":
        "the test's own SQL uses SQLite's '?' placeholder",
    "test_charges_store.py::test_cli_import_killed_halfway_and_re_run":
        "the test watches the child's progress through sqlite3 on the livecall.db file",
    "test_charges_store.py::test_the_old_index_is_replaced_and_rows_are_kept":
        "the test rebuilds the old index and reads it back with SQLite's SQL",
    "test_portal_web.py::test_the_call_search_walks_an_index_for_each_filter":
        "the test reads SQLite's EXPLAIN QUERY PLAN",
    "test_protection_erasure.py::test_the_database_file_itself_keeps_no_copy":
        "the test reads the bytes of the SQLite file (secure_delete, WAL checkpoint)",
    "test_protection_audit.py::": "the test tampers with the trail through sqlite3 on the livecall.db file",
    "test_private_files.py::test_what_livecall_writes_of_people_is_private_whatever_the_umask":
        "the test checks the mode of the SQLite database file among the others",
    "test_private_files.py::test_the_doctor_warns_about_a_data_folder_others_can_read":
        "the test opens the SQLite database file to others",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not PG_URL:
        return
    for item in items:
        test = item.nodeid.split("/")[-1].split("[")[0]
        for name, reason in SQLITE_ONLY.items():
            if test == name or (name.endswith("::") and test.startswith(name) and "tamper" in _source(item)):
                item.add_marker(pytest.mark.skip(reason=f"on PostgreSQL: {reason}"))


def _source(item: pytest.Item) -> str:
    import inspect

    function = getattr(item, "function", None)
    return inspect.getsource(function) if function is not None else ""


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class _Server:
    """An admin connection to the PostgreSQL server, for creating and dropping test databases."""

    def __init__(self, url: str) -> None:
        import psycopg2

        if not url.startswith(("postgresql://", "postgres://")):
            raise pytest.UsageError(f"LIVECALL_TEST_DATABASE_URL must be a postgresql:// URL, got {url!r}")
        self.url = url
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True
        self.prefix = f"livecall_t{os.getpid()}_"
        self.folder = Path(".")
        self._execute(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)")
        self._execute(f"CREATE DATABASE {_TEMPLATE}")
        # Migrated once; every test's database is a copy (CREATE DATABASE ... TEMPLATE).
        db = _ORIGINAL_OPEN(_with_database(url, _TEMPLATE))
        db.close()

    def _execute(self, sql: str) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(sql)

    def create(self) -> str:
        name = f"{self.prefix}{next(_names)}"
        self._execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
        return name

    def drop(self, name: str) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def url_of(self, name: str) -> str:
        return _with_database(self.url, name)

    def close(self) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)")
        self.conn.close()


_ORIGINAL_OPEN: Callable[[str], Any] = storage_database.open_database
_MAP_VARIABLE = "PYTEST_LIVECALL_DB_MAP"
# Imported by every Python child process of the run (PYTHONPATH): the same SQLite-to-PostgreSQL
# mapping as the test's own process, read from the file the test keeps up to date.
_SITECUSTOMIZE = """
import json, os
_map = os.environ.get("PYTEST_LIVECALL_DB_MAP")
if _map:
    from livecall_ari import storage
    from livecall_ari.storage import database

    _original = database.open_database

    def open_database(url):
        if url.startswith("sqlite:///"):
            with open(_map) as f:
                state = json.load(f)
            url = state["map"].get(url) or state["first"] or url
        return _original(url)

    database.open_database = storage.open_database = open_database
"""


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[_Server | None]:
    if not PG_URL:
        yield None
        return
    server = _Server(PG_URL)
    with tempfile.TemporaryDirectory(prefix="livecall-pg-tests-") as folder:
        server.folder = Path(folder)
        (server.folder / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([folder] + ([saved] if saved else []))
        try:
            yield server
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
            server.close()


class _TestDatabases:
    """One test's databases: each distinct SQLite URL it opens gets a PostgreSQL database."""

    def __init__(self, server: _Server, map_file: Path) -> None:
        self.server = server
        self.map_file = map_file
        self.by_sqlite_url: dict[str, str] = {}
        self.names: list[str] = []
        self.first: str | None = None
        self._publish()

    def _publish(self) -> None:
        first = self.server.url_of(self.first) if self.first else None
        self.map_file.write_text(json.dumps({"first": first, "map": self.by_sqlite_url}))

    def new(self) -> str:
        name = self.server.create()
        self.names.append(name)
        if self.first is None:
            self.first = name
        self._publish()
        return self.server.url_of(name)

    def open(self, url: str) -> Any:
        if url.startswith("sqlite:///"):
            if url not in self.by_sqlite_url:
                unused = self.first is not None and not self.by_sqlite_url and len(self.names) == 1
                self.by_sqlite_url[url] = self.server.url_of(self.names[0]) if unused else self.new()
                self._publish()
            url = self.by_sqlite_url[url]
        return _ORIGINAL_OPEN(url)

    def drop_all(self) -> None:
        for name in self.names:
            self.server.drop(name)


@pytest.fixture(autouse=True)
def _database_backend(request: pytest.FixtureRequest, _postgres_server: _Server | None,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if _postgres_server is None:
        yield
        return
    map_file = _postgres_server.folder / f"map-{next(_names)}.json"
    monkeypatch.setenv(_MAP_VARIABLE, str(map_file))
    dbs = _TestDatabases(_postgres_server, map_file)
    if "tmp_path" in request.fixturenames:
        # Child processes (CLI runs) read LIVECALL_DATABASE_URL; the test's own first SQLite URL
        # maps to the same database.
        monkeypatch.setenv("LIVECALL_DATABASE_URL", dbs.new())
    targets = [storage_database, storage] + [
        m for name, m in list(sys.modules.items()) if name.startswith("tests.") and getattr(m, "open_database", None) is _ORIGINAL_OPEN
    ]
    for module in targets:
        monkeypatch.setattr(module, "open_database", dbs.open)
    try:
        yield
    finally:
        _close_bound_database()
        dbs.drop_all()
        map_file.unlink(missing_ok=True)


def _close_bound_database() -> None:
    from livecall_ari.storage.migrations import all_models

    for model in all_models():
        db = model._meta.database
        if db is not None and not db.is_closed():
            db.close()
