"""Benchmark: import and rate N CDRs end to end, beside merely reading the file with csv.

    python benchmarks/bench_charges_import.py [--records 1000000] [--accounts 20]

Generates a Master.csv of N chronological CDRs (a realistic mix: mostly distinct UK mobile and
landline numbers, some unanswered, internal, freephone, 08/09 and international calls) in a
temporary directory (or --data-dir, e.g. benchmarks/data/, which git ignores), then in the same
run and each in a fresh process:

1. baseline: read the file with the csv module (every row, nothing else);
2. end to end: ``livecall cdr import`` into a fresh SQLite database (parse, classify, store,
   exactly-once bookkeeping), then rate every account's statement for the whole period;
3. the same end to end on N/5 records, to show that peak memory does not grow with the file.

Prints the timings, the ratio end-to-end / baseline and peak RSS of each child.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
START = dt.datetime(2025, 1, 1, 8, 0, tzinfo=LONDON)


def _number(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return f"07{rng.choice('4589')}{rng.randrange(10**8):08d}"
    if r < 0.80:
        return f"0{rng.choice('12')}{rng.randrange(10**9):09d}"
    if r < 0.85:
        return f"03{rng.randrange(10**9):09d}"
    if r < 0.88:
        return f"080{rng.choice('08')}{rng.randrange(10**7):07d}"
    if r < 0.90:
        return f"08{rng.choice('47')}{rng.randrange(10**8):08d}"
    if r < 0.91:
        return f"09{rng.randrange(10**9):09d}"
    if r < 0.95:
        return f"{rng.randrange(2000, 2100)}"
    return rng.choice(["0033", "00353", "001", "0049", "0061"]) + f"{rng.randrange(10**9):09d}"


def _local(at: dt.datetime) -> str:
    return at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M:%S")


def generate(path: Path, records: int, accounts: int, seed: int = 1) -> None:
    """N CDRs over ~4 months, in start order, as cdr_csv writes them."""
    rng = random.Random(seed)
    at = START.astimezone(dt.timezone.utc)  # step in UTC: local wall time has gaps and repeats
    step = dt.timedelta(seconds=max(1, int(120 * 86400 / records)))
    with path.open("w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(records):
            at += step if rng.random() < 0.9 else step * 3
            ring = rng.randrange(0, 30)
            billsec = 0 if rng.random() < 0.15 else int(rng.expovariate(1 / 150)) + 1
            start = _local(at)
            answer = _local(at + dt.timedelta(seconds=ring)) if billsec else ""
            end = _local(at + dt.timedelta(seconds=ring + billsec))
            dst = _number(rng)
            agent = 1000 + i % 300
            w.writerow(
                (
                    f"acc{i % accounts:02d}", str(agent), dst, "livecall-agents", f'"Agent {agent}" <{agent}>',
                    f"PJSIP/{agent}-{i:08x}", f"PJSIP/trunk-{i:08x}", "Dial", f"PJSIP/{dst}@trunk,60",
                    start, answer, end, ring + billsec, billsec, "ANSWERED" if billsec else "NO ANSWER",
                    "DOCUMENTATION", f"{int(at.timestamp())}.{i}", "",
                )
            )  # fmt: skip


def child_csv(path: Path) -> dict[str, float]:
    t = time.perf_counter()
    rows = 0
    with path.open(newline="") as f:
        for _row in csv.reader(f):
            rows += 1
    return {"seconds": time.perf_counter() - t, "rows": rows, "maxrss_mb": _maxrss_mb()}


def child_end_to_end(path: Path, data_dir: Path) -> dict[str, float]:
    from livecall_ari.app import App
    from livecall_ari.charges import services
    from livecall_ari.config import Settings

    app = App(Settings(data_dir=str(data_dir)))
    app.database()  # open and migrate before the clock starts
    t0, c0 = time.perf_counter(), os.times()
    result = services.import_cdrs(app, path)
    t1, c1 = time.perf_counter(), os.times()
    first, last = START.date(), (START + dt.timedelta(days=200)).date()
    net = calls = 0
    tariff = services.tariff(app)
    for s in services.all_statements(app, first, last, "daily", keep_lines=False, rate_with=tariff).values():
        net += s.net_pence
        calls += s.calls
    t2, c2 = time.perf_counter(), os.times()
    app.close()
    return {
        "import_cpu": c1.user + c1.system - c0.user - c0.system,
        "parsers_cpu": c1.children_user + c1.children_system - c0.children_user - c0.children_system,
        "parsers_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rate_cpu": c2.user + c2.system - c1.user - c1.system,
        "import_seconds": t1 - t0,
        "rate_seconds": t2 - t1,
        "seconds": t2 - t0,
        "inserted": result.inserted,
        "bad": result.bad_count,
        "billed_calls": calls,
        "net_pence": net,
        "maxrss_mb": _maxrss_mb(),
    }


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the generated files here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_csv(Path(rest[0])) if kind == "csv" else child_end_to_end(Path(rest[0]), Path(rest[1]))
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="livecall-bench-") as tmp:
        base = args.data_dir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        big, small = base / "Master-big.csv", base / "Master-small.csv"
        t = time.perf_counter()
        generate(big, args.records, args.accounts)
        generate(small, max(args.records // 5, 1), args.accounts)
        print(f"generated {args.records:,} + {args.records // 5:,} CDRs in {time.perf_counter() - t:.1f} s "
              f"({big.stat().st_size / 2**20:.0f} MiB)")  # fmt: skip
        for db in ("db-big", "db-small"):
            for leftover in (base / db).glob("*"):
                leftover.unlink()
        load_before = os.getloadavg()[0]
        baseline = _run_child("csv", str(big))
        e2e = _run_child("e2e", str(big), str(base / "db-big"))
        e2e_small = _run_child("e2e", str(small), str(base / "db-small"))

    print(f"machine: {os.cpu_count()} cores, {_cpu_model()}, Python {platform.python_version()}, "
          f"load average {load_before:.2f} before the runs, {os.getloadavg()[0]:.2f} after")  # fmt: skip
    print(f"csv.reader only:       {baseline['seconds']:7.2f} s  ({baseline['rows']:,} rows, peak RSS {baseline['maxrss_mb']:.0f} MiB)")
    print(f"import:                {e2e['import_seconds']:7.2f} s  ({e2e['inserted']:,} records, {e2e['bad']} bad)")
    print(f"rate all statements:   {e2e['rate_seconds']:7.2f} s  ({e2e['billed_calls']:,} billed calls, net {e2e['net_pence']:,}p)")
    print(f"end to end:            {e2e['seconds']:7.2f} s  (peak RSS {e2e['maxrss_mb']:.0f} MiB)")
    print(f"CPU seconds:           import {e2e['import_cpu']:.2f} in this process + {e2e['parsers_cpu']:.2f} in the parser processes "
          f"(peak RSS {e2e['parsers_maxrss_mb']:.0f} MiB each at most), rating {e2e['rate_cpu']:.2f}")  # fmt: skip
    print(f"ratio end-to-end / csv: {e2e['seconds'] / baseline['seconds']:6.2f}x")
    print(f"N/5 end to end:        {e2e_small['seconds']:7.2f} s  (peak RSS {e2e_small['maxrss_mb']:.0f} MiB; "
          f"peak RSS ratio N vs N/5: {e2e['maxrss_mb'] / e2e_small['maxrss_mb']:.2f})")  # fmt: skip
    print(f"limit 10 s: {'PASS' if e2e['seconds'] <= 10 else 'FAIL'}")


if __name__ == "__main__":
    main()
