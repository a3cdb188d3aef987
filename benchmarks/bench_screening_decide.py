"""Benchmark: one screening decision in-process, with 20M TPS, 1M CTPS and 100k objections.

Run: python benchmarks/bench_screening_decide.py [--tps 20000000] [--ctps 1000000]
     [--objections 100000] [--calls 200000]

Generates its lists into a temporary directory (nothing is kept), imports them through the
same code as ``livecall lists import``, builds the decider ``livecall serve`` uses, and times
``decide()`` per call. The baselines (a Python set lookup, an indexed SQLite lookup through
sqlite3) are measured in the same run, and each figure is printed beside them as a ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livecall_ari import config  # noqa: E402
from livecall_ari.app import App  # noqa: E402
from livecall_ari.gate.core import CallAttempt  # noqa: E402
from livecall_ari.screening.services import build_decider, list_files  # noqa: E402

UTC = dt.timezone.utc


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def random_nationals(rng: np.random.Generator, count: int) -> np.ndarray:
    """Distinct-ish 11-digit UK geographic/mobile numbers as integers of their 10 digits after 0."""
    first = rng.choice(np.array([1, 2, 7], dtype=np.int64), size=count)
    rest = rng.integers(0, 10**9, size=count, dtype=np.int64)
    return first * 10**9 + rest


def write_file(path: Path, nsn: np.ndarray) -> None:
    """Write "without spaces" records (12 characters, CRLF) fast, with numpy."""
    text = np.char.add(np.char.add("0", nsn.astype("U10")), np.array(" \r\n"))
    with open(path, "wb") as out:
        for start in range(0, nsn.shape[0], 1_000_000):
            out.write("".join(text[start:start + 1_000_000].tolist()).encode())


def write_file_fast(path: Path, nsn: np.ndarray) -> None:
    records = np.empty((nsn.shape[0], 14), dtype=np.uint8)
    records[:, 0] = ord("0")
    value = nsn.copy()
    for column in range(10, 0, -1):
        records[:, column] = 48 + (value % 10)
        value //= 10
    records[:, 11] = ord(" ")
    records[:, 12] = 13
    records[:, 13] = 10
    records.tofile(path)


def percentiles(samples_ns: np.ndarray) -> tuple[float, float, float]:
    us = samples_ns / 1000.0
    return float(np.percentile(us, 50)), float(np.percentile(us, 99)), float(np.mean(us))


def baseline_set(rng: np.random.Generator, size: int, probes: int) -> float:
    members = set(random_nationals(rng, size).tolist())
    keys = random_nationals(rng, probes).tolist()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter_ns()
        for key in keys:
            _ = key in members
        best = min(best, (time.perf_counter_ns() - started) / probes / 1000)
    return best


def baseline_sqlite(directory: Path, rng: np.random.Generator, size: int, probes: int) -> float:
    conn = sqlite3.connect(directory / "baseline.db")
    conn.execute("CREATE TABLE numbers (n INTEGER)")
    conn.executemany("INSERT INTO numbers VALUES (?)", ((int(n),) for n in random_nationals(rng, size)))
    conn.execute("CREATE INDEX numbers_n ON numbers (n)")
    conn.commit()
    keys = random_nationals(rng, probes).tolist()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter_ns()
        for key in keys:
            conn.execute("SELECT 1 FROM numbers WHERE n = ?", (key,)).fetchone()
        best = min(best, (time.perf_counter_ns() - started) / probes / 1000)
    conn.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=20_000_000)
    parser.add_argument("--ctps", type=int, default=1_000_000)
    parser.add_argument("--objections", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(20250301)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="livecall-bench-") as tmp:
        directory = Path(tmp)
        settings = config.load(directory / "livecall.toml", environ={"LIVECALL_DATA_DIR": str(directory)})
        app = App(settings)
        now = dt.datetime.now(UTC)
        tps = random_nationals(rng, args.tps)
        ctps = random_nationals(rng, args.ctps)
        started = time.perf_counter()
        write_file_fast(directory / "tps.txt", tps)
        write_file_fast(directory / "ctps.txt", ctps)
        files = list_files(app)
        for name in ("tps", "ctps"):
            report = files.import_file(name, directory / f"{name}.txt", delta=False, list_date=now.date(), now=now)
            print(f"loaded {name}: {report.count:,} numbers in {report.seconds:.1f} s")
            (directory / f"{name}.txt").unlink()
        objected = random_nationals(rng, args.objections)
        store = list_files(app).store
        store.add_objections_bulk(settings.organisation.id, (int(44 * 10**10 + n) for n in objected), now, "bench", "bench")
        print(f"loaded {args.objections:,} objections; setup {time.perf_counter() - started:.1f} s")

        decider = build_decider(app)
        # A realistic mix: a third listed on the TPS, some CTPS and objections, written as agents dial.
        pool = np.concatenate([
            rng.choice(tps, args.calls // 3), rng.choice(ctps, args.calls // 10),
            rng.choice(objected, args.calls // 20), random_nationals(rng, args.calls),
        ])[: args.calls]
        rng.shuffle(pool)
        forms = ("0{}", "+44 {}", "0044{}", "(0{})")
        dialled = [forms[i % 4].format(int(n)) for i, n in enumerate(pool.tolist())]
        # Weekday 10:00 London, so every rule is evaluated (hours, holidays, lists, caller ID).
        at = dt.datetime(2025, 3, 4, 10, 0, tzinfo=UTC) if now.date() > dt.date(2025, 3, 4) else now
        at = now.replace(hour=10, minute=0) if now.weekday() < 5 else at
        attempts = [CallAttempt(f"c{i}", "agent", d, "marketing", at, "+442079460000", settings.organisation.id)
                    for i, d in enumerate(dialled)]
        for attempt in attempts[:2000]:  # warm up page cache and allocators
            decider.decide(attempt)
        samples = np.empty(len(attempts), dtype=np.int64)
        blocked = 0
        clock = time.perf_counter_ns
        for i, attempt in enumerate(attempts):
            started_ns = clock()
            decision = decider.decide(attempt)
            samples[i] = clock() - started_ns
            blocked += not decision.allowed
        p50, p99, mean = percentiles(samples)
        print(f"decisions: {len(attempts):,} ({blocked:,} blocked), distinct dialled strings (memo cold)")
        # Where the time goes (means over the same attempts, memo now warm for the parse).
        view = decider.lists.current()
        parts = {
            "change check (revision file)": lambda a: decider.lists.current(),
            "number parse (cold, no memo)": lambda a: decider.screener.parser.parse(a.dialled),
            "rules with lists (memo warm)": lambda a: decider.screener.screen(a, view),
        }
        for label, part in parts.items():
            started_ns = clock()
            for attempt in attempts[:50_000]:
                part(attempt)
            print(f"  {label}: {(clock() - started_ns) / 50_000 / 1000:.1f} µs mean")

        set_us = baseline_set(rng, 1_000_000, 200_000)
        sqlite_us = baseline_sqlite(directory, rng, 1_000_000, 100_000)
        budget = 50.0
        print()
        print("| figure | value | baseline: Python set lookup | ratio | baseline: indexed SQLite (sqlite3) | ratio |")
        print("|---|---|---|---|---|---|")
        for label, value in (("decide() p50", p50), ("decide() p99", p99), ("decide() mean", mean)):
            print(f"| {label} | {value:.1f} µs | {set_us:.2f} µs | {value / set_us:.0f}x | {sqlite_us:.1f} µs | {value / sqlite_us:.2f}x |")
        print()
        verdict = "met" if p99 <= budget else "NOT met"
        print(f"budget: p99 <= {budget:.0f} µs: {verdict} (p99 {p99:.1f} µs)")
        app.close()


if __name__ == "__main__":
    main()
