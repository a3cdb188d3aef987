"""An honest fake of the ARI seam (the ``ChannelControl`` protocol), for unit tests.

It records each request in order, as (method name, arguments), the way panoramisk's testing
module stands in for a real AMI connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeAri:
    requests: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    fail_with: Exception | None = None

    async def continue_in_dialplan(self, channel_id: str, context: str = "", extension: str = "", priority: int = 0) -> None:
        self._record("continue", channel_id, context, extension, priority)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self._record("set_variable", channel_id, name, value)

    def _record(self, name: str, *args: object) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.requests.append((name, args))
