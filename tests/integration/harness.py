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

import httpx

from livecall_ari.sandbox import sipp
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
