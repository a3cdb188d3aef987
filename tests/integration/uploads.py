"""Calls through the gate while the portal takes list uploads: the pieces the integration test
(test_upload_call_path.py) and the benchmark (benchmarks/bench_upload_call_path.py) share.

A portal admin is added with the CLI, logs in over real HTTP, and uploads a TPS full file again
and again from a thread while sipp phones place calls through both gate entries: agent 1003
(FastAGI) and agent 1002 (Stasis), each call cancelled once it rings. What is measured per call:
the post-dial delay sipp sees (INVITE to first 18x, which includes any wait for the gate's event
loop) and the decision time the gate records (``gate_decisions.elapsed_us``).
"""

from __future__ import annotations

import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import httpx

from livecall_ari.sandbox.sipp import start_call

RINGING = "02079460980"  # the simulated PSTN rings and never answers
ADMIN, ADMIN_PASSWORD = "upload-admin", "a long enough password for the bench"
AGENTS = (("1003", "fastagi"), ("1002", "stasis"))


def write_tps_file(path: Path, megabytes: int) -> int:
    """A TPS full file of about ``megabytes`` MB (Manchester numbers, 12 characters and CRLF
    each: never the numbers the calls dial); the count of numbers in it."""
    count = megabytes * 1024 * 1024 // 14
    block = 1 << 16
    with open(path, "wb") as f:
        for start in range(0, count, block):
            f.write("".join(f"0161{i:07d} \r\n" for i in range(start, min(count, start + block))).encode())
    return count


def add_admin(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "livecall_ari.cli", "users", "add", ADMIN, "--role", "admin", "--password-stdin"],
                          env=env, input=ADMIN_PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def portal_login(base: str) -> tuple[httpx.Client, str]:
    """A client logged in as the admin, and its CSRF token."""
    client = httpx.Client(base_url=base, timeout=300)
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None, form.text[:300]
    done = client.post("/login", data={"username": ADMIN, "password": ADMIN_PASSWORD, "csrf": token.group(1)})
    assert done.status_code == 303, done.text[:300]
    page = client.get("/lists")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    assert csrf is not None
    return client, csrf.group(1)


@dataclass
class Uploader:
    """Uploads ``file`` through the portal again and again until stopped; each reply kept."""

    base: str
    file: Path
    niceness: int = 19  # the client's: 19 costs the PBX least (a browser elsewhere); 0 sends fastest
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    first_started: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: BaseException | None = None

    def start(self) -> "Uploader":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._upload_until_stopped()
        except BaseException as exc:  # reported by stop(), in the test's thread
            self.error = exc
            self.first_started.set()

    def _upload_until_stopped(self) -> None:
        # curl streams the file from disk at low priority, the way a browser on another machine
        # would cost this one nothing: what the PBX pays for is the web process's work alone.
        client, csrf = portal_login(self.base)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        client.close()
        while not self._stop.is_set():
            started = time.monotonic()
            self.first_started.set()
            done = subprocess.run(
                ["nice", "-n", str(self.niceness), "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "600",
                 "-H", f"cookie: {cookie}", "-H", "x-requested-with: fetch", "-H", f"origin: {self.base}",
                 "-F", f"csrf={csrf}", "-F", "list=tps", "-F", "kind=full", "-F", "list_date=", "-F", "allow_shrink=yes",
                 "-F", f"file=@{self.file};type=text/plain", f"{self.base}/lists/import"],
                capture_output=True, text=True, timeout=660,
            )
            self.statuses.append(int(done.stdout or 0))
            self.seconds.append(time.monotonic() - started)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(600)
        if self.error is not None:
            raise AssertionError(f"the upload failed: {self.error!r}") from self.error


def place_calls(sip: str, passwords: dict[str, str], calls_per_agent: int, concurrent_per_agent: int) -> dict[str, list[float]]:
    """Calls through both entries at once; the post-dial delays (ms) by entry."""
    running = {entry: start_call(RINGING, agent, passwords[agent], scenario="agent_call_cancelled.xml", hold_ms=300,
                                 calls=calls_per_agent, concurrent=concurrent_per_agent, rate=float(concurrent_per_agent),
                                 timeout=300, trace_messages=True, pbx=sip)
               for agent, entry in AGENTS}
    delays = {}
    for entry, call in running.items():
        result = call.wait(timeout=600)
        assert result.returncode == 0, f"sipp failed ({entry}): {result.errors[-500:]}"
        delays[entry] = result.post_dial_delays_ms()
        assert len(delays[entry]) == calls_per_agent, (entry, len(delays[entry]))
    return delays


def agi_decision_ms(port: int, secret: str, probes: int, spacing_s: float = 0.02) -> list[float]:
    """The gate's decision as Asterisk waits for it, without Asterisk: a FastAGI ``screen``
    request (a service call by agent "probe") sent to serve, timed to the first command it
    answers with. It includes any wait for the gate's event loop, which elapsed_us does not."""
    import socket

    times = []
    for n in range(probes):
        header = (f"agi_network: yes\nagi_network_script: screen?secret={secret}\n"
                  f"agi_request: agi://127.0.0.1:{port}/screen?secret={secret}\nagi_channel: PJSIP/probe-{n}\n"
                  f"agi_uniqueid: probe-{time.time_ns()}\nagi_extension: {RINGING}\nagi_arg_1: {RINGING}\n"
                  "agi_arg_2: service\nagi_arg_3: probe\nagi_arg_4: \n\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            reader = conn.makefile("rb")
            started = time.perf_counter()
            conn.sendall(header)
            first = reader.readline()
            times.append((time.perf_counter() - started) * 1000)
            assert first.startswith(b"SET VARIABLE"), first
            while first:
                conn.sendall(b"200 result=1\n")
                first = reader.readline()
        time.sleep(spacing_s)
    return times


def last_decision_id(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM gate_decisions").fetchone()[0])


def decision_times_us(db: Path, after_id: int) -> dict[str, list[int]]:
    """The gate's own decision times of the decisions after ``after_id``, by entry."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT entry, elapsed_us FROM gate_decisions WHERE id > ? AND agent != 'probe'",
                            (after_id,)).fetchall()
    out: dict[str, list[int]] = {}
    for entry, elapsed in rows:
        out.setdefault(str(entry), []).append(int(elapsed))
    return out


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: Sequence[float]) -> str:
    return f"n={len(values)} p50={statistics.median(values):.2f} p95={percentile(values, 95):.2f}"


def portal_pid(serve_pid: int) -> int | None:
    """The web process `livecall serve` started (its child running livecall_ari.web.server)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == serve_pid and b"livecall_ari.web.server" in cmdline:
            return int(entry.name)
    return None

