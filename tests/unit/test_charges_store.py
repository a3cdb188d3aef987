"""Importing CDR files exactly once: twice, killed halfway, rotated, truncated, followed."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from livecall_ari.app import App
from livecall_ari.charges import services, store
from livecall_ari.charges.cdr import CdrRecord, master_fields
from livecall_ari.charges.store import BadLine
from livecall_ari.config import Settings
from tests.conftest import until

LONDON = ZoneInfo("Europe/London")
T0 = 1748768400  # 2025-06-01 10:00 BST


def record(i: int, billsec: int = 65, dst: str | None = None, account: str = "acc1") -> CdrRecord:
    start = T0 + i * 97
    return CdrRecord(
        account, "2001", dst or f"0770090{i % 10000:04d}", "livecall-agents", '"Agent" <2001>',
        f"PJSIP/2001-{i:08x}", f"PJSIP/trunk-{i:08x}", "Dial", "PJSIP/x@trunk,60",
        start, start + 5 if billsec else None, start + 5 + billsec, 5 + billsec, billsec,
        "ANSWERED" if billsec else "NO ANSWER", "DOCUMENTATION", f"{start}.{i}", "",
    )  # fmt: skip


def lines(records: list[CdrRecord]) -> str:
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in records:
        w.writerow(master_fields(r, LONDON))
    return out.getvalue()


def make_app(tmp_path: Path) -> App:
    return App(Settings(data_dir=str(tmp_path / "data")))


def count(app: App) -> int:
    return int(app.database().execute_sql("SELECT count(*) FROM cdr_records").fetchone()[0])


def keys(app: App) -> list[str]:
    return [r[0] for r in app.database().execute_sql("SELECT uniqueid FROM cdr_records ORDER BY uniqueid")]


@pytest.fixture
def app(tmp_path: Path) -> App:
    a = make_app(tmp_path)
    yield a
    a.close()


def test_the_same_file_imported_twice_counts_once(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(lines([record(i) for i in range(50)]))
    first = services.import_cdrs(app, path, batch_size=7)
    assert (first.lines, first.records, first.inserted) == (50, 50, 50)
    again = services.import_cdrs(app, path)
    assert (again.lines, again.inserted, again.resumed_at_line) == (0, 0, 50)
    restarted = services.import_cdrs(app, path, restart=True)
    assert (restarted.lines, restarted.inserted, restarted.duplicates) == (50, 0, 50)
    # A copy under another name (logrotate's Master.csv.1) adds nothing either.
    copy = tmp_path / "Master.csv.1"
    copy.write_bytes(path.read_bytes())
    assert services.import_cdrs(app, copy).inserted == 0
    assert count(app) == 50


def test_appended_lines_are_read_from_the_checkpoint(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(lines([record(i) for i in range(10)]))
    services.import_cdrs(app, path)
    with path.open("a") as f:
        f.write(lines([record(i) for i in range(10, 15)]))
    result = services.import_cdrs(app, path)
    assert (result.resumed_at_line, result.lines, result.inserted) == (10, 5, 5)
    assert count(app) == 15


def test_bad_lines_are_reported_with_file_and_line_and_skipped(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    good = lines([record(i) for i in range(4)]).splitlines(keepends=True)
    bad_time = good[3].replace("2025-06-01", "2025-13-01", 1)
    path.write_text(good[0] + "not,a,cdr\n" + good[1] + '"broken,"quote\n' + good[2] + "\n" + bad_time)
    seen: list[BadLine] = []
    result = services.import_cdrs(app, path, on_bad=seen.append)
    assert [str(b) for b in seen] == [
        f"{path}:2: expected 18 columns (Master.csv), 21 (newcdrcolumns) or 24 (LiveCall's cdr_custom), got 3",
        f"{path}:4: not a CSV line: ',' expected after '\"'",
        f"{path}:6: empty line",
        f"{path}:7: start: not a date and time: '2025-13-01 10:04:51'",
    ]
    assert (result.records, result.inserted, result.bad_count) == (3, 3, 4)
    row = app.database().execute_sql("SELECT line_no, source FROM cdr_records WHERE uniqueid = ?", (f"{T0 + 97}.1",))
    assert row.fetchone() == (3, str(path.resolve()))


def test_a_last_line_without_newline_is_left_for_the_next_import(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    text = lines([record(i) for i in range(3)])
    path.write_text(text[:-20])  # the writer is half way through line 3
    first = services.import_cdrs(app, path)
    assert (first.inserted, first.incomplete_line, first.bad_count) == (2, True, 0)
    path.write_text(text)
    second = services.import_cdrs(app, path)
    assert (second.inserted, second.resumed_at_line, second.incomplete_line) == (1, 2, False)


def test_classified_and_accounted_rows(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(lines([record(0, dst="02079460000", account=""), record(1, dst="2002")]))
    services.import_cdrs(app, path)
    rows = app.database().execute_sql("SELECT account, number, number_class FROM cdr_records ORDER BY id").fetchall()
    assert rows == [("default", "+442079460000", "landline"), ("acc1", "2002", "internal")]


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from livecall_ari.app import App
    from livecall_ari.charges import services
    from livecall_ari.config import Settings

    def die(checkpoint):
        # Inside the third batch's transaction: its rows are inserted, not yet committed.
        if checkpoint.line_no >= 300:
            os.kill(os.getpid(), signal.SIGKILL)

    app = App(Settings(data_dir=sys.argv[1]))
    services.import_cdrs(app, Path(sys.argv[2]), batch_size=100, before_commit=die)
    """
)


