"""FastAGI entries the generated dialplan calls around a recorded call.

``recording-start``, ``recording-notice``, ``recording-pause`` and ``recording-end``; each
only reports, so a failure here never changes what happens to the call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from livecall_ari.fastagi.server import AgiRequest, AgiSession, Handler
from livecall_ari.recording.services import RecordingService


def _args(request: AgiRequest, n: int) -> list[str]:
    return (request.args + [""] * n)[:n]


@dataclass
class RecordingAgi:
    service: RecordingService
    decline_key: str
    objection_key: str
    _finishing: set["asyncio.Future[Any]"] = field(default_factory=set)

    async def start(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, number, agent, purpose, file = _args(request, 5)
        self.service.started(call_id, number, agent, purpose, file)

    async def notice(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, number, prompt, started, status, key = _args(request, 6)
        self.service.notice(call_id, number, prompt, started, status, key, self.decline_key, self.objection_key)

    async def pause(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, action, by = _args(request, 3)
        self.service.paused(call_id, action, by)

    async def end(self, request: AgiRequest, session: AgiSession) -> None:
        [call_id] = _args(request, 1)
        # This runs in the channel's hangup handler, and MixMonitor closes the file only once
        # the channel is gone: answer at once and finish the books in the background.
        future = asyncio.get_running_loop().run_in_executor(None, self.service.finish, call_id)
        self._finishing.add(future)
        future.add_done_callback(self._finishing.discard)

    def handlers(self) -> dict[str, Handler]:
        return {
            "recording-start": self.start,
            "recording-notice": self.notice,
            "recording-pause": self.pause,
            "recording-end": self.end,
        }
