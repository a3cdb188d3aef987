"""Faults under load, against the real sandbox (issue 9): Asterisk restarted, `livecall serve`
killed, the database locked, the recordings disk full. Each test checks what must hold
afterwards: no call connected unscreened, nothing acknowledged lost, a clear log line, and the
service back on its own.

Which calls connected is read from the simulated PSTN, not from LiveCall: it records what
every answered call heard in ``<number>-<its uniqueid>-heard.wav``, and its uniqueid starts
with the epoch second its channel was created (after the gate decided). Each call of a test
dials its own number, so a file names the call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from livecall_ari.sandbox.sipp import SippCall
from tests.conftest import until
from tests.integration.harness import (
    SandboxInfo, Service, call, livecall, load_fresh_lists, open_for_marketing, start_call,
)

pytestmark = pytest.mark.sandbox

# 020 7946 3xxx: answered by the PSTN after a short ring (see livecall_ari/asterisk_conf/sandbox/pstn).
ALLOWED = [f"0207946310{i}" for i in range(8)]
ON_TPS = [f"0207946320{i}" for i in range(8)]


def connected(sandbox: SandboxInfo, before: set[Path], numbers: list[str]) -> dict[str, list[float]]:
    """For each of ``numbers`` the PSTN answered since ``before``: when its channel was made."""
    found: dict[str, list[float]] = {}
    for path in set(sandbox.heard_dir.glob("*-heard.wav")) - before:
        number, uniqueid = path.name.split("-")[0], path.name.removesuffix("-heard.wav").rsplit("-", 1)[1]
        if number in numbers:
            found.setdefault(number, []).append(float(uniqueid))
    return found


def decided_at(row: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(row["decided_at"])).replace(tzinfo=dt.timezone.utc).timestamp()


def assert_screened_before_connecting(decisions: list[dict[str, Any]], answered: dict[str, list[float]]) -> None:
    """Every call the PSTN answered had an allow decision recorded before its channel was made."""
    for number, made in answered.items():
        allows = [decided_at(r) for r in decisions if r["dialled"] == number and r["decision"] == "allow"]
        assert allows, f"{number} connected with no allow decision recorded: {decisions}"
        for when in made:
            assert min(allows) < when + 1, f"{number} connected at {when} before its decision at {min(allows)}"


def gate_verdicts_in_cdrs(sandbox: SandboxInfo, since: float) -> dict[str, dict[str, str]]:
    """Per gate call id, what the PBX's CDRs (LiveCall's cdr_custom file) say the gate told
    Asterisk: ``allow`` or ``block`` is written by the context the decision sent the call to."""
    import csv

    found = {}
    with open(sandbox.data["cdr_custom"], newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 24 and row[21] and row[23] in ("allow", "block") and float(row[9]) >= since:
                found[row[21]] = {"dst": row[2], "decision": row[23], "disposition": row[14]}
    return found


def up_channels(sandbox: SandboxInfo) -> int:
    return sandbox.rx("core show channels concise").count("!Up!")


@pytest.fixture
def screened(make_service: Any, tmp_path: Path) -> Service:
    """`livecall serve` with the screening rules; ON_TPS on a fresh TPS list."""
    service: Service = make_service(**open_for_marketing(tmp_path))
    load_fresh_lists(service, tmp_path, tps=ON_TPS)
    return service


def launch(sandbox: SandboxInfo, numbers: list[str], hold_ms: int, scenario: str = "") -> dict[str, SippCall]:
    """One sipp agent per number, a quarter of a second apart."""
    calls = {}
    for number in numbers:
        scenario = scenario or ("agent_call_refused.xml" if number in ON_TPS else "agent_call_answered.xml")
        calls[number] = start_call(sandbox, number, scenario=scenario, hold_ms=hold_ms, timeout=20)
        time.sleep(0.25)
    return calls


def interleaved(a: list[str], b: list[str]) -> list[str]:
    return [n for pair in zip(a, b) for n in pair]


def test_asterisk_restarted_under_load_connects_nothing_unscreened_and_the_service_reconnects(
    sandbox: SandboxInfo, screened: Service, tmp_path: Path
) -> None:
    before = set(sandbox.heard_dir.glob("*-heard.wav"))
    numbers = interleaved(ALLOWED, ON_TPS)
    first = launch(sandbox, numbers[:8], hold_ms=4000)
    until(lambda: up_channels(sandbox) >= 4, timeout=15, what="calls to be connected")

    sandbox.rx("core restart now")
    # Calls keep coming while Asterisk is down and coming back.
    rest = launch(sandbox, numbers[8:], hold_ms=1000)
    results = {n: c.wait(60) for n, c in {**first, **rest}.items()}
    until(screened.registered, timeout=30, what="the service to re-register after the restart")

    # New calls are screened after the restart.
    after_allowed, after_blocked = "02079463108", "02079463208"
    load_fresh_lists(screened, tmp_path, tps=[*ON_TPS, after_blocked])
    allowed = call(sandbox, after_allowed, hold_ms=500)
    blocked = call(sandbox, after_blocked, scenario="agent_call_refused.xml")
    assert allowed.answered, allowed.errors
    assert blocked.returncode == 0 and blocked.refused_cause == 21, blocked.errors

    decisions = screened.decisions()
    answered = connected(sandbox, before, [*numbers, after_allowed, after_blocked])
    assert not set(answered) & {*ON_TPS, after_blocked}, f"a TPS-listed number connected: {answered}"
    assert set(answered) & set(ALLOWED), "no call was connected before the restart: no load"
    assert_screened_before_connecting(decisions, answered)
    assert after_allowed in answered
    assert [(r["decision"], r["reasons"]) for r in decisions if r["dialled"] == after_blocked] == [("block", "tps")]
    # Some call was cut off or refused by the restart (the load met it).
    assert any(not r.answered for n, r in results.items() if n in ALLOWED), results
    assert screened.proc is not None and screened.proc.poll() is None
    assert screened.log.count('"event": "ari_connected"') >= 2, screened.log


@contextlib.contextmanager
def small_disk(sandbox: SandboxInfo, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted over the sandbox's recordings folder (owned by the chroot's
    asterisk user), unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("mounting a small disk over the recordings folder needs root")
        pytest.skip("mounting a small disk over the recordings folder needs root")
    chroot = Path(sandbox.data["chroot"])
    uid, gid = next(line.split(":")[2:4] for line in (chroot / "etc/passwd").read_text().splitlines()
                    if line.startswith("asterisk:"))
    folder = Path(sandbox.data["recordings_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},uid={uid},gid={gid},mode=0755", "livecall-test-full", str(folder)],
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def recordings(service: Service) -> list[dict[str, Any]]:
    con = sqlite3.connect(service.db_path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM recordings ORDER BY id")]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def test_a_full_recordings_disk_raises_the_alarm_and_no_row_hides_a_cut_or_missing_file(
    sandbox: SandboxInfo, make_service: Any
) -> None:
    chroot = Path(sandbox.data["chroot"])
    with small_disk(sandbox, "256k") as folder:
        # Only a full disk raises the alarm here (no "nearly full" threshold), checked every second.
        service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_RECORDING_MIN_FREE_MB="0",
                               LIVECALL_RECORDING_RECONCILE_EVERY="1")
        time.sleep(1.5)  # a check or two of the disk
        assert "ALARM" not in service.log
        assert "[ok  ] recordings disk" in livecall("doctor", env=service.env, check=False).stdout

        # A call recorded with its two legs (about 48 kB/s) runs the 256 kB disk out of space.
        filled = call(sandbox, "02079460712", agent="1002", hold_ms=6000)
        assert filled.answered, filled.errors
        until(lambda: [r for r in recordings(service) if r["state"] != "recording"], timeout=20,
              what="the recording to be finished")
        # Then a call finds no room at all for its file.
        empty = call(sandbox, "02079460713", agent="1002", hold_ms=1000)
        assert empty.answered, empty.errors
        until(lambda: len([r for r in recordings(service) if r["state"] != "recording"]) == 2, timeout=20,
              what="the second recording to be finished")
        cut, missing = recordings(service)

        # The cut file is kept for what it holds, and its row says it is incomplete.
        assert cut["state"] == "incomplete", cut
        cut_file = chroot / str(cut["file"]).lstrip("/")
        assert cut_file.stat().st_size == cut["size_bytes"] and cut["duration_ms"] < 6000
        assert "is cut short and kept as incomplete" in service.log
        # No row claims a file that is not there.
        assert missing["state"] == "missing" or (
            missing["state"] == "incomplete" and (chroot / str(missing["file"]).lstrip("/")).stat().st_size == missing["size_bytes"])
        for row in recordings(service):
            if row["state"] == "complete":
                assert (chroot / str(row["file"]).lstrip("/")).stat().st_size == row["size_bytes"], row
        # A clear alarm in serve's log, and doctor fails the check.
        alarm = until(lambda: [line for line in service.log.splitlines() if "ERROR" in line and "ALARM" in line],
                      timeout=10, what="the disk alarm")
        assert "the recordings disk is full" in alarm[0] and str(folder) in alarm[0], alarm
        doctor = livecall("doctor", env=service.env, check=False)
        assert doctor.returncode != 0 and "[FAIL] recordings disk: the recordings disk is full" in doctor.stdout, doctor.stdout
    until(lambda: "alarm cleared" in service.log, timeout=10, what="the alarm to clear once the disk has room")


def test_serve_killed_under_load_leaves_calls_and_recordings_whole_and_loses_nothing_it_acknowledged(
    sandbox: SandboxInfo, screened: Service, tmp_path: Path
) -> None:
    started = time.time()
    before = set(sandbox.heard_dir.glob("*-heard.wav"))
    hold_ms = 5000
    first = launch(sandbox, interleaved(ALLOWED[:4], ON_TPS[:4]), hold_ms=hold_ms)
    until(lambda: up_channels(sandbox) >= 4, timeout=20, what="calls to be connected")

    screened.stop(signal.SIGKILL)
    # While it is down, every marketing call is refused (fail closed), listed or not.
    while_down = launch(sandbox, interleaved(ALLOWED[4:], ON_TPS[4:]), hold_ms=1000, scenario="agent_call_refused.xml")
    results = {n: c.wait(60) for n, c in first.items()}
    refused = {n: c.wait(60) for n, c in while_down.items()}

    # Back, catching up on recordings within seconds (the default waits five minutes).
    screened.env.update(LIVECALL_RECORDING_RECONCILE_AFTER="5", LIVECALL_RECORDING_RECONCILE_EVERY="1")
    screened.start()
    after = call(sandbox, "02079463109", hold_ms=500)
    assert after.answered, after.errors

    answered = connected(sandbox, before, [*ALLOWED, *ON_TPS, "02079463109"])
    assert not set(answered) & set(ON_TPS), f"a TPS-listed number connected: {answered}"
    assert not set(answered) & set(ALLOWED[4:]), f"a call connected while the gate was down: {answered}"
    for number, result in refused.items():
        assert result.returncode == 0 and result.refused_cause == 21, (number, result.errors)
    # Calls connected before the kill went on to their natural end.
    before_kill = set(answered) & set(ALLOWED[:4])
    assert len(before_kill) >= 2, f"too few calls were up when serve was killed: {answered}"
    for number in before_kill:
        assert results[number].returncode == 0 and results[number].elapsed >= hold_ms / 1000, (number, results[number].errors)
    decisions = screened.decisions()
    assert_screened_before_connecting(decisions, answered)
    # Every verdict Asterisk acted on (the context it sent the call to wrote it in the CDR) is
    # a decision row: nothing serve acknowledged was lost with it.
    ours = {r["call_id"]: r for r in decisions}
    told = gate_verdicts_in_cdrs(sandbox, started - 1)
    told = {cid: v for cid, v in told.items() if v["dst"] in [*ALLOWED, *ON_TPS, "02079463109"]}
    assert {v["dst"] for v in told.values()} >= {*before_kill, "02079463109"}
    for call_id, verdict in told.items():
        assert call_id in ours and ours[call_id]["decision"] == verdict["decision"], (verdict, ours.get(call_id))
    # Every answered call's recording has its row, finished from the file, once serve is back.
    chroot = Path(sandbox.data["chroot"])
    answered_ids = [cid for cid, v in told.items() if v["decision"] == "allow" and v["dst"] in before_kill]

    def booked() -> list[dict[str, Any]]:
        rows = {r["call_id"]: r for r in recordings(screened)}
        found = [rows[cid] for cid in answered_ids if cid in rows and rows[cid]["state"] != "recording"]
        return found if len(found) == len(answered_ids) else []

    for row in until(booked, timeout=30, what="the recordings of the calls up at the kill to be booked"):
        assert row["state"] == "complete", row
        path = chroot / str(row["file"]).lstrip("/")
        assert path.stat().st_size == row["size_bytes"] and row["duration_ms"] >= hold_ms, row
    assert livecall("recordings", "verify", env=screened.env, check=False).returncode == 0


def test_a_locked_database_refuses_marketing_calls_with_one_clear_line_and_recovers_by_itself(
    sandbox: SandboxInfo, screened: Service
) -> None:
    before = set(sandbox.heard_dir.glob("*-heard.wav"))
    locked_number, later_number = ALLOWED[0], ALLOWED[1]
    holder = sqlite3.connect(screened.db_path, isolation_level=None)
    try:
        # Another process's write transaction, held well past the busy timeout (5 s).
        holder.execute("BEGIN EXCLUSIVE")
        refused = call(sandbox, locked_number, scenario="agent_call_refused.xml")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    allowed = call(sandbox, later_number, hold_ms=500)

    assert refused.returncode == 0 and refused.refused_cause == 21, refused.errors
    assert allowed.answered, allowed.errors
    answered = connected(sandbox, before, [locked_number, later_number])
    assert list(answered) == [later_number], answered
    # Nothing could be written while it was locked: the refused call left no row, and the log
    # says why, in one line naming the call and the cause.
    decisions = screened.decisions()
    assert [(r["dialled"], r["decision"]) for r in decisions] == [(later_number, "allow")]
    assert_screened_before_connecting(decisions, answered)
    [why] = [line for line in screened.log.splitlines() if "refusing it" in line]
    assert "ERROR" in why and "could not record the decision" in why and "database is locked" in why, why
    assert screened.proc is not None and screened.proc.poll() is None


class PostgresServer:
    """A throwaway PostgreSQL server (scripts/postgres) that this test stops and starts again
    on the same port, as a database server restarted or failed over under a running service."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        result = subprocess.run(["scripts/postgres", "start", str(folder)], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            message = f"no PostgreSQL server could be started: {result.stderr[-500:]}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.url = result.stdout.strip().splitlines()[-1]
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1]
        # What scripts/postgres gave on the command line, kept in the cluster so a plain
        # `pg_ctl start` brings it back on the same port.
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        for name, value in (("port", port), ("listen_addresses", "127.0.0.1"), ("unix_socket_directories", str(folder))):
            self.sql(f"ALTER SYSTEM SET {name} = '{value}'")

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    def pg_ctl(self, *args: str) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-w", "-t", "30", *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd="/", timeout=60)

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        self.pg_ctl("-l", str(self.folder / "server.log"), "start")

    def remove(self) -> None:
        subprocess.run(["scripts/postgres", "stop", str(self.folder)], capture_output=True, timeout=60)


