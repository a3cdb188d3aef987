"""The ``agent-objection`` FastAGI entry: the agent's objection code, during a call or dialled
just after it ([livecall-agent-objection] in the generated dialplan).

It finds the call as the gate recorded it, lets screening/agent_objections.py decide, lists the
number (the agent and call kept as evidence) and sets ``LIVECALL_OBJECTION_OK=yes`` so the agent
hears the confirmation. Database work runs off the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from livecall_ari.app import App
from livecall_ari.fastagi.server import AgiRequest, AgiSession
from livecall_ari.screening.numbers import NumberParser
from livecall_ari.screening.agent_objections import GatedCall, agent_objection, objection_reason

if TYPE_CHECKING:
    from livecall_ari.screening.lists import ListFiles

log = logging.getLogger("livecall.screening")
UTC = dt.timezone.utc


def gated_call(call_id: str) -> GatedCall | None:
    """The gate's decision on ``call_id`` (the agent channel's uniqueid), as a GatedCall."""
    from livecall_ari.gate.models import GateDecision

    row = GateDecision.select().where(GateDecision.call_id == call_id).order_by(GateDecision.decided_at.desc()).first()
    if row is None:
        return None
    return GatedCall(row.call_id, row.agent, row.decision, row.number)


@dataclass
class AgentObjectionAgi:
    """``record(number, at, by, reason)`` lists a number (E.164 or national); False if it is not one."""

    record: Callable[[str, dt.datetime, str, str], bool]
    window: dt.timedelta
    find_call: Callable[[str], GatedCall | None] = gated_call
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(UTC))

    def decide(self, call_id: str, agent: str, ended_epoch: str) -> bool:
        now = self.clock()
        ended = _epoch(ended_epoch)
        call = self.find_call(call_id)
        verdict = agent_objection(call, agent, now, ended, self.window)
        if not verdict.allowed or call is None:
            log.warning(json.dumps({"event": "agent_objection_refused", "call_id": call_id, "agent": agent, "why": verdict.why}))
            return False
        via = "during" if ended is None else "with the objection code after"
        if not self.record(call.number, now, f"agent {agent}", objection_reason(agent, call_id, via)):
            return False
        log.info(json.dumps({"event": "objection", "call_id": call_id, "agent": agent, "via": "agent objection code"}))
        return True

    async def __call__(self, request: AgiRequest, session: AgiSession) -> None:
        call_id, agent, ended = (request.args + ["", "", ""])[:3]
        ok = await asyncio.get_running_loop().run_in_executor(None, self.decide, call_id, agent, ended)
        if ok:
            await session.set_variable("LIVECALL_OBJECTION_OK", "yes")


def _epoch(text: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError):
        return None


def add_objection(files: "ListFiles", parser: NumberParser, organisation: str, number: str, at: dt.datetime,
                  by: str, reason: str) -> bool:
    """Put ``number`` (as the dialplan or the gate has it) on the objection list; False if it
    is not a number."""
    parsed = parser.parse(number)
    if parsed is None:
        return False
    files.store.add_objection(organisation, parsed.key, at, by, reason)
    return True


def build_agent_objection_agi(app: App) -> AgentObjectionAgi:
    """The ``agent-objection`` handler for ``livecall serve``, from the settings."""
    from livecall_ari.screening.services import list_files

    settings = app.settings
    parser = NumberParser(settings.gate.outside_line_prefix)
    app.database()
    files = list_files(app)

    def record(number: str, at: dt.datetime, by: str, reason: str) -> bool:
        return add_objection(files, parser, settings.organisation.id, number, at, by, reason)

    return AgentObjectionAgi(record, dt.timedelta(minutes=settings.recording.objection_minutes))
