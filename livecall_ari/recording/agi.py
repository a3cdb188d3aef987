"""FastAGI entries the generated dialplan calls around a recorded call.

``recording-start``, ``recording-notice``, ``recording-pause`` and ``recording-end``; each
only reports, so a failure here never changes what happens to the call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from livecall_ari.ami.client import AmiError
from livecall_ari.fastagi.server import AgiRequest, AgiSession, Handler
from livecall_ari.recording.inbound import InboundCalls
from livecall_ari.recording.core import NOTICE_MODES
from livecall_ari.recording.services import RecordingService


log = logging.getLogger("livecall.recording")


def _args(request: AgiRequest, n: int) -> list[str]:
    return (request.args + [""] * n)[:n]


Mute = Callable[[str, bool], Awaitable[None]]


@dataclass
class RecordingAgi:
    service: RecordingService
    decline_key: str
    objection_key: str
    # Mutes or unmutes the MixMonitor on a channel (AMI MixMonitorMute); raises if it cannot.
    mute: Mute
    # The key that consents to recording in an "opt_in" notice ([recording] consent_key).
    consent_key: str = ""
    # Inbound calls' books ([livecall-inbound]); None: its entries only log.
    inbound: InboundCalls | None = None
    _finishing: set["asyncio.Future[Any]"] = field(default_factory=set)

    async def start(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, number, agent, purpose, file = _args(request, 5)
        # The path comes from whoever holds the FastAGI secret: proven to lie under the
        # recordings folder here, or nothing is booked (so nothing outside is ever deleted or read).
        path = self.service.folder.locate(file, f"book the recording of call {call_id} reported by recording-start")
        if path is not None:
            self.service.started(call_id, number, agent, purpose, path)

    async def notice(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, number, prompt, started, status, key, mode = _args(request, 7)
        # The dialplan names the notice's mode ([recording] notice_mode) for the consent prompt only.
        mode = mode if mode in NOTICE_MODES else "inform"
        self.service.notice(call_id, number, prompt, started, status, key, self.decline_key, self.objection_key,
                            mode, self.consent_key)

    async def pause(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, action, by, channel = _args(request, 4)
        if action not in ("pause", "resume"):
            return
        try:
            await self.mute(channel, action == "pause")
        except AmiError as exc:
            # The dialplan stops the recording instead: nothing more of this call is kept.
            log.error("could not %s the recording of call %s (%s); it is stopped instead", action, call_id, exc)
            return
        self.service.paused(call_id, action, by)
        await session.set_variable("LIVECALL_PAUSE_OK", "yes")

    async def inbound_start(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, caller, did, file = _args(request, 4)
        if self.inbound is None:
            log.error("inbound call %s: no inbound books in this service", call_id)
            return
        path = None
        if file:
            path = self.service.folder.locate(file, f"book the recording of inbound call {call_id}")
        number = self.inbound.started(call_id, caller, did, path)
        await session.set_variable("LIVECALL_CALLER_E164", number)

    async def inbound_notice(self, request: AgiRequest, session: AgiSession) -> None:
        # The inbound notice only informs: no key means anything, whatever notice_mode says.
        call_id, number, prompt, started, status = _args(request, 5)
        self.service.notice(call_id, number, prompt, started, status, "", "", "")

    async def end(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, answered_by = _args(request, 2)
        if answered_by and self.inbound is not None:
            self.inbound.answered_by(call_id, answered_by)
        # This runs in the channel's hangup handler, and MixMonitor closes the file only once
        # the channel is gone: answer at once and finish the books in the background.
        # The hangup is now: under load the worker thread may take the job seconds later.
        hung_up = self.service.clock()
        # In the service's own bounded pool: encoding a recording never holds up anything else.
        future = asyncio.wrap_future(self.service.finish_later(call_id, hung_up))
        self._finishing.add(future)
        future.add_done_callback(self._finishing.discard)

    def handlers(self) -> dict[str, Handler]:
        return {
            "recording-start": self.start,
            "recording-notice": self.notice,
            "recording-pause": self.pause,
            "recording-end": self.end,
            "inbound-start": self.inbound_start,
            "inbound-notice": self.inbound_notice,
        }
