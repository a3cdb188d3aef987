"""Benchmark: TPS imports. A full 20-million-line file, then a 50,000-line change file.

Run: python benchmarks/bench_screening_import.py [--lines 20000000] [--changes 50000]

Generates the files into a temporary directory (nothing is kept) and runs each import as
``livecall lists import`` in a child process, so the wall time and the peak memory (the child's
maximum resident set) are those of the real command. The baseline, measured in the same run,
is parsing the same lines one by one with ``phonenumbers.parse`` (timed on a sample and scaled),
the approach the issue says cannot reach the budget.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import phonenumbers

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def records(nsn: np.ndarray, with_spaces: bool) -> np.ndarray:
    """12-character records plus CRLF for 10-digit national significant numbers (0 prepended)."""
    out = np.full((nsn.shape[0], 14), ord(" "), dtype=np.uint8)
    digits = np.empty((nsn.shape[0], 11), dtype=np.uint8)
    digits[:, 0] = ord("0")
    value = nsn.copy()
    for column in range(10, 0, -1):
        digits[:, column] = 48 + (value % 10)
        value //= 10
    if with_spaces:  # 0207 3787244: a 5-character code field, then 7 right-justified
        out[:, 0:4] = digits[:, 0:4]
        out[:, 5:12] = digits[:, 4:11]
    else:
        out[:, 0:11] = digits
    out[:, 12] = 13
    out[:, 13] = 10
    return out


def write_full(path: Path, nsn: np.ndarray) -> None:
    with open(path, "wb") as f:
        for start in range(0, nsn.shape[0], 2_000_000):
            part = nsn[start:start + 2_000_000]
            records(part, with_spaces=(start // 2_000_000) % 2 == 0).tofile(f)


def run_import(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of one `livecall lists import` child process."""
    code = (
        "import resource, sys, time; from livecall_ari.cli import main; t = time.perf_counter();\n"
        "try:\n    main(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n    print('WALL', time.perf_counter() - t, 'RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "lists", "import", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"import failed: {done.stderr}")
    rss_kib = int(done.stderr.rsplit("RSS", 1)[1].split()[0])
    return wall, rss_kib / 1024, done.stdout.strip()


def phonenumbers_rate(lines: list[str]) -> float:
    """Seconds per line to parse TPS records with phonenumbers.parse (the baseline)."""
    started = time.perf_counter()
    for line in lines:
        phonenumbers.parse(line.replace(" ", ""), "GB")
    return (time.perf_counter() - started) / len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000_000)
    parser.add_argument("--changes", type=int, default=50_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="livecall-bench-") as tmp:
        directory = Path(tmp)
        env = dict(os.environ, LIVECALL_CONFIG=str(directory / "livecall.toml"), LIVECALL_DATA_DIR=str(directory),
                   PYTHONPATH=str(ROOT))
        nsn = rng.choice(np.array([1, 2, 7], dtype=np.int64), args.lines) * 10**9 + rng.integers(0, 10**9, args.lines)
        full = directory / "tps-2025-03-01.txt"
        started = time.perf_counter()
        write_full(full, nsn)
        print(f"generated {args.lines:,} lines ({full.stat().st_size / 2**20:.0f} MiB, both layouts) in {time.perf_counter() - started:.1f} s")

        full_wall, full_rss, full_out = run_import(env, "tps", str(full))
        print(full_out)

        deletions = rng.choice(nsn, args.changes // 2, replace=False)
        additions = rng.choice(np.array([1, 2, 7], dtype=np.int64), args.changes - deletions.shape[0]) * 10**9 + rng.integers(0, 10**9, args.changes - deletions.shape[0])
        change = directory / "tps-changes-2025-03-08.txt"
        with open(change, "wb") as f:
            for value, mark in [(int(v), "D") for v in deletions] + [(int(v), "A") for v in additions]:
                f.write(f"0{value:010d}  {mark}\r\n".encode())
        delta_wall, delta_rss, delta_out = run_import(env, "tps", str(change), "--delta")
        print(delta_out)

        sample = [bytes(r[:12]).decode() for r in records(nsn[:50_000], True)]
        per_line = phonenumbers_rate(sample)
        base_full = per_line * args.lines
        base_delta = per_line * args.changes
        print()
        print("| figure | value | budget | baseline: phonenumbers.parse per line | ratio (value / baseline) |")
        print("|---|---|---|---|---|")
        print(f"| full import, {args.lines:,} lines | {full_wall:.1f} s | 60 s | {base_full:.0f} s (scaled from 50,000 lines) | {full_wall / base_full:.3f} |")
        print(f"| full import, peak RSS | {full_rss:.0f} MiB | 1536 MiB | | |")
        print(f"| change file, {args.changes:,} lines, on the full list | {delta_wall:.2f} s | 2 s | {base_delta:.2f} s (parsing only) | {delta_wall / base_delta:.2f} |")
        print(f"| change file, peak RSS | {delta_rss:.0f} MiB | | | |")
        print()
        ok = full_wall <= 60 and full_rss < 1536 and delta_wall <= 2
        print(f"budgets: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
