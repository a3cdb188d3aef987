"""The web process: the portal and API under uvicorn, in a process of their own.

``livecall serve`` starts it (web/process.py) as ``python -m livecall_ari.web.server``, so a
large upload or a slow page never shares the gate's event loop. It builds its own App (database
connection), its own AriClient for the live board and the supervision API, and its own
SupervisionService: everything it shares with the gate's process goes through the database or
ARI. It runs at a lower CPU priority than the gate, its temporary files (upload spools, list
imports) go to a private folder, and it stops when the serve process that started it goes (its
stdin closes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import uvicorn

from livecall_ari.app import App
from livecall_ari.config import Settings
from livecall_ari.storage.private import private_dir
from livecall_ari.web.app import WebDependencies, build_asgi

log = logging.getLogger("livecall.web")

NICENESS = 10  # added to the web process's scheduling niceness (the gate's process keeps 0)


def upload_folder(settings: Settings, pid: int) -> Path:
    """A web process's private temporary folder (0700) under the data folder: an upload is
    spooled to disk there, not to a /tmp that may be memory, and nobody else can read it."""
    return settings.data_path() / "tmp" / f"web-{pid}"


def private_tempdir(settings: Settings) -> Path:
    """Make this process's private folder and send its temporary files there (Starlette's upload
    spools included); remove the folders of web processes that died without cleaning up."""
    folder = upload_folder(settings, os.getpid())
    for old in folder.parent.glob("web-*"):
        pid = old.name.removeprefix("web-")
        if pid.isdigit() and old != folder and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    private_dir(folder.parent)
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    tempfile.tempdir = str(folder)
    return folder


def build_dependencies(app: App) -> WebDependencies:
    """What the portal and API need, built in this process from the settings."""
    from livecall_ari.ari.client import AriClient
    from livecall_ari.supervision.plugin import build_service as build_supervision_service

    s = app.settings
    app.database()
    ari = AriClient(s.ari.url, s.ari.user, s.ari.password, s.ari.app)
    return WebDependencies(app, services={"ari": ari, "supervision": build_supervision_service(app)})


class WebServer(uvicorn.Server):
    """uvicorn that, on SIGTERM or SIGINT, finishes and returns (uvicorn's own handling raises
    the signal again at the end, killing the process before it removes its private folder)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


async def serve_web(deps: WebDependencies) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn's own handlers) or until the parent goes."""
    web = deps.app.settings.web
    # Forwarded headers are believed only from the proxies the settings name (not uvicorn's
    # default of any loopback client).
    config = uvicorn.Config(build_asgi(deps), host=web.host, port=web.port, log_level="warning", lifespan="off",
                            proxy_headers=bool(web.trusted_proxies), forwarded_allow_ips=web.trusted_proxies or None)
    server = WebServer(config)
    loop = asyncio.get_running_loop()

    def watch_parent() -> None:
        # The parent holds our stdin open; EOF means `livecall serve` is gone, however it went.
        # os.read on the descriptor, not sys.stdin.buffer: a daemon thread blocked inside the
        # buffered reader holds its lock, and the interpreter's shutdown, closing stdin, then
        # aborts the process (SIGABRT, "could not acquire lock ... at interpreter shutdown").
        try:
            fd = sys.stdin.fileno()
            while os.read(fd, 4096):
                pass
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(setattr, server, "should_exit", True)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    log.info(json.dumps({"event": "web_listening", "host": web.host, "port": web.port, "pid": os.getpid()}))
    try:
        await server.serve()
    finally:
        ari = deps.services.get("ari")
        if ari is not None:
            await ari.aclose()


def main(argv: list[str] | None = None) -> None:
    from livecall_ari import logs

    parser = argparse.ArgumentParser(prog="livecall-web", description="LiveCall's portal and API (started by livecall serve)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    app = App.from_config(args.config)
    logs.configure(args.log_level, app.settings)
    # On a small PBX the portal's CPU-heavy work (an upload's parsing and import) must not take
    # the processor from the gate and Asterisk: this process yields to them when both want it.
    os.nice(NICENESS)
    folder = private_tempdir(app.settings)
    try:
        asyncio.run(serve_web(build_dependencies(app)))
    finally:
        app.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