def test_a_postgresql_server_down_refuses_marketing_calls_and_the_service_recovers_when_it_returns(
    sandbox: SandboxInfo, make_service: Any, tmp_path: Path
) -> None:
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="livecall-pg-down-")))
    try:
        # The catch-up runs every 2 s here (every minute by default): the first call's recording
        # ends while the server is down, so only the catch-up can book it.
        service: Service = make_service(
            LIVECALL_DATABASE_URL=server.url, LIVECALL_RECORDING_RECONCILE_EVERY="2", LIVECALL_RECORDING_RECONCILE_AFTER="3",
            **open_for_marketing(tmp_path),
        )  # fmt: skip
        load_fresh_lists(service, tmp_path, tps=ON_TPS)
        before = set(sandbox.heard_dir.glob("*-heard.wav"))
        first, while_down, after = ALLOWED[0], ALLOWED[1], ALLOWED[2]
        assert call(sandbox, first, hold_ms=500).answered

        server.stop()
        refused = call(sandbox, while_down, scenario="agent_call_refused.xml")
        server.start()
        allowed = call(sandbox, after, hold_ms=500)

        assert refused.returncode == 0 and refused.refused_cause == 21, refused.errors
        assert allowed.answered, allowed.errors
        answered = connected(sandbox, before, [first, while_down, after])
        assert sorted(answered) == [first, after], answered
        # The service stayed up, said why it refused in a line naming the call, and needed no
        # restart: the call after the server returned was screened and recorded there.
        assert service.proc is not None and service.proc.poll() is None
        why = next(line for line in service.log.splitlines() if "refusing it" in line)
        assert "ERROR" in why and while_down in why and "fail closed" in why and "Connection refused" in why, why
        rows = server.sql("SELECT dialled, decision, decided_at FROM gate_decisions ORDER BY id")
        assert [(d, v) for d, v, _ in rows] == [(first, "allow"), (after, "allow")], rows
        assert_screened_before_connecting([{"dialled": d, "decision": v, "decided_at": t} for d, v, t in rows], answered)
        # Both answered calls' recordings are booked there, whole, with their retention date.
        numbers = tuple("+44" + n[1:] for n in (first, after))  # recordings hold the number as E.164
        booked_sql = f"SELECT number, retention_until FROM recordings WHERE state = 'complete' AND number IN {numbers} ORDER BY number"
        until(lambda: len(server.sql(booked_sql)) == 2, timeout=30, what="both recordings complete in PostgreSQL")
        assert all(kept for _, kept in server.sql(booked_sql))
    finally:
        server.remove()
