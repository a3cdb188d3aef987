"""The web process `livecall serve` supervises: a real child process serving the portal, started
again when it dies, stopped with serve, and gone by itself when serve is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

from livecall_ari.web.process import supervise_web
from tests.unit.protection_data import make_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def web_children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"livecall_ari.web.server" in cmdline:
            found.append(int(entry.name))
    return found


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


async def until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        await asyncio.sleep(0.1)


@pytest.fixture
def port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    for name in [k for k in os.environ if k.startswith("LIVECALL_")]:
        monkeypatch.delenv(name)  # the child inherits the environment: nothing of the sandbox's
    chosen = free_port()
    monkeypatch.setenv("LIVECALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LIVECALL_WEB_PORT", str(chosen))
    return chosen


def test_the_web_process_is_restarted_when_it_dies_and_stopped_with_serve(
        tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(tmp_path)
    app.settings.web.port = port
    url = f"http://127.0.0.1:{port}/healthz"

    async def scenario() -> tuple[int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(supervise_web(app.settings, stop, "warning"))
        await until(lambda: answers(url) and len(web_children(os.getpid())) == 1)
        [first] = web_children(os.getpid())
        assert (tmp_path / "tmp" / f"web-{first}").stat().st_mode & 0o777 == 0o700
        os.kill(first, signal.SIGKILL)
        await until(lambda: answers(url) and web_children(os.getpid()) not in ([], [first]))
        [second] = web_children(os.getpid())
        caplog.set_level("INFO", logger="livecall.web")
        stop.set()
        await asyncio.wait_for(task, 30)
        return first, second

    try:
        first, second = asyncio.run(scenario())
    finally:
        app.close()
    assert first != second
    assert web_children(os.getpid()) == [] and not answers(url)
    # It stopped cleanly on SIGTERM: exit status 0, not SIGABRT from a thread still holding stdin.
    stopped = [json.loads(r.getMessage()) for r in caplog.records if "web_process_stopped" in r.getMessage()]
    assert [(e["pid"], e["returncode"]) for e in stopped] == [(second, 0)]
    assert not (tmp_path / "tmp" / f"web-{second}").exists()  # its private folder went with it


def test_the_web_process_stops_by_itself_when_serve_is_killed(tmp_path: Path, port: int) -> None:
    make_app(tmp_path).close()
    code = ("import asyncio, sys\nfrom livecall_ari.config import load\nfrom livecall_ari.web.process import supervise_web\n"
            f"asyncio.run(supervise_web(load({str(tmp_path / 'livecall.toml')!r}), asyncio.Event(), 'warning'))\n")
    serve = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
    try:
        asyncio.run(until(lambda: answers(f"http://127.0.0.1:{port}/healthz") and len(web_children(serve.pid)) == 1))
        [child] = web_children(serve.pid)
        serve.kill()
        serve.wait(10)
        asyncio.run(until(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1][:3], 30))
    finally:
        if serve.poll() is None:
            serve.kill()
