"""Run the ASGI app with uvicorn inside ``livecall serve``'s event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Iterator

import uvicorn

from livecall_ari.web.app import WebDependencies, build_asgi

log = logging.getLogger("livecall.web")


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside `livecall serve`, which owns SIGTERM/SIGINT itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_web(deps: WebDependencies) -> None:
    web = deps.app.settings.web
    # Forwarded headers are believed only from the proxies the settings name (not uvicorn's
    # default of any loopback client).
    config = uvicorn.Config(build_asgi(deps), host=web.host, port=web.port, log_level="warning", lifespan="off",
                            proxy_headers=bool(web.trusted_proxies), forwarded_allow_ips=web.trusted_proxies or None)
    server = EmbeddedServer(config)
    log.info(json.dumps({"event": "web_listening", "host": web.host, "port": web.port}))
    try:
        await server.serve()
    except asyncio.CancelledError:
        server.should_exit = True
        raise
