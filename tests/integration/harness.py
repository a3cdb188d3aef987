"""The integration tests' view of the sandbox: sipp agents, a `livecall serve` process, the
sandbox's files. Everything here drives real processes; nothing is faked."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import until

ROOT = Path(__file__).resolve().parents[2]
SIPP_DIR = ROOT / "tests" / "sipp"
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
        return Path(self.data["chroot"]) / "var/log/livecall-sandbox/pbx/messages.log"

    def rx(self, command: str) -> str:
        return livecall("sandbox", "rx", command).stdout


@dataclass
class SippResult:
    returncode: int
    rtt: list[dict[str, str]]
    messages: str
    errors: str
    elapsed: float

    def rtd(self, name: str) -> list[float]:
        return [float(r["response_time_ms"]) for r in self.rtt if r.get("rtd_no") == name]


@dataclass
class SippCall:
    """A running sipp process (an agent's phone)."""

    proc: subprocess.Popen[str]
    workdir: Path
    started: float

    def wait(self, timeout: float = 60) -> SippResult:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        rtt: list[dict[str, str]] = []
        for f in self.workdir.glob("*_rtt.csv"):
            rows = [line for line in f.read_text().splitlines() if line.strip()]
            rtt += list(csv.DictReader(rows, delimiter=";"))
        msgs = "".join(f.read_text(errors="replace") for f in self.workdir.glob("*messages*"))
        errs = "".join(f.read_text(errors="replace") for f in [*self.workdir.glob("*errors*"), self.workdir / "sipp-stderr.txt"])
        out = SippResult(self.proc.returncode, rtt, msgs, errs, time.monotonic() - self.started)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return out


def start_call(
    sandbox: SandboxInfo,
    number: str,
    *,
    agent: str = "1001",
    scenario: str = "agent_call_answered.xml",
    hold_ms: int = 1000,
    calls: int = 1,
    concurrent: int = 1,
    rate: float | None = None,
    timeout: int = 30,
) -> SippCall:
    workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
    (workdir / "agent.csv").write_text(f"SEQUENTIAL\n{agent};\n")
    cmd = [
        "sipp", "127.0.0.1:5060", "-sf", str(SIPP_DIR / scenario), "-inf", str(workdir / "agent.csv"),
        "-s", number, "-au", agent, "-ap", sandbox.password(agent), "-i", "127.0.0.1", "-p", "0",
        "-mi", "127.0.0.1", "-m", str(calls), "-l", str(concurrent), "-d", str(hold_ms),
        "-timeout", str(timeout), "-timeout_error", "-trace_err", "-trace_msg", "-trace_rtt", "-rtt_freq", "1",
        "-nostdin", "-max_recv_loops", "100",
    ]
    if rate is not None:
        cmd += ["-r", str(rate)]
    with open(workdir / "sipp-stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    return SippCall(proc, workdir, time.monotonic())


def call(sandbox: SandboxInfo, number: str, **kwargs: Any) -> SippResult:
    return start_call(sandbox, number, **kwargs).wait()


@dataclass
class Service:
    """A `livecall serve` process with its own database."""

    env: dict[str, str]
    db_path: Path
    proc: subprocess.Popen[str] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="serve-")) / "serve.log")

    def start(self) -> "Service":
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
        self.proc.wait(10)
        until(lambda: not self.app_registered(), timeout=10, what="the Stasis app to unregister")

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def decisions(self) -> list[dict[str, Any]]:
        import sqlite3

        if not self.db_path.exists():
            return []
        con = sqlite3.connect(self.db_path)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM gate_decisions ORDER BY id")]
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()
