"""Post-dial delay the gate adds, measured against the real sandbox.

The same call (a sipp desk phone with digest auth → PBX → trunk → simulated PSTN) is placed
with LiveCall's gate in the path (agent 1002, service purpose, through the Stasis entry and the
configured decider) and without it (the sandbox's benchmark phone 1999, whose context dials the
trunk directly). Post-dial delay: from sending the authenticated INVITE to receiving the first
18x (the PSTN rings as soon as the INVITE reaches it), from the microsecond timestamps of sipp's
message trace (its own response-time timers count in whole ticks of about 4 ms). Runs alternate between
the two paths, at 1 and at 20 concurrent calls, and report p50 and p95 of each and the
difference.

Needs the sandbox up (`livecall sandbox up`) and the settings in $LIVECALL_CONFIG; starts its
own `livecall serve` with a throwaway database. Usage:

    python benchmarks/bench_post_dial_delay.py [--calls 60] [--concurrent-calls 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from livecall_ari.config import load
from livecall_ari.sandbox.sipp import start_call

NUMBER = "02079460980"  # rings and never answers (the simulated PSTN)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


PBX = "127.0.0.1:5060"


def run(agent: str, password: str, calls: int, concurrent: int) -> list[float]:
    rate = None if concurrent == 1 else float(concurrent)
    # Each call is cancelled once it rings: post-dial delay ends at the first 18x, and an answered
    # call would first play the ~10 s recording notice to the called party.
    result = start_call(
        NUMBER, agent, password, scenario="agent_call_cancelled.xml", hold_ms=300 if concurrent > 1 else 50,
        calls=calls, concurrent=concurrent, rate=rate, timeout=300, trace_messages=True, pbx=PBX,
    ).wait(timeout=600)
    if result.returncode != 0:
        sys.exit(f"sipp failed for agent {agent}: {result.errors[-500:]}")
    times = result.post_dial_delays_ms()
    if len(times) != calls:
        sys.exit(f"expected {calls} setup times for agent {agent}, got {len(times)}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=60, help="calls per path at 1 concurrent call")
    parser.add_argument("--concurrent-calls", type=int, default=200, help="calls per path at 20 concurrent")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two paths")
    args = parser.parse_args()

    settings = load()
    status = json.loads(subprocess.run([sys.executable, "-m", "livecall_ari.cli", "sandbox", "status", "--json"],
                                       capture_output=True, text=True, check=True).stdout)
    passwords = {e["name"]: e["password"] for e in status["endpoints"]}
    global PBX
    PBX = status["sip"]
    db = Path(tempfile.mkdtemp(prefix="bench-pdd-")) / "livecall.db"
    env = {**os.environ, "LIVECALL_DATABASE_URL": f"sqlite:///{db}"}
    serve = subprocess.Popen([sys.executable, "-m", "livecall_ari.cli", "serve", "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = httpx.get(f"{settings.ari.url}/ari/applications", auth=(settings.ari.user, settings.ari.password))
            if any(a["name"] == settings.ari.app for a in r.json()):
                break
            time.sleep(0.2)
        else:
            sys.exit("livecall serve did not register")
        results: dict[tuple[str, int], list[float]] = {}
        for concurrent, calls in ((1, args.calls), (20, args.concurrent_calls)):
            run("1002", passwords["1002"], 5, 1)  # warm up both paths
            run("1999", passwords["1999"], 5, 1)
            for _ in range(args.rounds):
                for path, agent in (("direct", "1999"), ("gate", "1002")):
                    results.setdefault((path, concurrent), []).extend(run(agent, passwords[agent], calls // args.rounds, concurrent))
    finally:
        serve.terminate()
        serve.wait(10)

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print("| concurrent calls | path | calls | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    for concurrent in (1, 20):
        for path in ("direct", "gate"):
            v = results[(path, concurrent)]
            print(f"| {concurrent} | {path} | {len(v)} | {statistics.median(v):.2f} | {percentile(v, 95):.2f} |")
        d, g = results[("direct", concurrent)], results[("gate", concurrent)]
        print(f"| {concurrent} | **gate adds** | | {statistics.median(g) - statistics.median(d):+.2f} | {percentile(g, 95) - percentile(d, 95):+.2f} |")


if __name__ == "__main__":
    main()
