"""Charges, wired: builds the parser, classifier and tariff from the settings, imports and
follows CDR files, and reads an account's calls back for rating."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import peewee

from livecall_ari.charges import daily
from livecall_ari.charges.cdr import LocalTimes
from livecall_ari.charges.chunks import cores
from livecall_ari.charges.classify import NumberClassifier
from livecall_ari.charges.models import CdrRow
from livecall_ari.charges.rating import BILLING_ZONE, Call, Rater, Statement, statement_window
from livecall_ari.charges.store import BadLine, CdrFollower, CdrIngest, Checkpoint, IngestResult, import_file
from livecall_ari.charges.tariff import PLANS, Tariff, load_tariff
from livecall_ari.config import ConfigError

if TYPE_CHECKING:
    from livecall_ari.app import App

log = logging.getLogger("livecall.charges")


def cdr_ingest(app: App) -> CdrIngest:
    """How this installation's CDR lines become rows (zone, classifier, default account)."""
    charges = app.settings.charges
    try:
        zone = ZoneInfo(charges.cdr_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[charges] cdr_timezone: unknown time zone {charges.cdr_timezone!r}") from None
    classifier = NumberClassifier(app.settings.gate.outside_line_prefix, charges.internal_max_digits)
    return CdrIngest(LocalTimes(zone), classifier, charges.default_account or "default")


def tariff(app: App) -> Tariff:
    return load_tariff(app.settings.charges.tariff_file or None)


def plan_or_default(app: App, plan: str | None) -> str:
    chosen = plan or app.settings.charges.default_plan
    if chosen not in PLANS:
        raise ConfigError(f"[charges] default_plan: unknown plan {chosen!r} (use {' or '.join(PLANS)})")
    return chosen


def import_cdrs(
    app: App,
    path: Path,
    *,
    restart: bool = False,
    on_bad: Callable[[BadLine], None] | None = None,
    before_commit: Callable[[Checkpoint], None] | None = None,
    batch_size: int | None = None,
) -> IngestResult:
    ingest = cdr_ingest(app)
    if batch_size:
        ingest.batch_size = batch_size
    return import_file(app.database(), path, ingest, restart=restart, on_bad=on_bad, before_commit=before_commit,
                       pbx=app.settings.system_name())


_CALL_COLUMNS = "start_utc, number, number_class, country, billsec, uniqueid"


def account_calls(db: peewee.Database, account: str, start_utc: int, end_utc: int) -> Iterator[Call]:
    """An account's calls with start in [start_utc, end_utc), in start order, streamed (as
    plain tuples in :class:`Call`'s order, which the rater takes as they are)."""
    table = CdrRow._meta.table_name
    p = db.param
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        f"SELECT {_CALL_COLUMNS} FROM {table} WHERE start_utc >= {p} AND start_utc < {p} AND account = {p} "
        "ORDER BY start_utc, account, record_key",
        (start_utc, end_utc, account),
    )
    return iter(cursor)


def answered_calls_by_account(
    db: peewee.Database, start_utc: int, end_utc: int, *, numbers: bool = True, batch: int = 20_000
) -> Iterator[dict[str, list[tuple[int, str, str, str, int, str]]]]:
    """Every account's answered calls with start in [start_utc, end_utc), in start order, as
    batches of {account: calls}: one pass over the table for all statements. Calls with
    billsec 0 are left out (rating skips them); without ``numbers``, number and uniqueid are
    left empty (a statement without lines does not show them)."""
    table = CdrRow._meta.table_name
    p = db.param
    columns = _CALL_COLUMNS if numbers else "start_utc, '', number_class, country, billsec, ''"
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        f"SELECT account, {columns} FROM {table} WHERE start_utc >= {p} AND start_utc < {p} AND billsec > 0 "
        "ORDER BY start_utc, account, record_key",
        (start_utc, end_utc),
    )
    while rows := cursor.fetchmany(batch):
        by_account: dict[str, list[tuple[int, str, str, str, int, str]]] = {}
        for row in rows:
            calls = by_account.get(row[0])
            if calls is None:
                calls = by_account[row[0]] = []
            calls.append(row[1:])
        yield by_account


def accounts(db: peewee.Database) -> list[str]:
    table = CdrRow._meta.table_name
    cursor = db.execute_sql(f"SELECT DISTINCT account FROM {table} ORDER BY account")  # type: ignore[no-untyped-call]
    return [str(row[0]) for row in cursor]


def account_statement(
    app: App,
    account: str,
    first_day: dt.date,
    last_day: dt.date,
    plan: str | None = None,
    *,
    keep_lines: bool = True,
    rate_with: Tariff | None = None,
) -> Statement:
    """The account's statement for [first_day, last_day] (inclusive, Europe/London days)."""
    chosen = plan_or_default(app, plan)
    rater = Rater(rate_with or tariff(app), chosen, first_day, last_day, account, keep_lines)
    start, end = statement_window(chosen, first_day, last_day)
    rater.add_all(account_calls(app.database(), account, start, end))
    return rater.statement()


