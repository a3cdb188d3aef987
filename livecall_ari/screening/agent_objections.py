"""Objections an agent records for the person they called (PECR reg 21(1)(a): "don't call me
again" is honoured at once): whether an agent may list the other party of a call.

An agent may add an objection only for a call that was theirs and was connected, during it or
within the window after it ended; never remove one. No I/O and no clock here: the adapters
(screening/agi.py, the portal) hand in the call as the gate recorded it and the time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class GatedCall:
    """What the gate recorded of a call: its id, agent, decision and the number it decided on."""

    call_id: str
    agent: str
    decision: str  # "allow" or "block"
    number: str  # the gate's number (E.164 or national)


@dataclass(frozen=True)
class AgentObjectionVerdict:
    allowed: bool
    why: str  # why it is refused (empty when allowed)


def agent_objection(
    call: GatedCall | None, agent: str, now: dt.datetime, ended: dt.datetime | None = None,
    window: dt.timedelta | None = None,
) -> AgentObjectionVerdict:
    """Whether ``agent`` may put ``call``'s other party on the objection list now.

    ``ended`` is when the call ended (None: during the call, or from the portal, where
    ``window`` is None and any of the agent's own calls will do)."""
    if call is None:
        return AgentObjectionVerdict(False, "no such call")
    if not agent or call.agent != agent:
        return AgentObjectionVerdict(False, f"call {call.call_id} is not {agent or 'this agent'}'s")
    if call.decision != "allow":
        return AgentObjectionVerdict(False, f"call {call.call_id} was not connected")
    if window is not None and ended is not None:
        if ended > now + dt.timedelta(seconds=5) or now - ended > window:
            minutes = int(window.total_seconds() // 60)
            return AgentObjectionVerdict(False, f"call {call.call_id} ended more than {minutes} minutes ago")
    return AgentObjectionVerdict(True, "")


def objection_reason(agent: str, call_id: str, via: str) -> str:
    """The evidence kept with an agent's objection: who, which call, how."""
    return f"the person called said they do not want our calls; recorded by agent {agent} {via} call {call_id}"