def test_killed_inside_a_transaction_and_re_run_counts_every_record_once(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    records = [record(i) for i in range(1000)]
    path.write_text(lines(records))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data"), str(path)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    app = make_app(tmp_path)
    try:
        assert count(app) == 200  # two committed batches; the third rolled back
        result = services.import_cdrs(app, path)
        assert (result.resumed_at_line, result.inserted) == (200, 800)
        assert keys(app) == sorted(r.uniqueid for r in records)
        restarted = services.import_cdrs(app, path, restart=True)
        assert restarted.inserted == 0 and count(app) == 1000
    finally:
        app.close()


def test_cli_import_killed_halfway_and_re_run(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    n = 200_000
    path.write_text(lines([record(i, billsec=i % 300) for i in range(n)]))
    env = dict(os.environ, LIVECALL_DATA_DIR=str(tmp_path / "data"), LIVECALL_CONFIG=str(tmp_path / "none.toml"))
    livecall = Path(sys.executable).with_name("livecall")
    db_path = tmp_path / "data" / "livecall.db"

    def committed() -> int:
        if not db_path.exists():
            return 0
        with sqlite3.connect(db_path, timeout=5) as con:
            try:
                return int(con.execute("SELECT count(*) FROM cdr_records").fetchone()[0])
            except sqlite3.OperationalError:
                return 0  # the table is not created yet

    proc = subprocess.Popen([str(livecall), "cdr", "import", "--batch-size", "500", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        until(lambda: committed() > 0, timeout=60, interval=0.005, what="the first committed batch")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    halfway = committed()
    assert 0 < halfway < n, "the import was not killed halfway"
    rerun = subprocess.run([str(livecall), "cdr", "import", "--json", str(path)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert committed() == n
    with sqlite3.connect(db_path) as con:
        assert con.execute("SELECT count(DISTINCT uniqueid) FROM cdr_records").fetchone()[0] == n


def test_follow_through_growth_rotation_and_truncation(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    batches = [[record(i) for i in range(k * 10, k * 10 + 10)] for k in range(6)]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(services.follow_cdrs(app, path, stop, poll_interval=0.02))

        async def wait_for(n: int) -> None:
            for _ in range(500):
                if count(app) >= n:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"timed out waiting for {n} records (have {count(app)})")

        await asyncio.sleep(0.05)  # the file does not exist yet: waited for
        path.write_text(lines(batches[0]))
        await wait_for(10)
        with path.open("a") as f:  # grows, with a half-written line
            text = lines(batches[1])
            f.write(text[:-30])
            f.flush()
            await asyncio.sleep(0.1)
            f.write(text[-30:])
        await wait_for(20)
        # logrotate (rename): two more lines reach the old file after our last read, then a new file.
        with path.open("a") as f:
            f.write(lines(batches[2]))
        os.rename(path, tmp_path / "Master.csv.1")
        path.write_text(lines(batches[3]))
        await wait_for(40)
        # copytruncate: the file is emptied in place and written again.
        with path.open("r+") as f:
            f.truncate(0)
        path.write_text(lines(batches[4] + batches[3]))  # batch 3 again: still counted once
        await wait_for(50)
        with path.open("a") as f:
            f.write(lines(batches[5]))
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert keys(app) == sorted(r.uniqueid for batch in batches for r in batch)


def rows(app: App) -> list[tuple[object, ...]]:
    return app.database().execute_sql(
        "SELECT account, start_utc, record_key, end_utc, duration, billsec, number, number_class, country, "
        "uniqueid, call_id, cdr_line, source, line_no FROM cdr_records ORDER BY line_no"
    ).fetchall()


def ingest_in_two_processes(app: App) -> store.CdrIngest:
    ingest = services.cdr_ingest(app)
    ingest.parallel_min_bytes = 0  # whatever the size
    ingest.batch_size = 64
    return ingest


def test_a_second_process_parses_to_the_same_rows_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    good = lines([record(i, billsec=i % 7, dst=("2002" if i % 11 == 0 else None)) for i in range(500)])
    path.write_text(good + "not,a,cdr\n" + good[:-40])  # a bad line, then copies and half a line
    here, there = make_app(tmp_path / "here"), make_app(tmp_path / "there")
    try:
        seen: list[BadLine] = []
        alone = services.import_cdrs(here, path)
        split = store.import_file(there.database(), path, ingest_in_two_processes(there), on_bad=seen.append)
        assert rows(here) == rows(there) and count(there) == 500
        assert (split.lines, split.records, split.inserted, split.bad_count, split.incomplete_line) == (
            alone.lines, alone.records, alone.inserted, alone.bad_count, True)  # fmt: skip
        assert [str(b) for b in seen] == [f"{path}:501: expected 18 columns (Master.csv), 21 (newcdrcolumns) or 24 (LiveCall's cdr_custom), got 3"]
        again = store.import_file(there.database(), path, ingest_in_two_processes(there), restart=True)
        assert again.inserted == 0 and count(there) == 500
    finally:
        here.close()
        there.close()


def test_without_the_second_process_the_import_carries_on_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(lines([record(i) for i in range(300)]))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    app = make_app(tmp_path)
    try:
        result = store.import_file(app.database(), path, ingest_in_two_processes(app))
        assert (result.inserted, count(app)) == (300, 300)
    finally:
        app.close()


CHILD_TWO_PROCESSES = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from livecall_ari.app import App
    from livecall_ari.charges import services, store
    from livecall_ari.config import Settings

    def die(checkpoint):
        if checkpoint.line_no >= 300:
            os.kill(os.getpid(), signal.SIGKILL)

    app = App(Settings(data_dir=sys.argv[1]))
    ingest = services.cdr_ingest(app)
    ingest.parallel_min_bytes, ingest.batch_size = 0, 100
    store.import_file(app.database(), Path(sys.argv[2]), ingest, before_commit=die)
    """
)


def test_killed_while_a_second_process_parses_and_re_run(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    records = [record(i) for i in range(1000)]
    path.write_text(lines(records))
    proc = subprocess.run([sys.executable, "-c", CHILD_TWO_PROCESSES, str(tmp_path / "data"), str(path)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    app = make_app(tmp_path)
    try:
        assert count(app) == 200
        result = store.import_file(app.database(), path, ingest_in_two_processes(app))
        assert (result.resumed_at_line, result.inserted) == (200, 800)
        assert keys(app) == sorted(r.uniqueid for r in records)
    finally:
        app.close()


def test_the_old_index_is_replaced_and_rows_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(lines([record(i) for i in range(20)]))
    app = make_app(tmp_path)
    services.import_cdrs(app, path)
    db = app.database()
    db.execute_sql("DROP INDEX cdrrow_start_utc_account_record_key")
    db.execute_sql("CREATE UNIQUE INDEX cdrrow_account_start_utc_record_key ON cdr_records (account, start_utc, record_key)")
    db.execute_sql("DELETE FROM schema_migrations WHERE id = 'charges-0002-records-by-time'")
    app.close()
    app = make_app(tmp_path)
    try:
        indexes = [r[0] for r in app.database().execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cdr_records'")]  # fmt: skip
        assert indexes == ["cdrrow_start_utc_account_record_key"]
        assert count(app) == 20
        assert services.import_cdrs(app, path, restart=True).inserted == 0
    finally:
        app.close()


def test_all_statements_in_one_pass_are_each_accounts_statement(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(lines([record(i, billsec=(i * 37) % 400, account=f"acc{i % 3}") for i in range(400)]))
    services.import_cdrs(app, path)
    first, last = dt.date(2025, 6, 1), dt.date(2025, 6, 30)
    for plan in ("daily", "monthly"):
        together = services.all_statements(app, first, last, plan)
        assert sorted(together) == ["acc0", "acc1", "acc2"]
        for account, statement in together.items():
            assert statement == services.account_statement(app, account, first, last, plan)
        assert services.all_statements(app, first, last, plan, keep_lines=False)["acc1"].total_pence == together["acc1"].total_pence
