"""Inbound calls' books: a call that rang the organisation through [livecall-inbound].

The dialplan plays the inbound notice, records (``[recording] inbound_policy``) and sends the
call on to the admin's destination on its own; this only keeps the books, so a call goes
through while ``livecall serve`` is down. Each inbound call gets a row in the call log (the
gate's table, decision ``inbound``: never screened, the gate screens only what agents dial),
so it shows in the portal's calls and live board and falls under retention, subject access
and erasure like any other call; its recording is a recording of direction ``inbound`` whose
number is the caller's.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable

from livecall_ari.gate.models import GateDecision
from livecall_ari.recording import core
from livecall_ari.recording.models import Recording
from livecall_ari.recording.paths import RecordingPath
from livecall_ari.recording.services import RecordingService
from livecall_ari.storage.times import to_db

log = logging.getLogger("livecall.recording")
UTC = dt.timezone.utc


@dataclass
class InboundCalls:
    """``parse(caller)`` is the caller's number in E.164, or None (withheld, not a number)."""

    recordings: RecordingService
    organisation: str
    parse: Callable[[str], str | None]
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)

    def started(self, call_id: str, caller: str, did: str, file: RecordingPath | None) -> str:
        """Book the call (and its recording, when ``file`` is given); the caller's E.164 number
        ("" if there is none) comes back for the notice's record."""
        number = (self.parse(caller) or "") if caller else ""
        if not GateDecision.select().where(GateDecision.call_id == call_id).exists():
            GateDecision.create(
                call_id=call_id, agent="", dialled=did, number=number, purpose=core.INBOUND, caller_id=None,
                organisation=self.organisation, decision=core.INBOUND, reasons="", evidence="{}", entry=core.INBOUND,
                decided_at=to_db(self.clock()),
            )
        if file is not None:
            self.recordings.started(call_id, number, "", core.INBOUND, file, direction=core.INBOUND)
        return number

    def answered_by(self, call_id: str, channel: str) -> str:
        """The call ended; ``channel`` (Dial's DIALEDPEERNAME) answered it: its endpoint becomes
        the call's agent, so the agent sees it as theirs. Returns the agent ("" if none)."""
        agent = core.answering_endpoint(channel)
        if agent:
            GateDecision.update(agent=agent).where(
                (GateDecision.call_id == call_id) & (GateDecision.decision == core.INBOUND) & (GateDecision.agent == "")
            ).execute()
            Recording.update(agent=agent).where(
                (Recording.call_id == call_id) & (Recording.direction == core.INBOUND) & (Recording.agent == "")
            ).execute()
        return agent
