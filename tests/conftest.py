"""Shared test helpers."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from hypothesis import settings

T = TypeVar("T")

# No per-example time limit for property tests: scripts/test runs the unit tests beside the
# integration tests on two cores, where a slow example says nothing (speed is measured in
# benchmarks/, not in tests).
settings.register_profile("livecall", deadline=None)
settings.load_profile("livecall")


def until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def kill_when_paused(argv: list[str], env: dict[str, str], stage: str, timeout: float = 60.0) -> None:
    """Run a `livecall` command that pauses at ``stage`` (its test hook prints "paused at
    <stage>" and waits), then SIGKILL it there: a crash at a known point."""
    import subprocess
    import sys

    with subprocess.Popen(
        [sys.executable, "-m", "livecall_ari.cli", *argv], env=env,
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    ) as proc:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + timeout
        while b"paused at " + stage.encode() not in seen:
            line = proc.stderr.readline()
            assert line and time.monotonic() < deadline, f"{argv[0]} ended without pausing at {stage}: {seen!r}"
            seen += line
        proc.kill()
        proc.wait()
