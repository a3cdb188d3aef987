"""Does uploading recordings to object storage keep up with the load run? (issue 18)

Starts a real S3-compatible server (SeaweedFS, tests/integration/seaweed.py) on loopback, then
runs benchmarks/bench_load.py's LiveCall load (50 concurrent recorded calls for 10 minutes by
default) with ``[storage] backend = "s3"`` pointing at it, and every few seconds reads the run's
database: recordings finished, recordings uploaded, the backlog between them (finished, not yet
in the store) and how long the oldest of it has waited. At the end: the lag from a recording's
end to its upload (p50/p95/max), the objects in the bucket, and whether the backlog ever grew.

    .venv/bin/python benchmarks/bench_object_upload.py --concurrent 50 --duration 600 --hold 45 --json upload.json

bench_load.py's own check that each recording's file is on disk does not apply here: the
uploader removes each file once its object is verified, so that check reports them missing.

With ``--baseline wav`` the same load is run first with recordings kept as WAV on the local disk
(no encoding, no store: the WAV-only run), in the same invocation on the same sandbox, and a
table puts the two side by side: calls, post-dial delay, serve's own CPU and its encoder's per
recorded call-minute, the stored size, hangup to stored file, and the upload backlog.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.seaweed import SeaweedFs  # noqa: E402


def newest_db(folder: Path) -> Path | None:
    """The load run's database (bench_load.py makes its folder in its TMPDIR, ours alone)."""
    found = list(folder.glob("bench-load-*/livecall-*.db"))
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _time(text: Any) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(str(text))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def sample(db: Path) -> dict[str, Any] | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        con.row_factory = sqlite3.Row
        rows = con.execute(
            "SELECT r.id, r.ended_at, r.state, o.uploaded_at FROM recordings r "
            "LEFT JOIN recording_objects o ON o.recording_id = r.id AND o.part = '' "
            "WHERE r.state IN ('complete', 'incomplete')").fetchall()
        con.close()
    except sqlite3.Error:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    waiting = [_time(r["ended_at"]) for r in rows if r["uploaded_at"] is None]
    lags = [(u - e).total_seconds() for r in rows
            if (u := _time(r["uploaded_at"])) is not None and (e := _time(r["ended_at"])) is not None]
    oldest = min((w for w in waiting if w is not None), default=None)
    return {"at": time.time(), "finished": len(rows), "uploaded": len(rows) - len(waiting), "backlog": len(waiting),
            "oldest_wait_s": round((now - oldest).total_seconds(), 1) if oldest else 0.0, "lags": lags}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def load_args(args: argparse.Namespace, store: str, json_path: Path) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks/bench_load.py"), "--mode", "livecall", "--store", store,
            "--concurrent", str(args.concurrent), "--duration", str(args.duration), "--hold", str(args.hold),
            "--json", str(json_path)]