def all_statements(
    app: App,
    first_day: dt.date,
    last_day: dt.date,
    plan: str | None = None,
    *,
    keep_lines: bool = True,
    rate_with: Tariff | None = None,
) -> dict[str, Statement]:
    """Every account's statement for [first_day, last_day], the same as
    :func:`account_statement` account by account, from one pass over the calls."""
    chosen = plan_or_default(app, plan)
    rate_by = rate_with or tariff(app)
    db = app.database()
    raters = {a: Rater(rate_by, chosen, first_day, last_day, a, keep_lines) for a in accounts(db)}
    start, end = statement_window(chosen, first_day, last_day)
    sql = None
    if chosen == "daily" and not keep_lines:
        sql = daily.groups_sql(CdrRow._meta.table_name, db.param, BILLING_ZONE, rate_by.daily, start, end)
    if sql is not None:
        # Priced per group of alike calls, counted by the database (see daily.py).
        for account, day, number_class, country, increments, calls in _groups(db, sql, start, end):
            raters[account].add_group(daily.day_of(day), number_class, country, increments, calls)
        return {account: rater.statement() for account, rater in raters.items()}
    for by_account in answered_calls_by_account(db, start, end, numbers=keep_lines):
        for account, calls in by_account.items():
            raters[account].add_all(calls)
    return {account: rater.statement() for account, rater in raters.items()}


# Calls from which the grouping query is split over threads, one per core (SQLite and
# PostgreSQL both work a query without holding Python's lock).
_SPLIT_FROM_CALLS = 200_000
_FETCH = 5000


def _groups(db: peewee.Database, sql: str, start: int, end: int) -> Iterator[tuple[Any, ...]]:
    """The grouping query's rows over [start, end): on a big window from parts of about equal
    calls, each queried on its own thread and connection while this thread takes the rows.
    A group may come once from each of two parts (a day that straddles them): pricing groups
    adds up, so that is the same as once with both counts."""
    parts = _parts(db, start, end)
    if len(parts) == 1:
        yield from db.execute_sql(sql, parts[0])  # type: ignore[no-untyped-call]
        return
    rows: queue.Queue[list[tuple[Any, ...]] | BaseException | None] = queue.Queue(maxsize=2 * len(parts))
    stopping = threading.Event()

    def run(window: tuple[int, int]) -> None:
        try:
            cursor = db.execute_sql(sql, window)  # type: ignore[no-untyped-call]
            while not stopping.is_set() and (batch := cursor.fetchmany(_FETCH)):
                rows.put(batch)
            rows.put(None)
        except BaseException as exc:  # handed to the reader, who raises it
            rows.put(exc)
        finally:
            db.close()  # this worker thread's connection

    threads = [threading.Thread(target=run, args=(w,), name="livecall-rating", daemon=True) for w in parts]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            batch = rows.get()
            if batch is None:
                running -= 1
            elif isinstance(batch, BaseException):
                raise batch
            else:
                yield from batch
    finally:
        stopping.set()
        while any(t.is_alive() for t in threads):
            try:
                rows.get(timeout=0.1)  # let a worker blocked on a full queue see `stopping`
            except queue.Empty:
                pass


def _parts(db: peewee.Database, start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut where the calls in it are split about evenly, one part per core."""
    parts = cores()
    if parts < 2:
        return [(start, end)]
    table = CdrRow._meta.table_name
    p = db.param
    row = db.execute_sql(  # type: ignore[no-untyped-call]
        f"SELECT count(*), min(start_utc), max(start_utc) FROM {table} WHERE start_utc >= {p} AND start_utc < {p}", (start, end)
    ).fetchone()
    calls, first, last = row
    if not calls or calls < _SPLIT_FROM_CALLS:
        return [(start, end)]
    offsets = [
        db.execute_sql(  # type: ignore[no-untyped-call]
            f"SELECT start_utc FROM {table} WHERE start_utc >= {p} AND start_utc < {p} ORDER BY start_utc LIMIT 1 OFFSET {p}",
            (start, end, calls * i // parts),
        ).fetchone()[0]
        for i in range(1, parts)
    ]  # fmt: skip
    cuts = [start, *sorted(set(offsets)), end]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if a < b]


async def follow_cdrs(
    app: App,
    path: Path,
    stop: asyncio.Event,
    poll_interval: float = 1.0,
    on_batch: Callable[[list[tuple[int, str]]], object] | None = None,
) -> None:
    """Import the CDR file at ``path`` as it grows, until ``stop`` is set; for ``livecall serve``.

    Reads run on one worker thread (with its own database connection), so the event loop never
    waits on the disk. Each poll imports the lines appended since the last one, exactly once,
    through rotation and truncation (see :class:`CdrFollower`); bad lines are logged with file
    and line number. A missing file is waited for. ``on_batch`` sees each batch's records in
    the batch's transaction (the unscreened-call alarm's check, wired by the service).
    """
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="livecall-cdr")
    loop = asyncio.get_running_loop()
    db = app.database()

    def report(bad: BadLine) -> None:
        log.warning("bad CDR line skipped: %s", bad)

    follower = CdrFollower(db, path, cdr_ingest(app), on_bad=report, pbx=app.settings.system_name(), on_batch=on_batch)

    def poll() -> int:
        return sum(r.inserted for r in follower.poll())

    def finish() -> None:
        follower.close()
        if not db.is_closed():
            db.close()  # this thread's connection

    log.info("following CDRs in %s", path)
    try:
        while not stop.is_set():
            try:
                inserted = await loop.run_in_executor(executor, poll)
                if inserted:
                    log.info("%s: %d new CDRs", path, inserted)
            except Exception:
                log.exception("%s: reading CDRs failed; retrying", path)
            try:
                await asyncio.wait_for(stop.wait(), poll_interval)
            except TimeoutError:
                pass
        # One last read, so a record written just before the stop is not left for next time.
        try:
            await loop.run_in_executor(executor, poll)
        except Exception:
            log.exception("%s: reading CDRs failed", path)
    finally:
        await loop.run_in_executor(executor, finish)
        executor.shutdown(wait=True)
