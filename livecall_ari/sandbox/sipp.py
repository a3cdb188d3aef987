"""Place calls as one of the sandbox's desk phones, with sipp (digest auth).

The scenarios are files in scenarios/ beside this module (shipped in the package: the demo uses them) (agent_call_answered.xml, agent_call_refused.xml);
the demo, the benchmarks and the integration tests all place their calls through here.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from livecall_ari.sandbox.rtp import tone_pcap

SCENARIO_DIR = Path(__file__).with_name("scenarios")
# The tone an agent's phone sends, so tests can tell it from the far end's voice.
AGENT_HZ = 500


@dataclass
class SippResult:
    returncode: int
    rtt: list[dict[str, str]]
    messages: str
    errors: str
    elapsed: float

    def rtd(self, name: str) -> list[float]:
        """Response times (ms) of the scenario's timer ``name`` (``setup``: INVITE to first 18x)."""
        return [float(r["response_time_ms"]) for r in self.rtt if r.get("rtd_no") == name]

    def post_dial_delays_ms(self) -> list[float]:
        """Per call, from sending the authenticated INVITE (CSeq 2) to receiving its first 18x,
        from the microsecond timestamps of sipp's message trace (-trace_msg)."""
        sent: dict[str, dt.datetime] = {}
        delays: dict[str, float] = {}
        for stamp, direction, body in _trace_blocks(self.messages):
            call_id = _header(body, "Call-ID")
            if direction == "sent" and body.startswith("INVITE ") and _header(body, "CSeq") == "2 INVITE":
                sent[call_id] = stamp
            elif direction == "received" and re.match(r"SIP/2\.0 18\d", body) and call_id in sent and call_id not in delays:
                delays[call_id] = (stamp - sent[call_id]).total_seconds() * 1000
        return list(delays.values())

    @property
    def answered(self) -> bool:
        return "SIP/2.0 200 OK" in self.messages and "CSeq: 2 INVITE" in self.messages

    @property
    def refused_cause(self) -> int | None:
        for line in self.messages.splitlines():
            if line.startswith("Reason: Q.850;cause="):
                return int(line.split("=", 1)[1].strip())
        return None


@dataclass
class SippCall:
    """A running sipp process."""

    proc: subprocess.Popen[str]
    workdir: Path
    started: float

    def wait(self, timeout: float = 120) -> SippResult:
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
        errs = "".join(
            f.read_text(errors="replace") for f in [*self.workdir.glob("*errors*"), self.workdir / "sipp-stderr.txt"]
        )
        result = SippResult(self.proc.returncode, rtt, msgs, errs, time.monotonic() - self.started)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return result


def free_udp_port() -> int:
    """A free port, so that no two phones share one (sipp's own choice is 5061 when free, and a
    late retransmission for an earlier call would reach the next phone there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_call(
    number: str,
    agent: str,
    password: str,
    *,
    scenario: str = "agent_call_answered.xml",
    hold_ms: int = 1000,
    calls: int = 1,
    concurrent: int = 1,
    rate: float | None = None,
    timeout: int = 30,
    pbx: str = "127.0.0.1:5060",
    trace_messages: bool = True,
    keys: dict[str, str] | None = None,
) -> SippCall:
    if shutil.which("sipp") is None:
        raise FileNotFoundError("sipp is not installed (apt-get install sip-tester)")
    workdir = Path(tempfile.mkdtemp(prefix="livecall-sipp-"))
    (workdir / "agent.csv").write_text(f"SEQUENTIAL\n{agent};\n")
    # What the phone says once the call is answered (the scenarios play agent.pcap).
    tone_pcap(workdir / "agent.pcap", AGENT_HZ, max(hold_ms / 1000 + 1, 20))
    cmd = [
        "sipp", pbx, "-sf", str(SCENARIO_DIR / scenario), "-inf", str(workdir / "agent.csv"),
        "-s", number, "-au", agent, "-ap", password, "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
        "-m", str(calls), "-l", str(concurrent), "-d", str(hold_ms),
        "-timeout", str(timeout), "-timeout_error", "-trace_err", "-trace_rtt", "-rtt_freq", "1", "-nostdin",
        # Answer in-dialog NOTIFY/INFO/OPTIONS/UPDATE the scenario does not expect (a transfer's progress).
        "-aa",
    ]
    if trace_messages:
        cmd.append("-trace_msg")
    if rate is not None:
        cmd += ["-r", str(rate)]
    for key, value in (keys or {}).items():
        cmd += ["-key", key, value]
    with open(workdir / "sipp-stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    return SippCall(proc, workdir, time.monotonic())


_BLOCK = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(\w+) message (sent|received)[^\n]*\n+", re.M)


def _trace_blocks(text: str) -> list[tuple[dt.datetime, str, str]]:
    """Split sipp's -trace_msg file into (timestamp, "sent"/"received", message)."""
    blocks = []
    matches = list(_BLOCK.finditer(text))
    for m, nxt in zip(matches, [*matches[1:], None]):
        body = text[m.end(): nxt.start() if nxt else len(text)].strip()
        blocks.append((dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f"), m.group(3), body))
    return blocks


def _header(message: str, name: str) -> str:
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return ""
