"""The gate's pure core: what a call attempt is, what a decision is, and who decides.

Nothing here does I/O or reads a clock: the Stasis and FastAGI adapters build a
:class:`CallAttempt` from what Asterisk tells them and pass in the time; a :class:`Decider`
(the screening rules, or a static list for trying the path out) returns a :class:`Decision`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Mapping, Protocol

# Dialled as is, these (999, 112, 18000) always connect: the dialplan sends them straight to
# the trunk before the gate, and the gate allows them too should one ever reach it.
from livecall_ari.gate.numbering import EMERGENCY_NUMBERS as EMERGENCY_NUMBERS
from livecall_ari.gate.numbering import SpecialNumber, special_number

PURPOSES = ("marketing", "service", "claims", "pensions", "internal")
# The purposes the PECR rules screen (direct marketing, claims management under reg 21A,
# pension schemes under reg 21B); their allowed calls always present the caller ID (reg 21(A1)).
GATED_PURPOSES = ("marketing", "claims", "pensions")
# The reason an allowed call to a short code or through text relay carries (gate/numbering.py).
SPECIAL_NUMBER = "special_number"

# What a dialled string must be, wholly, before anything decides on it or dials it: an optional
# "+" and 3 to 20 ASCII digits (the outside-line prefix included). The generated dialplan's
# patterns match the same lengths; anything else is refused as invalid_number, never trimmed.
MIN_DIGITS = 3
MAX_DIGITS = 20
WHOLE_NUMBER = re.compile(rf"\+?[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}")

# How the trunk is given the number: the UK national form (02079460018, 0033...) or E.164.
TRUNK_NUMBER_FORMATS = ("national", "e164")

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
    # What the trunk dials when allowed (set by decide(); digits and at most a leading "+").
    dial: str = ""

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


def is_whole_number(text: str) -> bool:
    """True when ``text`` is nothing but an optional ``+`` and 3 to 20 ASCII digits."""
    return WHOLE_NUMBER.fullmatch(text) is not None


def trunk_number(number: str, number_format: str = "national") -> str | None:
    """The form the trunk is given ``number`` in, or None when it is not a whole number.

    National: ``+44`` becomes ``0`` and any other ``+`` becomes ``00``; E.164: the reverse.
    Digits that are neither (a short code) go as they are.
    """
    if not is_whole_number(number):
        return None
    if number_format == "e164":
        if number.startswith("00"):
            return "+" + number[2:]
        if number.startswith("0"):
            return "+44" + number[1:]
        return number
    if number.startswith("+44"):
        return "0" + number[3:]
    if number.startswith("+"):
        return "00" + number[1:]
    return number


def dialplan_extension(dialled: str) -> str:
    """The extension an entry continues into: the dialled number when it is a whole number,
    else ``invalid`` (the generated contexts have one), so nothing else reaches the dialplan."""
    return dialled if is_whole_number(dialled) else "invalid"


def invalid(attempt: CallAttempt) -> Decision:
    """The refusal of a dialled string that is not wholly a number (never trimmed into one)."""
    return Decision(False, attempt.dialled, ("invalid_number",))


def decide(attempt: CallAttempt, decider: Decider, outside_line_prefix: str = "", number_format: str = "national") -> Decision:
    """The gate's decision: anything but a whole number is refused before any decider sees it;
    emergency numbers always pass, and so do the other short codes (``special_number``); a text
    relay call is the decider's for the number behind the prefix; everything else is the
    decider's. An allowed decision carries the number the trunk dials (``dial``), refused if
    the decider's number is no whole number either."""
    if not is_whole_number(attempt.dialled):
        return invalid(attempt)
    special = special_number(strip_prefix(attempt.dialled, outside_line_prefix))
    if is_emergency(attempt.dialled, outside_line_prefix):
        decision = Decision(True, strip_prefix(attempt.dialled, outside_line_prefix), ("emergency",))
    elif special is not None and special.relay_prefix:
        return _relayed(attempt, special, decider)
    elif special is not None:
        decision = Decision(True, special.digits, (SPECIAL_NUMBER,),
                            {"special_number": special.name, "purpose": attempt.purpose})
    else:
        decision = decider.decide(attempt)
    if not decision.allowed:
        return decision
    dial = trunk_number(decision.number, number_format)
    if dial is None:
        return Decision(False, decision.number, ("invalid_number",), decision.evidence)
    return dataclasses.replace(decision, dial=dial)


def _relayed(attempt: CallAttempt, special: SpecialNumber, decider: Decider) -> Decision:
    """A text relay call: the decider screens the number behind the prefix as if dialled alone;
    allowed, the trunk dials the prefix and that number's national form (how Relay UK takes it)."""
    inner = decider.decide(dataclasses.replace(attempt, dialled=special.relayed))
    evidence = {**inner.evidence, "special_number": special.name, "relay_prefix": special.relay_prefix}
    if not inner.allowed:
        return Decision(False, inner.number, inner.reasons, evidence)
    national = trunk_number(inner.number, "national")
    dial = special.relay_prefix + national if national is not None and not national.startswith("+") else ""
    if not is_whole_number(dial):
        return Decision(False, inner.number, ("invalid_number",), evidence)
    return Decision(True, inner.number, (*inner.reasons, SPECIAL_NUMBER), evidence, dial)


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
