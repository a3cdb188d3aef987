"""The gate's pure core: what a call attempt is, what a decision is, and who decides.

Nothing here does I/O or reads a clock: the Stasis and FastAGI adapters build a
:class:`CallAttempt` from what Asterisk tells them and pass in the time; a :class:`Decider`
(the screening rules, or a static list for trying the path out) returns a :class:`Decision`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping, Protocol

# Dialled as is, these always connect: the dialplan sends them straight to the trunk before the
# gate, and the gate allows them too should one ever reach it.
EMERGENCY_NUMBERS = frozenset({"999", "112"})

PURPOSES = ("marketing", "service", "claims", "internal")

# Dialplan contexts the generated extensions_livecall.conf defines and the entries continue into.
CONTEXT_ALLOWED = "livecall-allowed"
CONTEXT_BLOCKED = "livecall-blocked"


@dataclass(frozen=True)
class CallAttempt:
    """An outbound call as dialled by an agent, before it connects."""

    call_id: str
    agent: str
    dialled: str
    purpose: str
    at: dt.datetime
    caller_id: str | None = None
    organisation: str = "default"


@dataclass(frozen=True)
class Decision:
    """Allow or block, with every reason that applies and the evidence used."""

    allowed: bool
    number: str
    reasons: tuple[str, ...] = ()
    evidence: Mapping[str, str] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "allow" if self.allowed else "block"


class Decider(Protocol):
    def decide(self, attempt: CallAttempt) -> Decision: ...


def strip_prefix(dialled: str, outside_line_prefix: str) -> str:
    """Drop the PBX's outside-line prefix (often 9) from what the agent dialled."""
    if outside_line_prefix and dialled.startswith(outside_line_prefix) and len(dialled) >= len(outside_line_prefix) + 3:
        return dialled[len(outside_line_prefix):]
    return dialled


def is_emergency(dialled: str, outside_line_prefix: str = "") -> bool:
    return strip_prefix(dialled, outside_line_prefix) in EMERGENCY_NUMBERS or dialled in EMERGENCY_NUMBERS


def decide(attempt: CallAttempt, decider: Decider, outside_line_prefix: str = "") -> Decision:
    """The gate's decision: emergency numbers always pass; everything else is the decider's."""
    if is_emergency(attempt.dialled, outside_line_prefix):
        return Decision(True, strip_prefix(attempt.dialled, outside_line_prefix), ("emergency",))
    return decider.decide(attempt)


def refusal(reason: str, number: str) -> Decision:
    """A block for a reason outside the rules (the decider failed, the record could not be kept)."""
    return Decision(False, number, (reason,))


@dataclass(frozen=True)
class StaticDecider:
    """Blocks the listed numbers (digits compared after dropping the prefix); allows the rest.

    The pluggable decision of the foundation: it exercises the call path without the PECR rules.
    """

    blocked: frozenset[str]
    outside_line_prefix: str = ""

    def decide(self, attempt: CallAttempt) -> Decision:
        number = strip_prefix(attempt.dialled, self.outside_line_prefix)
        if attempt.purpose == "internal":
            return Decision(True, number)
        if number in self.blocked:
            return Decision(False, number, ("blocked",), {"list": "static"})
        return Decision(True, number)


def prompts_for(decision: Decision) -> str:
    """The sound files the dialplan plays to a refused agent, joined for Playback()."""
    return "&".join(f"livecall/reason-{reason}" for reason in decision.reasons) or "livecall/reason-blocked"
