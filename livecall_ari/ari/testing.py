"""An honest fake of the ARI seam (the ``ChannelControl`` protocol), for unit tests.

It records each request in order, as (method name, arguments), the way panoramisk's testing
module stands in for a real AMI connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class FakeAri:
    requests: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    fail_with: Exception | None = None
    responses: dict[str, Any] = field(default_factory=dict)

    async def continue_in_dialplan(self, channel_id: str, context: str = "", extension: str = "", priority: int = 0) -> None:
        self._record("continue", channel_id, context, extension, priority)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self._record("set_variable", channel_id, name, value)

    async def call(
        self,
        route: str,
        path_args: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """As ``AriClient.call``: recorded as ("call", (route, path_args, params, body)); answers
        from ``responses`` by route (None when absent)."""
        self._record("call", route, dict(path_args or {}), dict(params or {}), body)
        return self.responses.get(route)

    def _record(self, name: str, *args: object) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.requests.append((name, args))
