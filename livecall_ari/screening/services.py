"""Screening adapter: builds the Decider the gate uses, and keeps its lists current.

``livecall serve`` lives for weeks while the CLI, in other processes, imports lists and records
objections and consents. Every such write bumps ``screening_state.revision`` (models.py) and,
once committed, publishes it in the lists directory's ``revision`` file (revision.py). On each
call the decider compares that mapped 8-byte value with the last one it saw (well under 1 µs);
when it moved, it reads the revision from the database and fetches only the changed rows
(``revision > last``) and any new list version. So the next call after a CLI write sees it.
At least once a second it also asks SQLite for ``PRAGMA data_version`` (moves when another
connection commits), so a writer that died between commit and publish is caught up too.

On any other database (PostgreSQL) the writer may be another host: a second PBX's service, its
CLI or portal, whose revision file is on that host and never reaches this one. So there the
decider reads the revision from the database on every call (one indexed single-row SELECT,
well under a millisecond on a local server): an objection committed anywhere is in force for
the very next call, on every PBX.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import peewee

from livecall_ari import config
from livecall_ari.gate.core import CallAttempt, Decision
from livecall_ari.screening.core import Consent, InMemoryRecords, NumberList, Screener, ScreeningLists, ScreeningPolicy
from livecall_ari.screening.hours import BankHolidays, CallingHours
from livecall_ari.screening.lists import LIST_NAMES, ListFiles
from livecall_ari.screening.numbers import NumberParser
from livecall_ari.screening.store import ScreeningStore

if TYPE_CHECKING:
    from livecall_ari.app import App
    from livecall_ari.protection.services import SuppressionView

log = logging.getLogger("livecall.screening")


class _ChangeProbe(Protocol):
    def data_version(self) -> int: ...

    def revision(self) -> int: ...


class _SqliteProbe:
    """A private read-only connection: its data_version moves when anyone else commits."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    def data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def revision(self) -> int:
        row = self._conn.execute("SELECT revision FROM screening_state WHERE id = 1").fetchone()
        return int(row[0]) if row else 0


class _QueryProbe:
    """Any other database: no cheap change signal (and writers on other hosts publish to
    their own revision file), so the revision is read every call."""

    def __init__(self, store: ScreeningStore) -> None:
        self._store = store
        self._tick = 0

    def data_version(self) -> int:
        self._tick += 1
        return self._tick

    def revision(self) -> int:
        return self._store.revision()


class LiveLists:
    """The lists and records as of the latest committed change, for a long-running process."""

    def __init__(self, db: peewee.Database, files: ListFiles, recheck_seconds: float = 1.0) -> None:
        self._store = ScreeningStore(db)
        self._files = files
        self._signal = files.revision_file
        self._lock = threading.Lock()
        self._probe: _ChangeProbe = (
            _SqliteProbe(str(db.database))
            if isinstance(db, peewee.SqliteDatabase) and db.database not in ("", ":memory:")
            else _QueryProbe(self._store)
        )
        # Only SQLite's writers are all on this host and announce themselves in the file.
        self._recheck_seconds = recheck_seconds if isinstance(self._probe, _SqliteProbe) else 0.0
        self._next_check = 0.0
        self._published = -1
        self._data_version: int | None = None
        self._revision = -1
        self._records = InMemoryRecords.empty()
        self._versions: dict[str, int] = {}
        self._lists: dict[str, NumberList | None] = {name: None for name in LIST_NAMES}
        self._view = ScreeningLists(None, None, self._records)
        self.current()

    def current(self) -> ScreeningLists:
        """The view to decide against; refreshed first if anything changed since the last call."""
        with self._lock:
            published = self._signal.read()
            now = time.monotonic()
            if published != self._published or now >= self._next_check:
                self._next_check = now + self._recheck_seconds
                self._check(published)
            return self._view

    def _check(self, published: int) -> None:
        version = self._probe.data_version()
        if version == self._data_version and published == self._published:
            return
        self._data_version = version
        revision = self._probe.revision()
        if revision != self._revision:
            self._refresh(revision)
        # A revision announced before its commit is visible is looked for again next call.
        if revision >= published:
            self._published = published

    def _refresh(self, revision: int) -> None:
        since = self._revision
        for objection, in_force in self._store.objections_since(since):
            key = (objection.organisation, objection.number)
            if in_force:
                self._records.objections[key] = objection
            elif (held := self._records.objections.get(key)) is not None and held.id == objection.id:
                del self._records.objections[key]
        for consent in self._store.consents_since(since):
            self._keep_consent(consent)
        for name, row in self._store.current_versions().items():
            if self._versions.get(name) == int(row.id):
                continue
            self._versions[name] = int(row.id)
            try:
                self._lists[name] = self._files.open(row)
            except (OSError, ValueError) as exc:
                # Fail closed: with no list the rules block marketing calls as stale_list.
                log.error("cannot open %s version %s (%s); marketing calls are blocked", name, row.id, exc)
                self._lists[name] = None
        self._revision = revision
        self._view = ScreeningLists(self._lists["tps"], self._lists["ctps"], self._records)

    def _keep_consent(self, consent: Consent) -> None:
        """Hold the newest consent row per number (withdrawn or not: the rules read both)."""
        key = (consent.organisation, consent.number)
        held = self._records.consents.get(key)
        if held is None or consent.id >= held.id:
            self._records.consents[key] = consent


@dataclass
class ScreeningDecider:
    """The gate's Decider: the pure rules applied to the live lists."""

    screener: Screener
    lists: LiveLists
    # Data protection hook (issue 7): numbers erased on request stay blocked as `objection`
    # for marketing and claims calls, through their keyed hash (protection/services.py).
    suppression: "SuppressionView | None" = None

    def decide(self, attempt: CallAttempt) -> Decision:
        view = self.lists.current()
        if self.suppression is not None:
            view = self.suppression.apply(view)
        return self.screener.screen(attempt, view)


def lists_directory(settings: config.Settings) -> Path:
    return Path(settings.screening.lists_dir) if settings.screening.lists_dir else settings.data_path() / "lists"


def policy_from_settings(settings: config.Settings) -> ScreeningPolicy:
    """The rules' parameters from ``[screening]``; a bad value is a ConfigError naming it."""
    s = settings.screening
    where = f"{settings.path}: " if settings.path is not None else ""
    try:
        hours = CallingHours.from_settings(s.calling_days, s.calling_start, s.calling_end, s.timezone)
        holidays = BankHolidays(s.nation)
    except ValueError as exc:
        raise config.ConfigError(f"{where}{exc}") from None
    if s.max_list_age_days < 0:
        raise config.ConfigError(f"{where}[screening] max_list_age_days: must not be negative, got {s.max_list_age_days}")
    return ScreeningPolicy(hours, holidays, s.max_list_age_days)


def list_files(app: "App") -> ListFiles:
    settings = app.settings
    return ListFiles(app.database(), lists_directory(settings), settings.screening.max_bad_lines,
                     max_shrink_percent=settings.screening.max_shrink_percent)


def build_screener(settings: config.Settings) -> Screener:
    return Screener(policy_from_settings(settings), NumberParser(settings.gate.outside_line_prefix))


def build_decider(app: "App") -> ScreeningDecider:
    """The screening Decider for ``app``: its settings, its database, its lists directory."""
    from livecall_ari.protection.services import suppression_view  # data protection hook (issue 7)

    return ScreeningDecider(build_screener(app.settings), LiveLists(app.database(), list_files(app)), suppression_view(app))
