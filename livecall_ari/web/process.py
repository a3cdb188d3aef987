"""``livecall serve`` runs the portal and API in a process of their own, and supervises it.

The call path (gate, FastAGI, ARI) keeps its event loop to itself: a 300 MB list upload, its
parsing and every portal page run in the web process (web/server.py), which shares nothing in
memory with the gate's process (the database and ARI carry everything between them). This
task starts it, starts it again when it dies (after 1 s, doubling to at most 30 s while it
keeps dying quickly), and stops it with ``serve``: SIGTERM, then SIGKILL after a grace period.
The child also stops by itself when its stdin (a pipe from this process) closes, so it never
outlives a ``serve`` that was killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from livecall_ari.config import Settings

log = logging.getLogger("livecall.web")

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STOP_GRACE = 10.0
HEALTHY_AFTER = 60.0  # a child that lived this long starts again after FIRST_DELAY


def command(settings: Settings, log_level: str) -> list[str]:
    """The web process's command line (the same interpreter, the same settings file; the
    environment, with its ``LIVECALL_*`` overrides, is inherited)."""
    args = [sys.executable, "-m", "livecall_ari.web.server", "--log-level", log_level]
    return args + (["--config", str(settings.path)] if settings.path is not None else [])


def current_log_level() -> str:
    level = logging.getLogger().getEffectiveLevel()
    return {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}.get(level, "error")


async def supervise_web(settings: Settings, stop: asyncio.Event, log_level: str | None = None) -> None:
    """Run the web process until ``stop`` is set (or this task is cancelled), restarting it."""
    loop = asyncio.get_running_loop()
    delay = FIRST_DELAY
    argv = command(settings, log_level or current_log_level())
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE)
        started = loop.time()
        log.info(json.dumps({"event": "web_process_started", "pid": proc.pid}))
        try:
            exited = asyncio.ensure_future(proc.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if not exited.done():
                await end(proc)
                return
        except asyncio.CancelledError:
            await end(proc)
            raise
        if loop.time() - started >= HEALTHY_AFTER:
            delay = FIRST_DELAY
        log.error(json.dumps({"event": "web_process_exited", "pid": proc.pid, "returncode": proc.returncode,
                              "restart_in_s": delay}))
        try:
            await asyncio.wait_for(stop.wait(), delay)
            return
        except asyncio.TimeoutError:
            pass
        delay = min(delay * 2, MAX_DELAY)


async def end(proc: asyncio.subprocess.Process) -> None:
    """Stop the web process: SIGTERM (uvicorn finishes the requests in flight), then SIGKILL."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()
    log.info(json.dumps({"event": "web_process_stopped", "pid": proc.pid, "returncode": proc.returncode}))
