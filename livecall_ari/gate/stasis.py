"""The gate's Stasis entry: dispatch ARI events, nothing more.

The dialplan enters ``Stasis(livecall,screen,<dialled>,<purpose>,<agent>,<caller id>)``; the
decision comes from :class:`GateService` and the channel continues into the allowed or the
blocked context. LiveCall never stays in the media path: once continued, the call is the
dialplan's, and stopping this process does not touch it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Coroutine, Protocol

from livecall_ari.gate.core import CONTEXT_ALLOWED, CONTEXT_BLOCKED, CallAttempt, Decision, dialplan_extension, prompts_for
from livecall_ari.gate.services import GateService

log = logging.getLogger("livecall.gate")


class ChannelControl(Protocol):
    """The part of ARI the gate uses (implemented by AriClient and by ari.testing.FakeAri)."""

    async def continue_in_dialplan(self, channel_id: str, context: str = "", extension: str = "", priority: int = 0) -> None: ...

    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...


@dataclass
class GateStasisApp:
    service: GateService
    channels: ChannelControl
    default_purpose: str = "marketing"
    organisation: str = "default"
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def on_event(self, event: dict[str, Any]) -> None:
        match event:
            case {"type": "StasisStart", "args": ["screen", dialled, purpose, agent, caller_id], "channel": channel}:
                self._spawn(self.screen(channel["id"], dialled, purpose, agent, caller_id))
            case {"type": "StasisStart", "args": args, "channel": channel}:
                log.warning("StasisStart with unexpected args %r on %s; leaving it to the dialplan", args, channel.get("name"))
                self._spawn(self.channels.continue_in_dialplan(channel["id"]))
            case {"type": "LiveCallConnected"}:
                log.info(json.dumps({"event": "ari_connected", "application": event.get("application"),
                                     "rest_over_websocket": event.get("rest_over_websocket")}))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # Handlers run as tasks: REST replies arrive on the event stream this dispatcher is
        # reading, so awaiting one here would wait for itself.
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def screen(self, channel_id: str, dialled: str, purpose: str, agent: str, caller_id: str) -> None:
        attempt = CallAttempt(
            call_id=channel_id,
            agent=agent,
            dialled=dialled,
            purpose=purpose or self.default_purpose,
            at=self.service.now(),
            caller_id=caller_id or None,
            organisation=self.organisation,
        )
        decision = self.service.screen(attempt, "stasis")
        try:
            await self.apply(channel_id, dialled, decision)
        except Exception as exc:  # the channel may have hung up meanwhile
            log.warning("could not continue channel %s: %r", channel_id, exc)

    async def apply(self, channel_id: str, dialled: str, decision: Decision) -> None:
        extension = dialplan_extension(dialled)
        if decision.allowed:
            # The context carries the verdict; LIVECALL_NUMBER is what the trunk dials (the
            # allowed context never dials ${EXTEN}).
            await self.channels.set_variable(channel_id, "LIVECALL_NUMBER", decision.dial)
            if decision.reasons:  # special_number: no notice, recorded only if the policy says so
                await self.channels.set_variable(channel_id, "LIVECALL_REASONS", ",".join(decision.reasons))
            await self.channels.continue_in_dialplan(channel_id, CONTEXT_ALLOWED, extension, 1)
            return
        await self.channels.set_variable(channel_id, "LIVECALL_REASONS", ",".join(decision.reasons))
        await self.channels.set_variable(channel_id, "LIVECALL_PROMPTS", prompts_for(decision))
        await self.channels.continue_in_dialplan(channel_id, CONTEXT_BLOCKED, extension, 1)
