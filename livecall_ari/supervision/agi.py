"""Supervision's FastAGI entry: each step of the generated dialplan asks the service.

``AGI(agi://127.0.0.1:4573/supervision,<step>,...)`` with step one of

- ``authorise,<supervisor>,<agent>,<mode>[,pin]``: sets ``LIVECALL_SUPERVISION`` to allow, pin or
  refuse (with ``LIVECALL_SUPERVISION_SESSION`` and ``LIVECALL_SUPERVISION_REASONS``); with
  ``pin`` the handler reads ``LIVECALL_SPY_PIN`` itself, so the PIN never appears in AGI
  arguments or Asterisk's logs;
- ``join,<session>,<endpoint>``: an API session's call was answered (allow, with the agent and mode);
- ``attach,<session>,<channels>``: the agent is on a call (``CHANNELS()`` of the agent);
- ``switch,<session>,<digit>``: the supervisor pressed 4, 5 or 6;
- ``end,<session>,<reason>``: from the hangup handler; sends no command (the channel is gone);
- ``sync,<session>``: the session's recording has just started: sets ``LIVECALL_SPY_STOP`` to
  ``no`` when it may go on (muted first, over AMI, while the call's own recording is paused or
  not yet started), anything else stops it;
- ``call,<call id>,<event>``: the call's own recording started, paused, resumed or was declined:
  every session recording it follows (unmuted, muted, or stopped and deleted); the supervisors'
  channels that could not be muted or stopped are set in ``LIVECALL_SPY_UNSAFE`` (``&``-separated)
  for the dialplan to cut off.

The verdict variable is set last and was cleared by the dialplan before asking: a handler that
fails half way leaves the dialplan to refuse.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from livecall_ari.fastagi.server import AgiRequest, AgiSession, quote_value
from livecall_ari.supervision.core import SupervisionRequest
from livecall_ari.supervision.services import SpyInstruction, SupervisionService

log = logging.getLogger("livecall.supervision")


async def _get(session: AgiSession, expression: str) -> str:
    reply = await session.command(f"GET FULL VARIABLE {quote_value(expression)}")
    return reply.data if reply.code == 200 and reply.result == 1 else ""


async def _spy(session: AgiSession, spy: SpyInstruction | None) -> None:
    if spy is None:
        await session.set_variable("LIVECALL_SUPERVISION", "stop")
        return
    if spy.target:
        await session.set_variable("LIVECALL_SPY_CALL", spy.target)
    await session.set_variable("LIVECALL_SPY_OPTIONS", spy.options)
    await session.set_variable("LIVECALL_SPY_RECORD", spy.recording)
    await session.set_variable("LIVECALL_SPY_BEEP", "1" if spy.beep else "0")
    await session.set_variable("LIVECALL_SUPERVISION", "spy")


# A channel name as the session row keeps it (what the dialplan may be told to redirect).
_CHANNEL = re.compile(r"[A-Za-z]+/[-0-9A-Za-z_.@;]{1,80}")

# (channel, on): mute or unmute the MixMonitor on a channel; raises if it cannot.
Mute = Callable[[str, bool], Awaitable[None]]
# Stop the MixMonitor on a channel; raises if it cannot.
Stop = Callable[[str], Awaitable[None]]


async def _cannot(channel: str, *_: object) -> None:
    raise RuntimeError(f"no AMI to reach the recording on {channel}")


@dataclass
class SupervisionAgiHandler:
    service: SupervisionService
    mute: Mute = _cannot
    stop: Stop = _cannot
    # Sessions told to record that have not yet reported their recording running (``sync``):
    # a failure to reach their recording is harmless, their ``sync`` reads the call's state.
    _starting: set[str] = field(default_factory=set)
    # Encrypts a finished session recording at rest (``[protection] encrypt_recordings``).
    seal: Callable[[str], None] | None = None
    _sealing: set["asyncio.Future[None]"] = field(default_factory=set)

    async def __call__(self, request: AgiRequest, session: AgiSession) -> None:
        channel = request.get("agi_channel")
        match request.args:
            case ["authorise", supervisor, agent, mode, *rest]:
                pin = await _get(session, "${LIVECALL_SPY_PIN}") if rest[:1] == ["pin"] else None
                decision, row = self.service.request(SupervisionRequest(supervisor, agent, mode, pin=pin), channel)
                if row is not None:
                    await session.set_variable("LIVECALL_SUPERVISION_SESSION", row.id)
                await session.set_variable("LIVECALL_SUPERVISION_REASONS", ",".join(decision.reasons))
                await session.set_variable("LIVECALL_SUPERVISION", decision.verdict)
            case ["join", session_id, endpoint]:
                joined = self.service.join(session_id, endpoint, channel)
                if joined is None:
                    await session.set_variable("LIVECALL_SUPERVISION", "refuse")
                    return
                await session.set_variable("LIVECALL_SPY_AGENT", joined.agent)
                await session.set_variable("LIVECALL_SPY_MODE", joined.mode)
                await session.set_variable("LIVECALL_SUPERVISION", "allow")
            case ["attach", session_id, channels]:
                names = channels.split()
                # IMPORT reads UNIQUEID on the agent's channel; read here, not passed in, so a
                # name the dialplan did not find cannot be made up.
                ids = {name: await _get(session, f"${{IMPORT({name},UNIQUEID)}}") for name in names[:4]}
                linked = {name: await _get(session, f"${{IMPORT({name},CHANNEL(linkedid))}}") for name in names[:4]}
                await self._spy(session, session_id, self.service.attach(session_id, channels, ids, linked))
            case ["switch", session_id, digit]:
                await self._spy(session, session_id, self.service.switch(session_id, digit))
            case ["sync", session_id]:
                await self._sync(session, session_id, channel)
            case ["call", call_id, *event]:
                await self._follow(session, call_id, event[0] if event else "")
            case ["end", session_id, *reason]:
                ended = self.service.end(session_id, reason[0] if reason else "")
                if ended is not None and ended.recording and self.seal is not None:
                    # MixMonitor closes the file once the channel is gone: seal it in the background.
                    future = asyncio.get_running_loop().run_in_executor(None, self.seal, ended.recording)
                    self._sealing.add(future)
                    future.add_done_callback(self._sealing.discard)
            case args:
                log.warning("supervision AGI: unexpected arguments %r from %s", args, channel)

    async def _spy(self, session: AgiSession, session_id: str, spy: SpyInstruction | None) -> None:
        if spy is not None and spy.recording:
            self._starting.add(session_id)
        await _spy(session, spy)

    async def _sync(self, session: AgiSession, session_id: str, channel: str) -> None:
        """The session's recording runs from now: mute it at once if its call's is muted."""
        self._starting.discard(session_id)
        verdict = self.service.sync(session_id)
        if verdict == "mute":
            try:
                await self.mute(channel, True)
            except Exception as exc:
                log.error("could not mute supervision recording of session %s (%s); it is stopped", session_id, exc)
                verdict = "stop"
        await session.set_variable("LIVECALL_SPY_STOP", "no" if verdict != "stop" else "yes")

    async def _follow(self, session: AgiSession, call_id: str, event: str) -> None:
        unsafe: list[str] = []
        for row, step in self.service.follow_call(call_id, event):
            channel = row.supervisor_channel or ""
            if not _CHANNEL.fullmatch(channel):
                continue
            try:
                if step == "stop":
                    await self.stop(channel)
                else:
                    await self.mute(channel, step == "mute")
            except Exception as exc:
                if row.id in self._starting or step == "record":
                    # Not running yet (its sync reads the state), or left muted: nothing to cut.
                    log.warning("supervision session %s: could not %s its recording yet (%s)", row.id, step, exc)
                    continue
                log.error("supervision session %s: could not %s its recording (%s); cutting it off", row.id, step, exc)
                unsafe.append(channel)
        await session.set_variable("LIVECALL_SPY_UNSAFE", "&".join(unsafe))
