"""The integration tests' view of the sandbox: sipp agents, a `livecall serve` process, the
sandbox's files. Everything here drives real processes; nothing is faked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datetime as dt
from zoneinfo import ZoneInfo

import httpx
import pytest

from livecall_ari.sandbox import sipp
from livecall_ari.screening.hours import BankHolidays
from livecall_ari.sandbox.rtp import tone_pcap
from livecall_ari.sandbox.sipp import SippCall, SippResult
from tests.conftest import until

ROOT = Path(__file__).resolve().parents[2]
LIVECALL = [sys.executable, "-m", "livecall_ari.cli"]


def livecall(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*LIVECALL, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"livecall {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class SandboxInfo:
    data: dict[str, Any]

    @classmethod
    def load(cls) -> "SandboxInfo":
        return cls(json.loads(livecall("sandbox", "status", "--json").stdout))

    @property
    def running(self) -> bool:
        return all(self.data["running"].values())

    def password(self, endpoint: str) -> str:
        for e in self.data["endpoints"]:
            if e["name"] == endpoint:
                return str(e["password"])
        raise KeyError(endpoint)

    @property
    def heard_dir(self) -> Path:
        return Path(self.data["heard_dir"])

    @property
    def cdr_csv(self) -> Path:
        return Path(self.data["cdr_csv"])

    @property
    def pbx_log(self) -> Path:
        return Path(self.data["chroot"]) / "var/log/asterisk/messages.log"

    def rx(self, command: str) -> str:
        return livecall("sandbox", "rx", command).stdout


def start_call(sandbox: SandboxInfo, number: str, *, agent: str = "1001", **kwargs: Any) -> SippCall:
    return sipp.start_call(number, agent, sandbox.password(agent), pbx=sandbox.data["sip"], **kwargs)


def call(sandbox: SandboxInfo, number: str, **kwargs: Any) -> SippResult:
    return start_call(sandbox, number, **kwargs).wait()


@dataclass
class Service:
    """A `livecall serve` process with its own database."""

    env: dict[str, str]
    db_path: Path
    proc: subprocess.Popen[str] | None = None
    started_at: str = ""
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="serve-")) / "serve.log")

    def start(self) -> "Service":
        # Rows this service writes are at least this recent (SQLite text timestamps compare).
        self.started_at = str(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))[:19]
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [*LIVECALL, "serve"], env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        log.close()
        until(self.registered, timeout=15, what="the livecall Stasis app to register with ARI")
        return self

    def registered(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"livecall serve exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
        return self.app_registered()

    @staticmethod
    def app_registered() -> bool:
        from livecall_ari.config import load

        s = load()
        try:
            r = httpx.get(f"{s.ari.url}/ari/applications", auth=(s.ari.user, s.ari.password), timeout=2)
        except httpx.TransportError:
            return False
        return r.status_code == 200 and any(a["name"] == s.ari.app for a in r.json())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            # serve gives the CDR follower 5 s and the web process a grace of 10 s to finish.
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # reaped here, never left running into the next test
            self.proc.wait()
            raise AssertionError(f"livecall serve did not stop within 30 s of signal {sig}; killed it. "
                                 f"Its log ends:\n{self.log[-4000:]}") from None
        until(lambda: not self.app_registered(), timeout=10, what="the Stasis app to unregister")

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def decisions(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM gate_decisions ORDER BY id")

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        """The rows of a query on this service's database, SQLite or PostgreSQL ("?" marks a
        parameter); none while its tables do not exist yet."""
        url = self.env.get("LIVECALL_DATABASE_URL", "")
        if not url.startswith("sqlite:///"):
            return postgres_rows(url, sql, params)
        import sqlite3

        if not self.db_path.exists():
            return []
        con = sqlite3.connect(self.db_path)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, params)]
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()


def postgres_rows(url: str, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    import psycopg2
    import psycopg2.errors
    import psycopg2.extras

    conn = psycopg2.connect(url)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return [dict(r) for r in cursor.fetchall()]
    except psycopg2.errors.UndefinedTable:
        return []
    finally:
        conn.close()


class PostgresDatabases:
    """Fresh databases on a PostgreSQL server, one per service, dropped afterwards: the
    integration tests' services run on PostgreSQL when LIVECALL_TEST_SERVICE_POSTGRES_URL
    names a server (scripts/test runs the database-heavy tests a second time that way)."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.names: list[str] = []

    def _admin(self, statement: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.server_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
        finally:
            conn.close()

    def create(self) -> str:
        name = f"livecall_it_{os.getpid()}_{len(self.names)}_{int(time.time() * 1000) % 10**8}"
        self._admin(f"CREATE DATABASE {name}")
        self.names.append(name)
        return self.server_url.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        for name in self.names:
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.names.clear()


NATIONS = ("England", "Scotland", "Wales", "Northern Ireland")


def open_for_marketing(tmp_path: Path) -> dict[str, str]:
    """Settings under which the calling-hours rules cannot refuse a call made now.

    Tests run at any hour; rather than fake the clock (the service reads the real one), pick a
    fixed-offset zone where it is now about midday and a nation with no bank holiday today.
    """
    now = dt.datetime.now(dt.timezone.utc)
    offset = 12 - now.hour  # Etc/GMT-N is N hours ahead of UTC
    offset = max(-12, min(14, offset))
    zone = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    local_day = now.astimezone(ZoneInfo(zone)).date()
    nation = next((n for n in NATIONS if BankHolidays(n).name(local_day) is None), None)
    if nation is None:
        pytest.skip(f"{local_day} is a bank holiday in every UK nation: marketing calls are refused today")
    return {
        "LIVECALL_SCREENING_TIMEZONE": zone,
        "LIVECALL_SCREENING_CALLING_DAYS": "mon-sun",
        "LIVECALL_SCREENING_CALLING_START": "06:00",
        "LIVECALL_SCREENING_CALLING_END": "18:00",
        "LIVECALL_SCREENING_NATION": nation,
        "LIVECALL_SCREENING_LISTS_DIR": str(tmp_path / "lists"),
        "LIVECALL_GATE_DECIDER": "screening",
    }


def answering_phone(sandbox: SandboxInfo, endpoint: str, timeout: int = 30, hang_up_after_ms: int | None = None) -> SippCall:
    """Register ``endpoint`` from a free port and answer the next call there (sipp cannot
    register and then take a new dialog in one scenario, so two runs share the port)."""
    port = sipp.free_udp_port()
    workdir = Path(tempfile.mkdtemp(prefix="livecall-phone-"))
    (workdir / "phone.csv").write_text(f"SEQUENTIAL\n{endpoint};\n")
    tone_pcap(workdir / "agent.pcap", sipp.AGENT_HZ, timeout)
    register = subprocess.run(
        ["sipp", sandbox.data["sip"], "-sf", str(sipp.SCENARIO_DIR / "phone_register.xml"),
         "-inf", str(workdir / "phone.csv"), "-key", "expires", "60", "-au", endpoint, "-ap", sandbox.password(endpoint),
         "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-timeout", "10", "-timeout_error", "-nostdin"],
        cwd=workdir, capture_output=True, text=True, timeout=30,
    )
    assert register.returncode == 0, f"{endpoint} could not register: {register.stdout[-500:]}{register.stderr[-500:]}"
    with open(workdir / "sipp-stderr.txt", "w") as stderr:
        proc = subprocess.Popen(
            ["sipp", "-sf", str(sipp.SCENARIO_DIR / ("phone_answer.xml" if hang_up_after_ms is None else "phone_answer_hang_up.xml")),
             "-d", str(hang_up_after_ms or 0), "-i", "127.0.0.1", "-p", str(port),
             "-mi", "127.0.0.1", "-m", "1", "-timeout", str(timeout), "-timeout_error", "-trace_msg", "-nostdin"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )
    return SippCall(proc, workdir, time.monotonic())


def load_fresh_lists(service: Service, tmp_path: Path, tps: list[str] = (), ctps: list[str] = ()) -> None:  # type: ignore[assignment]
    """Import today's TPS and CTPS snapshots (so marketing calls are not refused as stale)."""
    today = dt.date.today().isoformat()
    for name, numbers in (("tps", list(tps) or ["01614960001"]), ("ctps", list(ctps) or ["01614960000"])):
        f = tmp_path / f"{name}.txt"
        f.write_bytes("".join(f"{n[:4]:<5}{n[4:]:>7}\r\n" for n in numbers).encode())
        livecall("lists", "import", name, str(f), "--list-date", today, env=service.env)