def run_baseline(args: argparse.Namespace, folder: Path) -> dict[str, Any] | None:
    """The same load with recordings kept as WAV on this disk: no encoder, no store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECALL_STORAGE_")}
    env["TMPDIR"] = str(folder / "tmp-baseline")
    (folder / "tmp-baseline").mkdir()
    out = folder / "baseline.json"
    print(f"baseline: the load with recordings kept as {args.baseline}, locally", flush=True)
    subprocess.run(load_args(args, args.baseline, out), env=env, cwd=ROOT, check=False)
    return first_run(json.loads(out.read_text())) if out.exists() else None


def first_run(load: dict[str, Any] | None) -> dict[str, Any] | None:
    runs = (load or {}).get("results") or []
    return runs[0] if runs else None


def side_by_side(baseline: dict[str, Any], result: dict[str, Any]) -> str:
    """The WAV-only run and the object storage run, as a Markdown table."""

    def row(name: str, run: dict[str, Any] | None, upload: str) -> str:
        if run is None:
            return f"| {name} | (no result) |"
        c, f = run.get("checks", {}), run.get("finishing") or {}
        lag = c.get("finish_lag_s") or {}
        return (f"| {name} | {run['successful']}/{run['created']} | {run['pdd_ms']['p50']} / {run['pdd_ms']['p95']} "
                f"| {f.get('serve_cpu_ms_per_call_minute', '-')} | {f.get('encoder_cpu_ms_per_call_minute', '-')} "
                f"| {c.get('stored_mib')} / {c.get('wav_mib_equivalent')} | {lag.get('p50')} / {lag.get('p95')} "
                f"({lag.get('first_third_mean')} -> {lag.get('last_third_mean')}) | {upload} |")

    lag = result["lag_s"]
    upload = (f"backlog mean {result['backlog_mean']}, max {result['backlog_max']}; end to upload p50 {lag['p50']} s, "
              f"p95 {lag['p95']} s; {result['uploaded']}/{result['finished']} uploaded")
    return "\n".join([
        "| kept as | calls ok/created | PDD p50 / p95 ms | serve CPU ms / call-minute | encoder CPU ms / call-minute "
        "| stored / WAV MiB | hangup to stored file s p50 / p95 (first -> last third) | object store |",
        "|---|---|---|---|---|---|---|---|",
        row(f"{baseline.get('store', 'wav')}, local (baseline)", baseline, "-"),
        row(f"{result['store']}, S3", first_run(result["load"]), upload),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--hold", type=float, default=45)
    parser.add_argument("--store", default="opus-sealed", help="bench_load.py --store: wav, opus or opus-sealed")
    parser.add_argument("--every", type=float, default=5, help="seconds between samples")
    parser.add_argument("--baseline", choices=("wav",), help="run the WAV-only, local-disk load first, for comparison")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    baseline = run_baseline(args, folder) if args.baseline else None
    weed = SeaweedFs(folder).start()
    bucket = "livecall-bench"
    env = {**os.environ, **weed.env(bucket)}
    env.pop("LIVECALL_STORAGE_UPLOAD_EVERY")  # the shipped default (5 s), as an install runs
    # The load run's temporary folders (its database) go here, apart from any other run's.
    env["TMPDIR"] = str(folder / "tmp")
    (folder / "tmp").mkdir()
    started = time.time()
    samples: list[dict[str, Any]] = []
    done = threading.Event()

    def watch() -> None:
        db = None
        while not done.is_set():
            db = db or newest_db(folder / "tmp")
            if db is not None and (s := sample(db)) is not None:
                samples.append(s)
                print(f"{s['at'] - started:6.0f} s  finished {s['finished']:4d}  uploaded {s['uploaded']:4d}  "
                      f"backlog {s['backlog']:3d}  oldest waiting {s['oldest_wait_s']:5.1f} s", flush=True)
            done.wait(args.every)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    load_json = folder / "load.json"
    try:
        subprocess.run(load_args(args, args.store, load_json), env=env, cwd=ROOT, check=False)
        # The load's service is gone: nothing uploads any more, so the last samples say what
        # was left in the backlog when it stopped.
    finally:
        done.set()
        watcher.join(30)
        objects = weed.client().list_objects_v2(Bucket=bucket, MaxKeys=10000).get("Contents", []) if samples else []
        weed.stop()
    useful = [s for s in samples if s["finished"]]
    last = useful[-1] if useful else {"finished": 0, "uploaded": 0, "backlog": 0, "lags": []}
    lags = last["lags"]
    during = [s for s in useful if s["at"] - started <= args.duration + 120]
    result = {
        "concurrent": args.concurrent, "duration_s": args.duration, "hold_s": args.hold, "store": args.store,
        "finished": last["finished"], "uploaded": last["uploaded"], "backlog_at_end": last["backlog"],
        "backlog_max": max((s["backlog"] for s in useful), default=0),
        "backlog_mean": round(statistics.mean(s["backlog"] for s in during), 2) if during else 0,
        "oldest_wait_max_s": max((s["oldest_wait_s"] for s in useful), default=0),
        "lag_s": {"p50": round(percentile(lags, 50), 2), "p95": round(percentile(lags, 95), 2),
                  "max": round(max(lags, default=0), 2)},
        "objects": len(objects), "object_bytes": sum(o["Size"] for o in objects),
        "samples": [{k: v for k, v in s.items() if k != "lags"} for s in useful],
        "load": json.loads(load_json.read_text()) if load_json.exists() else None,
    }
    result["baseline"] = baseline
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "load", "baseline")}, indent=2))
    if baseline is not None:
        print(side_by_side(baseline, result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
