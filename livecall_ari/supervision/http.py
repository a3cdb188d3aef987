"""HTTP API of this capability (filled in by its issue)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from livecall_ari.web.app import WebDependencies


def routes(deps: WebDependencies) -> list[BaseRoute]:
    return []
