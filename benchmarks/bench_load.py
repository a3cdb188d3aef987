"""Load: N concurrent recorded marketing calls through the sandbox, sustained, beside the same
load without LiveCall; and a ramp of concurrency to the point where call setup fails.

One sipp process is the agents' phones (agent 1001: marketing purpose, Stasis entry; the
sandbox's scenario agent_call_answered.xml with the dialled number taken per call from an
injection file). It keeps N calls up (``-l N``, new calls at ``--rate`` per second as slots
free) for ``--duration`` seconds, each call held ``--hold`` seconds after it is answered, then
stops placing calls (SIGUSR1: the calls in progress finish). Every call dials a distinct
number of Ofcom's drama ranges, which the simulated PSTN answers after 0.3 s of ringing.

- ``livecall``: through LiveCall. A `livecall serve` of its own (fresh SQLite database, calling
  hours open now, fresh TPS/CTPS lists, the CDR follower reading the sandbox's Master.csv)
  screens each call (Stasis, decision recorded), the dialplan records it (MixMonitor from the
  called party's answer, the ~10 s recording notice played to them first, FastAGI reports of
  start/notice/end), and the follower imports and rates its CDR. Afterwards every call is
  checked: set up (sipp), screened (an allow decision), recorded (a complete recording whose
  file is on disk and about as long as the call), rated (a line on the account's statement).
- ``baseline``: without LiveCall. The sandbox's phone 1999, whose context (sandbox-direct)
  is only ``Dial(PJSIP/<number>@trunk,60)``: the same PBX bridging the same two RTP legs and
  writing the same CDRs (cdr_csv and cdr_custom), the same PSTN answering and recording what
  it hears, the same sipp; no gate, no notice, no recording, no FastAGI, no `livecall serve`.

Post-dial delay per call is from sending the authenticated INVITE to receiving the first 18x
(sipp's message trace, as in bench_post_dial_delay.py). CPU (user+sys) and RSS of `livecall
serve`, the PBX and the PSTN Asterisk, and sipp are sampled from /proc every second.

``--ramp 50,100,150,...`` runs short steps at rising concurrency until call setup fails (a
failed or missing call, or p95 post-dial delay over ``--pdd-limit-ms``, or the concurrency not
reached) and says what was saturated. Needs the sandbox up; settings by $LIVECALL_CONFIG or
--config. Usage:

    python benchmarks/bench_load.py [--mode both] [--concurrent 50] [--duration 600] [--hold 45]
    python benchmarks/bench_load.py --ramp 50,100,150,200,300,400 --duration 60 --hold 20
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the integration tests' harness (serve, lists, open hours)

from bench_post_dial_delay import percentile  # noqa: E402
from livecall_ari.sandbox.rtp import tone_pcap  # noqa: E402
from livecall_ari.sandbox.sipp import AGENT_HZ, SCENARIO_DIR, SippResult, _header, _trace_blocks, free_udp_port  # noqa: E402

# Ofcom's drama ranges (1000 numbers each), all valid UK geographic numbers; not on the lists
# the benchmark imports. The PSTN answers them after a short ring. (0161 496 is left out: the
# test lists use it; 07700 900 is not a valid mobile range to phonenumbers.)
DRAMA = ("0113496", "0114496", "0116496", "0117496", "0118496", "0121496", "0131496", "0141496", "0151496", "0292018")
NUMBERS = [f"{p}{i:04d}" for i in range(1000) for p in DRAMA] + [f"0289649{6000 + i}" for i in range(1000)]
CLK_TCK = os.sysconf("SC_CLK_TCK")
WAV_BYTES_PER_S = 16000  # MixMonitor's .wav: 16-bit 8 kHz mono


# -- sampling /proc ------------------------------------------------------------------------


def proc_facts(pid: int) -> dict[str, float] | None:
    """CPU seconds (user+sys), RSS bytes, open fds and threads of one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        rest = stat[stat.rindex(")") + 2:].split()
        rss = next(int(l.split()[1]) * 1024 for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, StopIteration):
        return None
    # Its own time: on a saturated machine reading a big process's fds takes a while.
    # children_cpu_s: the CPU of the children it has waited for (serve's opusenc runs).
    return {"cpu_s": (int(rest[11]) + int(rest[12])) / CLK_TCK, "rss": rss, "fds": fds, "threads": int(rest[17]),
            "children_cpu_s": (int(rest[13]) + int(rest[14])) / CLK_TCK, "t": time.time()}


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def fd_limit(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return None


class Sampler(threading.Thread):
    """Samples the watched processes and the machine every ``interval`` seconds."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.pids: dict[str, int] = {}
        self.samples: list[dict[str, Any]] = []
        self._halt = threading.Event()

    def watch(self, name: str, pid: int | None) -> None:
        if pid:
            self.pids[name] = pid
        else:
            self.pids.pop(name, None)

    def run(self) -> None:
        while not self._halt.is_set():
            busy, total = machine_jiffies()
            sample: dict[str, Any] = {"t": time.time(), "busy": busy, "total": total, "load1": os.getloadavg()[0]}
            for name, pid in list(self.pids.items()):
                facts = proc_facts(pid)
                if facts is not None:
                    sample[name] = facts
            self.samples.append(sample)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def summary(self, t0: float, t1: float) -> dict[str, Any]:
        """Per process over [t0, t1]: CPU seconds, % of one core (mean, max), RSS MiB (mean,
        max), fds and threads (max); and the machine: all cores' busy time in % of one core."""
        window = [s for s in self.samples if t0 <= s["t"] <= t1]
        out: dict[str, Any] = {"seconds": round(window[-1]["t"] - window[0]["t"], 1) if len(window) > 1 else 0}
        if len(window) < 2:
            return out
        names = {k for s in window for k in s if isinstance(s[k], dict)}
        for name in sorted(names):
            rows = [s for s in window if name in s]
            pcts = [100 * (b[name]["cpu_s"] - a[name]["cpu_s"]) / max(b[name]["t"] - a[name]["t"], 0.2)
                    for a, b in zip(rows, rows[1:])]
            rss = [s[name]["rss"] / 2**20 for s in rows]
            out[name] = {
                "cpu_s": round(rows[-1][name]["cpu_s"] - rows[0][name]["cpu_s"], 2),
                "cpu_pct_mean": round(100 * (rows[-1][name]["cpu_s"] - rows[0][name]["cpu_s"])
                                      / max(rows[-1][name]["t"] - rows[0][name]["t"], 1e-9), 1),
                "cpu_pct_max": round(max(pcts), 1) if pcts else 0.0,
                "rss_mib_mean": round(statistics.fmean(rss), 1), "rss_mib_max": round(max(rss), 1),
                "rss_mib_first": round(rss[0], 1), "rss_mib_last": round(rss[-1], 1),
                "fds_max": max(s[name]["fds"] for s in rows), "threads_max": max(s[name]["threads"] for s in rows),
            }
        first, last = window[0], window[-1]
        cores = os.cpu_count() or 1
        busy = [100 * cores * (b["busy"] - a["busy"]) / max(1, b["total"] - a["total"]) for a, b in zip(window, window[1:])]
        watched = sum(out[n]["cpu_pct_mean"] for n in names)
        machine = 100 * cores * (last["busy"] - first["busy"]) / max(1, last["total"] - first["total"])
        out["machine"] = {"cores": cores, "busy_pct_mean": round(machine, 1), "busy_pct_max": round(max(busy), 1),
                          "others_pct_mean": round(machine - watched, 1),
                          "load1_max": round(max(s["load1"] for s in window), 2)}
        return out


# -- the calls ----------------------------------------------------------------------------


@dataclass
class Load:
    """A running sipp that keeps ``concurrent`` calls up until stopped."""

    proc: subprocess.Popen[str]
    workdir: Path
    started: float
    concurrent: int

    def stop(self) -> None:
        """Place no new calls; the calls in progress finish (sipp's soft exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)

    def wait(self, timeout: float) -> dict[str, Any]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        stats = list(csv.DictReader(
            [l for l in (self.workdir / "stats.csv").read_text().splitlines() if l.strip()], delimiter=";"))
        messages = "".join(f.read_text(errors="replace") for f in self.workdir.glob("*messages*"))
        errors = "".join(f.read_text(errors="replace") for f in
                         [*self.workdir.glob("*errors*"), self.workdir / "sipp-stderr.txt"] if f.exists())
        calls = calls_of(messages)
        last = stats[-1] if stats else {}

        def count(name: str) -> int:
            return int(last.get(name, 0) or 0)

        result = {
            "returncode": self.proc.returncode,
            "created": count("TotalCallCreated"), "successful": count("SuccessfulCall(C)"),
            "failed": count("FailedCall(C)"), "retransmissions": count("Retransmissions(C)"),
            "failed_timeout": count("FailedTimeout(C)") if "FailedTimeout(C)" in last else None,
            "failed_max_udp_retrans": count("FailedMaxUDPRetrans(C)"),
            "failed_unexpected": count("FailedUnexpectedMessage(C)"),
            "concurrency": [(_stat_time(r), int(r.get("CurrentCall", 0) or 0)) for r in stats],
            "post_dial_delays_ms": SippResult(self.proc.returncode or 0, [], messages, errors, 0).post_dial_delays_ms(),
            "calls": calls, "errors": errors[-2000:],
        }
        shutil.rmtree(self.workdir, ignore_errors=True)
        return result


def _stat_time(row: dict[str, str]) -> float:
    """Epoch seconds of a sipp statistics row (CurrentTime ends with the epoch)."""
    return float(row.get("CurrentTime", "0").split("\t")[-1])


def calls_of(messages: str) -> dict[str, dict[str, Any]]:
    """Per Call-ID: the number dialled and the final status of the authenticated INVITE."""
    calls: dict[str, dict[str, Any]] = {}
    for _, direction, body in _trace_blocks(messages):
        call_id = _header(body, "Call-ID")
        cseq = _header(body, "CSeq")
        if direction == "sent" and body.startswith("INVITE ") and cseq == "2 INVITE":
            calls.setdefault(call_id, {"number": body.split()[1].split(":", 1)[1].split("@")[0], "status": None})
        elif direction == "received" and cseq == "2 INVITE" and call_id in calls:
            m = re.match(r"SIP/2\.0 (\d{3})", body)
            if m and int(m.group(1)) >= 200 and calls[call_id]["status"] is None:
                calls[call_id]["status"] = int(m.group(1))
    return calls


def start_load(pbx: str, agent: str, password: str, numbers: list[str], concurrent: int, rate: float, hold_s: float,
               answer_timeout_s: int) -> Load:
    """sipp as the agents' phones: the sandbox's answered-call scenario, a number per call."""
    workdir = Path(tempfile.mkdtemp(prefix="livecall-load-"))
    scenario = (SCENARIO_DIR / "agent_call_answered.xml").read_text().replace("[service]", "[field1]")
    (workdir / "load_call.xml").write_text(scenario)
    (workdir / "calls.csv").write_text("SEQUENTIAL\n" + "".join(f"{agent};{n};\n" for n in numbers))
    tone_pcap(workdir / "agent.pcap", AGENT_HZ, hold_s + 1)
    cmd = [
        "sipp", pbx, "-sf", str(workdir / "load_call.xml"), "-inf", str(workdir / "calls.csv"),
        "-au", agent, "-ap", password, "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
        "-l", str(concurrent), "-r", f"{rate:g}", "-d", str(int(hold_s * 1000)), "-m", str(len(numbers)),
        # A call that gets no answer within this is failed (sipp's default waits for ever).
        "-recv_timeout", str(answer_timeout_s * 1000),
        "-trace_msg", "-trace_err", "-trace_stat", "-stf", "stats.csv", "-fd", "1", "-nostdin", "-aa",
    ]
    with open(workdir / "sipp-stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    return Load(proc, workdir, time.time(), concurrent)


# -- the run ------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    status: dict[str, Any]
    sampler: Sampler
    service: Any = None  # tests.integration.harness.Service while mode livecall runs
    next_number: int = 0
    pbx_pid: int | None = None
    pstn_pid: int | None = None
    store: str = "wav"
    db_path: Path = Path("livecall.db")
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-load-")))

    def password(self, endpoint: str) -> str:
        return str(next(e["password"] for e in self.status["endpoints"] if e["name"] == endpoint))

    def take_numbers(self, count: int) -> list[str]:
        if count > len(NUMBERS):
            print(f"note: {count} calls but {len(NUMBERS)} distinct numbers: numbers repeat", file=sys.stderr)
        out = [NUMBERS[(self.next_number + i) % len(NUMBERS)] for i in range(count)]
        self.next_number = (self.next_number + count) % len(NUMBERS)
        return out

    # serve --------------------------------------------------------------------------------

    def start_service(self, store: str = "wav") -> None:
        from tests.integration.harness import Service, load_fresh_lists, open_for_marketing

        db = self.tmp / f"livecall-{store}.db"
        self.db_path = db
        env = {
            # How recordings are kept: "wav" as MixMonitor wrote them, "opus" compacted,
            # "opus-sealed" compacted and encrypted at rest (a new install's default).
            "LIVECALL_RECORDING_FORMAT": "wav" if store == "wav" else "opus",
            "LIVECALL_PROTECTION_ENCRYPT_RECORDINGS": "true" if store.endswith("sealed") else "false",
            "LIVECALL_DATABASE_URL": f"sqlite:///{db}",
            **open_for_marketing(self.tmp),
            "LIVECALL_ASTERISK_ROOT": "sandbox",  # recordings' paths seen through the chroot
            "LIVECALL_CHARGES_CDR_FILE": self.cdr_file(),
        }
        self.service = Service(env, db).start()
        load_fresh_lists(self.service, self.tmp)
        self.sampler.watch("serve", self.service.proc.pid)
        # The follower reads the CDR file from its start: let it catch up before measuring.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self._cdr_backlog() > 0:
            time.sleep(1)

    def cdr_file(self) -> str:
        return str(self.status["cdr_csv"] if self.args.cdr == "master" else self.status["cdr_custom"])

    def _cdr_backlog(self) -> int:
        with self.db() as con:
            try:
                row = con.execute('SELECT "offset" FROM cdr_files').fetchone()
            except sqlite3.OperationalError:
                return 1
        size = Path(self.cdr_file()).stat().st_size if Path(self.cdr_file()).exists() else 0
        return size - (row[0] if row else 0)

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.sampler.watch("serve", None)

    def db(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    # one load -----------------------------------------------------------------------------

    def run(self, mode: str, concurrent: int, duration: float) -> dict[str, Any]:
        a = self.args
        agent = "1001" if mode == "livecall" else "1999"
        notice_s = 11 if mode == "livecall" else 0
        rate = a.rate or max(1.0, concurrent / 10)
        per_call = a.hold + notice_s + 1
        numbers = self.take_numbers(int((concurrent * duration / per_call + concurrent) * 1.5) + 10)
        heard_before = set(os.listdir(self.status["heard_dir"]))
        recordings_before = self._recording_files()
        log_before = self._pbx_log_size()
        print(f"{mode}: {concurrent} concurrent calls for {duration:.0f} s, held {a.hold:g} s, new calls at up to {rate:g}/s",
              file=sys.stderr)
        load = start_load(self.status["sip"], agent, self.password(agent), numbers, concurrent, rate, a.hold,
                          a.answer_timeout)
        self.sampler.watch("sipp", load.proc.pid)
        fd_limits = {n: fd_limit(p) for n, p in (("pbx", self.pbx_pid), ("pstn", self.pstn_pid)) if p}
        deadline = load.started + duration
        while time.time() < deadline and load.proc.poll() is None:
            time.sleep(0.5)
        stopped = time.time()
        load.stop()
        result = load.wait(timeout=a.hold + notice_s + a.answer_timeout + 60)
        self.sampler.watch("sipp", None)
        ended = time.time()
        # The sustained window: from the first second the limit was reached to the stop.
        reached = next((t for t, c in result["concurrency"] if c >= concurrent), None)
        window = (reached or load.started + concurrent / rate, stopped)
        held = [c for t, c in result["concurrency"] if window[0] <= t <= window[1]]
        pdd = result["post_dial_delays_ms"]
        out: dict[str, Any] = {
            "mode": mode, "concurrent": concurrent, "duration_s": duration, "hold_s": a.hold, "rate_cps": rate,
            "attempted": len(result["calls"]), "created": result["created"], "successful": result["successful"],
            "failed": result["failed"], "retransmissions": result["retransmissions"],
            "failed_max_udp_retrans": result["failed_max_udp_retrans"], "failed_unexpected": result["failed_unexpected"],
            "final_statuses": _count(str(c["status"]) for c in result["calls"].values()),
            "sipp_returncode": result["returncode"],
            "concurrency_reached_after_s": round(reached - load.started, 1) if reached else None,
            "concurrency_mean": round(statistics.fmean(held), 1) if held else 0, "concurrency_min": min(held) if held else 0,
            "pdd_ms": {"n": len(pdd), "p50": _r(statistics.median(pdd)) if pdd else None,
                       "p95": _r(percentile(pdd, 95)) if pdd else None, "max": _r(max(pdd)) if pdd else None},
            "processes": self.sampler.summary(*window),
            "fd_limits": fd_limits,
            "pbx_log_warnings": self._pbx_log_warnings(log_before),
            "sipp_errors": result["errors"][-600:] if result["failed"] else "",
        }
        if mode == "livecall":
            out["store"] = self.store
            out["checks"] = self.verify(result["calls"], load.started)
            out["finishing"] = self.finishing_cost(load.started, out["checks"])
            files = self._recording_files() - recordings_before
            size = sum(p.stat().st_size for p in files if p.exists())
            out["recordings_disk"] = {"files": len(files), "mib": round(size / 2**20, 1),
                                      "mib_per_minute": round(size / 2**20 / ((ended - load.started) / 60), 1)}
            if not a.keep_files:
                for p in files:
                    p.unlink(missing_ok=True)
        heard = set(os.listdir(self.status["heard_dir"])) - heard_before
        heard_size = sum(_size(Path(self.status["heard_dir"]) / n) for n in heard)
        out["pstn_heard_disk"] = {"files": len(heard), "mib": round(heard_size / 2**20, 1)}
        if not a.keep_files:
            for n in heard:
                (Path(self.status["heard_dir"]) / n).unlink(missing_ok=True)
        out["verdict"] = verdict(out, a.pdd_limit_ms)
        out["setup_failed"] = setup_failed(out)
        if self.service is not None:
            out["serve_log"] = str(self.service.log_path)
        return out

    # checks -------------------------------------------------------------------------------

    def verify(self, calls: dict[str, dict[str, Any]], started: float) -> dict[str, Any]:
        """Each call: screened (allow), recorded (complete, file on disk, plausible length),
        rated (a statement line). Waits for the recordings' books and the CDR follower."""
        numbers = {c["number"] for c in calls.values()}
        answered = {c["number"] for c in calls.values() if c["status"] == 200}

        def decisions() -> dict[str, sqlite3.Row]:
            with self.db() as con:
                rows = con.execute("SELECT * FROM gate_decisions WHERE decided_at >= ?",
                                   (str(dt.datetime.fromtimestamp(started - 2, dt.timezone.utc))[:19],)).fetchall()
            return {r["dialled"]: r for r in rows if r["dialled"] in numbers}

        def recordings(ids: list[str]) -> dict[str, sqlite3.Row]:
            with self.db() as con:
                marks = ",".join("?" * len(ids))
                return {r["call_id"]: r for r in con.execute(f"SELECT * FROM recordings WHERE call_id IN ({marks})", ids)}

        found = decisions()
        ids = [r["call_id"] for n, r in found.items() if n in answered]
        # Compacted recordings may still be queued for encoding: give the backlog time to drain.
        deadline = time.monotonic() + (60 if self.store == "wav" else 600)
        while time.monotonic() < deadline and any(r["state"] == "recording" for r in recordings(ids).values()):
            time.sleep(1)
        recs = recordings(ids)
        statement: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statement = self._statement_lines(set(ids))
            if len(statement) >= len(ids):
                break
            time.sleep(2)
        with self.db() as con:
            marks = ",".join("?" * len(ids))
            cdrs = {r["uniqueid"]: r for r in con.execute(f"SELECT * FROM cdr_records WHERE uniqueid IN ({marks})", ids)}
            cdr_rows = _count(r[0] for r in con.execute(f"SELECT uniqueid FROM cdr_records WHERE uniqueid IN ({marks})", ids))
        # Recordings not complete, beside their CDR: is the audio short of the call, or late books?
        not_complete = [
            {"call_id": r["call_id"], "state": r["state"], "audio_s": (r["duration_ms"] or 0) / 1000,
             "started_at": r["started_at"], "ended_at": r["ended_at"],
             "cdr_duration_s": cdrs[r["call_id"]]["duration"] if r["call_id"] in cdrs else None,
             "cdr_billsec_s": cdrs[r["call_id"]]["billsec"] if r["call_id"] in cdrs else None}
            for r in recs.values() if r["state"] != "complete"][:10]
        min_ms = self.args.hold * 1000 * 0.95
        short, missing_files = [], []
        for r in recs.values():
            if r["state"] == "complete" and (r["duration_ms"] or 0) < min_ms:
                short.append(r["call_id"])
            host = Path(self.status["chroot"]) / str(r["file"] or "").lstrip("/")
            if r["state"] == "complete" and _size(host) != r["size_bytes"]:
                missing_files.append(r["call_id"])
        sizes = [r["size_bytes"] for r in recs.values() if r["size_bytes"]]
        durations = [r["duration_ms"] for r in recs.values() if r["duration_ms"]]
        # From the hangup (the recording's start plus its length) to its stored file's last
        # write, in hangup order: a growing lag would be a growing backlog.
        lags = []
        for r in recs.values():
            host = Path(self.status["chroot"]) / str(r["file"] or "").lstrip("/")
            if r["state"] == "complete" and host.exists() and r["duration_ms"]:
                begun = dt.datetime.fromisoformat(str(r["started_at"])).replace(tzinfo=dt.timezone.utc).timestamp()
                hangup = begun + r["duration_ms"] / 1000
                lags.append((hangup, host.stat().st_mtime - hangup))
        lag = [v for _, v in sorted(lags)]
        third = max(1, len(lag) // 3)
        rated = [l for l in statement.values() if l["billed_seconds"] > 0 and l["pence_exact"] != "0"]
        return {
            "calls": len(calls), "answered": len(answered),
            "screened_allow": sum(1 for r in found.values() if r["decision"] == "allow"),
            "screened_block": sum(1 for r in found.values() if r["decision"] != "allow"),
            "unscreened": len(numbers - set(found)),
            "gate_elapsed_us_p95": percentile([r["elapsed_us"] for r in found.values()], 95) if found else None,
            "recorded_complete": sum(1 for r in recs.values() if r["state"] == "complete"),
            "recording_states": _count(r["state"] for r in recs.values()),
            "recordings_missing": len(set(ids) - set(recs)),
            "recordings_short": len(short), "recording_file_mismatch": len(missing_files),
            "recording_mib_mean": round(statistics.fmean(sizes) / 2**20, 2) if sizes else None,
            "recording_s_mean": round(statistics.fmean(durations) / 1000, 1) if durations else None,
            "recorded_minutes": sum(durations) / 60000,
            "wav_mib_equivalent": round(sum(44 + 16 * d for d in durations) / 2**20, 1),
            "stored_mib": round(sum(sizes) / 2**20, 1),
            "finish_lag_s": {"p50": round(statistics.median(lag), 2), "p95": round(percentile(lag, 95), 2),
                             "max": round(max(lag), 2), "first_third_mean": round(statistics.fmean(lag[:third]), 2),
                             "last_third_mean": round(statistics.fmean(lag[-third:]), 2)} if lag else None,
            "cdr_rows_per_call": _count(str(cdr_rows.get(i, 0)) for i in ids),
            "not_complete": not_complete,
            "rated": len(rated), "rated_pence": sum(int(l["pence"]) for l in rated if isinstance(l["pence"], int)),
        }

    def finishing_cost(self, started: float, checks: dict[str, Any]) -> dict[str, Any]:
        """serve's CPU from the load's start to now (every recording finished): its own (books,
        hashing, sealing) and its children's (opusenc), per recorded call-minute."""
        rows = [s["serve"] for s in self.sampler.samples if "serve" in s and s["t"] >= started]
        minutes = checks.get("recorded_minutes") or 0
        if len(rows) < 2 or not minutes:
            return {}
        own = rows[-1]["cpu_s"] - rows[0]["cpu_s"]
        children = rows[-1]["children_cpu_s"] - rows[0]["children_cpu_s"]
        return {"seconds": round(rows[-1]["t"] - rows[0]["t"], 1), "recorded_minutes": round(minutes, 1),
                "serve_cpu_s": round(own, 2), "encoder_cpu_s": round(children, 2),
                "serve_cpu_ms_per_call_minute": round(1000 * own / minutes, 1),
                "encoder_cpu_ms_per_call_minute": round(1000 * children / minutes, 1)}

    def _statement_lines(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        today = dt.datetime.now(dt.timezone.utc).date()
        out = subprocess.run(
            [sys.executable, "-m", "livecall_ari.cli", "charges", "--account", "SANDBOX",
             "--from", str(today - dt.timedelta(days=1)), "--to", str(today + dt.timedelta(days=1)), "--json"],
            capture_output=True, text=True, env={**os.environ, **self.service.env}, timeout=300,
        )
        if out.returncode != 0:
            print(f"livecall charges failed: {out.stderr[-500:]}", file=sys.stderr)
            return {}
        return {l["uniqueid"]: l for l in json.loads(out.stdout)["lines"] if l["uniqueid"] in ids}

    def _recording_files(self) -> set[Path]:
        root = Path(self.status["recordings_dir"])
        return {p for ext in ("wav", "ogg") for p in root.glob(f"[0-9]*/[0-9]*/[0-9]*/*.{ext}")} if root.exists() else set()

    def _pbx_log(self) -> Path:
        return Path(self.status["chroot"]) / "var/log/asterisk/messages.log"

    def _pbx_log_size(self) -> int:
        return _size(self._pbx_log())

    def _pbx_log_warnings(self, since: int) -> dict[str, int]:
        """WARNING/ERROR lines the PBX logged during the load, by kind (numbers stripped)."""
        try:
            with open(self._pbx_log(), "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return {}
        kinds = []
        for line in text.splitlines():
            # [date] WARNING[pid][C-0000084f] res_agi.c: FastAGI connection to ... timed out ...
            m = re.search(r"\b(WARNING|ERROR)\[\d+\](?:\[[^\]]*\])? (.*)", line)
            if m:
                kinds.append(f"{m.group(1)} {re.sub(r'[0-9a-f]{6,}|[0-9][0-9.]*', '#', m.group(2))[:110]}")
        return dict(sorted(_count(kinds).items(), key=lambda kv: -kv[1])[:8])


def verdict(r: dict[str, Any], pdd_limit_ms: float) -> list[str]:
    """Why call setup is judged to have failed at this level (empty: it held)."""
    why = []
    if r["failed"]:
        why.append(f"{r['failed']} of {r['created']} calls failed (final statuses {r['final_statuses']})")
    if r["successful"] < r["created"]:
        why.append(f"only {r['successful']} of {r['created']} calls completed")
    if r["pdd_ms"]["p95"] is not None and r["pdd_ms"]["p95"] > pdd_limit_ms:
        why.append(f"post-dial delay p95 {r['pdd_ms']['p95']:.0f} ms > {pdd_limit_ms:.0f} ms")
    if r["concurrency_reached_after_s"] is None:
        why.append(f"never reached {r['concurrent']} concurrent calls")
    checks = r.get("checks")
    if checks:
        n = checks["answered"]
        for key, label in (("screened_allow", "screened"), ("recorded_complete", "recorded"), ("rated", "rated")):
            if checks[key] < n:
                why.append(f"{label}: {checks[key]} of {n} answered calls")
        if checks["recordings_short"] or checks["recording_file_mismatch"]:
            why.append(f"recordings short {checks['recordings_short']}, file mismatch {checks['recording_file_mismatch']}")
    return why


def setup_failed(r: dict[str, Any]) -> bool:
    """Call setup itself failed: a call not set up, not answered, or connected unscreened."""
    checks = r.get("checks") or {}
    return bool(r["failed"] or r["successful"] < r["created"] or r["concurrency_reached_after_s"] is None
                or checks.get("unscreened") or checks.get("screened_block"))


def saturation(r: dict[str, Any]) -> list[str]:
    """What was at its limit during a load: the facts to read beside the verdict."""
    p = r["processes"]
    notes = []
    machine = p.get("machine", {})
    if machine:
        notes.append(f"machine busy {machine['busy_pct_mean']:.0f}% of {100 * machine['cores']}% "
                     f"(max {machine['busy_pct_max']:.0f}%; others {machine['others_pct_mean']:.0f}%)")
    for name in ("pbx", "pstn", "sipp", "serve"):
        if name in p:
            notes.append(f"{name} {p[name]['cpu_pct_mean']:.0f}% (max {p[name]['cpu_pct_max']:.0f}%)")
    for name, limit in r["fd_limits"].items():
        if limit and name in p and p[name]["fds_max"] > 0.8 * limit:
            notes.append(f"{name} fds {p[name]['fds_max']} of {limit}")
    if 4 * r["concurrent"] > 0.8 * 5000:
        notes.append(f"PBX RTP ports: about {4 * r['concurrent']} of 5000 in use")
    if r["retransmissions"]:
        notes.append(f"{r['retransmissions']} SIP retransmissions")
    return notes


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def _r(v: float) -> float:
    return round(v, 1)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return -1


# -- report -------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| mode | concurrent (held mean/min) | calls ok/created | PDD p50 / p95 ms | serve CPU % mean/max, RSS MiB max "
            "| PBX CPU %, RSS MiB max | PSTN CPU % | sipp CPU % | machine busy % (others) | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        p = r["processes"]

        def cpu(name: str, rss: bool = False) -> str:
            if name not in p:
                return "-"
            s = f"{p[name]['cpu_pct_mean']:.0f} / {p[name]['cpu_pct_max']:.0f}"
            return s + (f", {p[name]['rss_mib_max']:.0f}" if rss else "")

        m = p.get("machine", {})
        rows.append(
            f"| {r['mode']}{' (' + r['store'] + ')' if 'store' in r else ''} | {r['concurrent']} ({r['concurrency_mean']:.0f}/{r['concurrency_min']}) "
            f"| {r['successful']}/{r['created']} | {r['pdd_ms']['p50']} / {r['pdd_ms']['p95']} "
            f"| {cpu('serve', True)} | {cpu('pbx', True)} | {cpu('pstn')} | {cpu('sipp')} "
            f"| {m.get('busy_pct_mean', '-')} ({m.get('others_pct_mean', '-')}) | {'; '.join(r['verdict']) or 'ok'} |")
    return "\n".join(rows)


def checks_text(r: dict[str, Any]) -> str:
    c = r["checks"]
    return (f"{r['mode']} {r['concurrent']}: {c['calls']} calls, {c['answered']} answered; screened allow "
            f"{c['screened_allow']} (block {c['screened_block']}, unscreened {c['unscreened']}); recorded complete "
            f"{c['recorded_complete']} {c['recording_states']} (missing {c['recordings_missing']}, short "
            f"{c['recordings_short']}, file mismatch {c['recording_file_mismatch']}; mean {c['recording_s_mean']} s, "
            f"{c['recording_mib_mean']} MiB); rated {c['rated']} ({c['rated_pence']}p; CDR rows per call "
            f"{c['cdr_rows_per_call']}); recordings on disk {r['recordings_disk']['mib_per_minute']} MiB/min; "
            f"kept as {r.get('store', 'wav')}: {c['stored_mib']} MiB for {c['wav_mib_equivalent']} MiB of WAV; finish lag "
            f"{c['finish_lag_s']}; finishing {r.get('finishing')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="settings file (default: $LIVECALL_CONFIG)")
    parser.add_argument("--mode", choices=("livecall", "baseline", "both"), default="both")
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--duration", type=float, default=600, help="seconds of sustained load (per ramp step)")
    parser.add_argument("--hold", type=float, default=45, help="seconds each call is held once answered")
    parser.add_argument("--rate", type=float, default=0, help="new calls per second (default: concurrent/10)")
    parser.add_argument("--ramp", default="", help="concurrency levels, e.g. 50,100,150,200: stop at the first that fails")
    parser.add_argument("--stop-on", choices=("setup", "any"), default="setup",
                        help="ramp: stop at the first level where call setup fails, or where anything is wrong")
    parser.add_argument("--pdd-limit-ms", type=float, default=1000, help="p95 post-dial delay counted as failed setup")
    parser.add_argument("--answer-timeout", type=int, default=60, help="seconds a call may wait for its answer")
    parser.add_argument("--cdr", choices=("master", "livecall"), default="master",
                        help="CDR file the follower reads: Master.csv, or LiveCall's cdr_custom livecall.csv")
    parser.add_argument("--store", default="wav",
                        help="livecall mode: how recordings are kept, one run each: wav, opus, opus-sealed (e.g. wav,opus-sealed)")
    parser.add_argument("--keep-files", action="store_true", help="keep the run's recordings and the PSTN's files")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.config:
        os.environ["LIVECALL_CONFIG"] = str(Path(args.config).resolve())

    from livecall_ari.config import load
    from livecall_ari.sandbox.sandbox import PBX, PSTN, Sandbox

    sandbox = Sandbox(load())
    status = sandbox.status()
    if not all(status["running"].values()):
        sys.exit(f"the sandbox is not up ({status['running']}): run `livecall sandbox up`")
    sampler = Sampler()
    bench = Bench(args, status, sampler, pbx_pid=sandbox._pid(PBX), pstn_pid=sandbox._pid(PSTN))
    sampler.watch("pbx", bench.pbx_pid)
    sampler.watch("pstn", bench.pstn_pid)
    sampler.start()
    modes = ["livecall", "baseline"] if args.mode == "both" else [args.mode]
    levels = [int(x) for x in args.ramp.split(",")] if args.ramp else [args.concurrent]
    results: list[dict[str, Any]] = []
    broke: dict[str, dict[str, Any]] = {}  # the first level where call setup failed
    degraded: dict[str, dict[str, Any]] = {}  # the first level with anything in its verdict
    try:
        runs = [(m, store) for m in modes for store in (args.store.split(",") if m == "livecall" else ["-"])]
        for mode, store in runs:
            if mode == "livecall":
                bench.store = store
                bench.start_service(store)
            try:
                for level in levels:
                    r = bench.run(mode, level, args.duration)
                    r["saturation"] = saturation(r)
                    results.append(r)
                    print(table([r]).splitlines()[-1], file=sys.stderr)
                    if args.ramp and r["verdict"] and mode not in degraded:
                        degraded[mode] = r
                    if args.ramp and (r["setup_failed"] or (args.stop_on == "any" and r["verdict"])):
                        broke[mode] = r
                        break
                    if args.ramp:
                        time.sleep(5)  # the last calls' books settle, the PBX's channels go
            finally:
                bench.stop_service()
    finally:
        sampler.stop()
        if not args.keep_files:
            shutil.rmtree(bench.tmp, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    machine = f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    print(f"machine: {machine}; load average now {os.getloadavg()}")
    print(table(results))
    for r in results:
        if "checks" in r:
            print(checks_text(r))
        threads = {n: r["processes"][n]["threads_max"] for n in ("pbx", "pstn", "sipp") if n in r["processes"]}
        print(f"{r['mode']} {r['concurrent']}: threads max {threads}; PBX log {r['pbx_log_warnings'] or 'clean'}; "
              f"PSTN files {r['pstn_heard_disk']['mib']} MiB")
    by = {(r["mode"], r["concurrent"]): r for r in results}
    for level in levels:
        lc, base = by.get(("livecall", level)), by.get(("baseline", level))
        if lc and base and lc["pdd_ms"]["p95"] is not None and base["pdd_ms"]["p95"] is not None:
            print(f"{level} concurrent: LiveCall adds {lc['pdd_ms']['p50'] - base['pdd_ms']['p50']:+.1f} ms at p50, "
                  f"{lc['pdd_ms']['p95'] - base['pdd_ms']['p95']:+.1f} ms at p95 of post-dial delay")
    if args.ramp:
        for mode in modes:
            if mode in degraded:
                r = degraded[mode]
                print(f"{mode}: first trouble at {r['concurrent']} concurrent: {'; '.join(r['verdict'])}. "
                      f"During it: {'; '.join(r['saturation'])}")
            if mode in broke:
                r = broke[mode]
                print(f"{mode}: call setup failed at {r['concurrent']} concurrent: {'; '.join(r['verdict'])}. "
                      f"During it: {'; '.join(r['saturation'])}")
            else:
                print(f"{mode}: call setup held at every level up to {levels[-1]}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "args": vars(args) | {"json": str(args.json)},
                                         "results": results, "broke": {m: r["concurrent"] for m, r in broke.items()},
                                         "degraded": {m: r["concurrent"] for m, r in degraded.items()}},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()
