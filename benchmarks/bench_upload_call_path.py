"""Call decisions while the portal takes a 100 MB list upload (issue 16): 20 concurrent calls
through the gate with and without an upload running, in the same session.

One `livecall serve` of its own (fresh SQLite database, calling hours open now, fresh lists in a
folder of its own); its portal runs in the web process serve starts. A portal admin uploads a
100 MB TPS full file (7.5 million numbers) again and again from a thread during the "upload"
phase. In each phase two sipp phones keep 10 calls each in flight: agent 1003 through the gate's
FastAGI entry (marketing, screened against the lists) and agent 1002 through the Stasis entry;
every call is cancelled once it rings. Phases alternate (quiet, upload, quiet, upload, ...).

Reported per phase and entry: p50/p95 of the post-dial delay sipp measures (INVITE to first 18x:
it includes any wait for the gate's event loop) and of the gate's own decision time
(``gate_decisions.elapsed_us``); after each phase's calls (the upload still running), ``--probes``
FastAGI ``screen`` requests sent straight to serve, timed to its answer (the decision as Asterisk
waits for it, loop included, without Asterisk); the uploads completed and the machine's load. Needs the sandbox
up and its settings in $LIVECALL_CONFIG. Usage:

    python benchmarks/bench_upload_call_path.py [--calls 100] [--rounds 2] [--upload-mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the integration tests' helpers (serve, lists, uploads)

from tests.conftest import until  # noqa: E402
from tests.integration.harness import Service, load_fresh_lists, open_for_marketing  # noqa: E402
from tests.integration.uploads import (  # noqa: E402
    Uploader, add_admin, agi_decision_ms, decision_times_us, last_decision_id, percentile, place_calls, portal_pid, summary, write_tps_file,
)


def answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100, help="calls per phase (half per entry)")
    parser.add_argument("--concurrent", type=int, default=20, help="calls in flight (half per entry)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two phases")
    parser.add_argument("--upload-mb", type=int, default=100)
    parser.add_argument("--probes", type=int, default=100, help="FastAGI requests sent straight to serve per phase")
    args = parser.parse_args()

    from livecall_ari.config import load

    status = json.loads(subprocess.run([sys.executable, "-m", "livecall_ari.cli", "sandbox", "status", "--json"],
                                       capture_output=True, text=True, check=True).stdout)
    passwords = {e["name"]: e["password"] for e in status["endpoints"]}
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    web, agi = load().web, load().fastagi
    base = f"http://{web.host}:{web.port}"
    upload = work / "tps-bench.txt"
    count = write_tps_file(upload, args.upload_mb)
    db = work / "livecall.db"
    service = Service({"LIVECALL_DATABASE_URL": f"sqlite:///{db}", "LIVECALL_LOG_LEVEL": "warning",
                       **open_for_marketing(work)}, db)
    service.start()
    loads: dict[str, list[float]] = {}
    results: dict[tuple[str, str], list[float]] = {}
    uploads: list[tuple[int, float]] = []
    try:
        until(lambda: answers(f"{base}/healthz"), timeout=60, what="the portal")
        assert service.proc is not None
        print(f"serve pid {service.proc.pid}, web process pid {portal_pid(service.proc.pid)}", file=sys.stderr)
        load_fresh_lists(service, work)
        env = {**os.environ, **service.env}
        add_admin(env)
        per_agent, in_flight = args.calls // 2, args.concurrent // 2
        place_calls(status["sip"], passwords, 5, 5)  # warm up both entries
        for _ in range(args.rounds):
            for phase in ("quiet", "upload"):
                uploader = Uploader(base, upload).start() if phase == "upload" else None
                if uploader is not None:
                    assert uploader.first_started.wait(60)
                    time.sleep(0.5)  # the upload's body is streaming when the first call is placed
                first = last_decision_id(db)
                loads.setdefault(phase, []).append(os.getloadavg()[0])
                pdd = place_calls(status["sip"], passwords, per_agent, in_flight)
                probes = agi_decision_ms(agi.port, agi.secret, args.probes)
                if uploader is not None:
                    uploader.stop()
                    uploads += list(zip(uploader.statuses, uploader.seconds))
                results.setdefault((phase, "fastagi request to answer ms (no Asterisk)"), []).extend(probes)
                for entry, values in pdd.items():
                    results.setdefault((phase, f"{entry} post-dial delay ms"), []).extend(values)
                for entry, micros in decision_times_us(db, first).items():
                    results.setdefault((phase, f"{entry} decision ms"), []).extend(m / 1000 for m in micros)
    finally:
        service.stop()

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"load average (1 min) at each phase's start: " + "; ".join(f"{k}: {', '.join(f'{v:.1f}' for v in vs)}"
                                                                        for k, vs in loads.items()))
    print(f"uploads during the upload phases: {len(uploads)} of {args.upload_mb} MB ({count:,} numbers), "
          f"statuses {sorted(set(s for s, _ in uploads))}, "
          f"{min((t for _, t in uploads), default=0):.1f}-{max((t for _, t in uploads), default=0):.1f} s each")
    print(f"| measure | without upload | with {args.upload_mb} MB upload running | p95 difference |")
    print("|---|---|---|---|")
    for measure in sorted({m for _, m in results}):
        quiet, busy = results.get(("quiet", measure), []), results.get(("upload", measure), [])
        if quiet and busy:
            print(f"| {measure} | {summary(quiet)} | {summary(busy)} | {percentile(busy, 95) - percentile(quiet, 95):+.2f} |")


if __name__ == "__main__":
    main()
