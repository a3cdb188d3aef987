"""The unscreened-call alarm's pure core: is this CDR a call that reached the trunk unscreened?

An admin's later dialplan edit can route an agent's call around the gate. Every call leaves a
CDR, so the CDR follower hands each record that went to the trunk here, with the gate's
decisions for its call id, and gets back an :class:`Unscreened` (with the reason) or None.

The rules, on plain data (no database, no clock, no file):

* a trunk leg is a CDR whose ``dstchannel`` is ``PJSIP/<trunk>-...``;
* an agent's phone is a ``PJSIP/<endpoint>-...`` channel whose endpoint is not the trunk
  (Local, IAX2 and other channel types are never taken for a phone);
* the number that reached the trunk is each target of the ``Dial()`` in ``lastdata``
  (``PJSIP/<number>@<trunk>``, ``PJSIP/<trunk>/sip:<number>@host``; several when joined with
  ``&``), or the CDR's ``dst`` when ``lastdata`` names none;
* emergency numbers (999, 112) are never an alarm;
* otherwise the call is unscreened when no decision has its call id, when the decision was a
  block, or when a number reached the trunk other than the one allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from livecall_ari.gate.core import EMERGENCY_NUMBERS, strip_prefix

REASONS = {
    "no-decision": "no gate decision for this call",
    "blocked": "the gate blocked this call",
    "other-number": "a number other than the one the gate allowed",
}


@dataclass(frozen=True)
class TrunkCall:
    """What one CDR says about a call: the channels, what was dialled, and its ids."""

    uniqueid: str
    channel: str
    dstchannel: str
    dst: str
    lastapp: str
    lastdata: str
    start_utc: int
    call_id: str = ""  # LiveCall's CDR(livecall_call_id), when its cdr_custom record is read


@dataclass(frozen=True)
class GateVerdict:
    """One of the gate's decisions, as stored: its call id, the number decided and allow/block."""

    call_id: str
    number: str
    decision: str


@dataclass(frozen=True)
class Unscreened:
    """A call from an agent's phone that reached the trunk unscreened, and why."""

    call_id: str
    agent: str
    number: str  # what reached the trunk (targets joined with "&")
    reason: str  # a key of REASONS
    decided: str = ""  # the number the gate decided, if it decided
    start_utc: int = 0

    @property
    def detail(self) -> str:
        text = f"call {self.call_id} from agent {self.agent} reached the trunk for {self.number}: {REASONS[self.reason]}"
        return text + (f" ({self.decided})" if self.decided else "")


_PUNCTUATION = str.maketrans("", "", " \t-().")


def comparable(number: str, outside_line_prefix: str = "") -> str:
    """One form of a number for comparing a Dial() target with a decision: the UK national
    (``0161...``), international (``0044161...``) and E.164 (``+44161...``) forms of a number
    compare equal; punctuation and the outside-line prefix are dropped. Text only: the gate
    validated the number when it decided, and this runs for every call the follower reads."""
    digits = strip_prefix(number.translate(_PUNCTUATION), outside_line_prefix)
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return "+44" + digits[1:]
    return digits


def endpoint_of(channel: str) -> str | None:
    """The PJSIP endpoint of a channel name (``PJSIP/1001-0000002a`` -> ``1001``), else None."""
    if not channel.startswith("PJSIP/"):
        return None
    name, dash, _ = channel[len("PJSIP/"):].rpartition("-")
    return name if dash and name else None


def agent_of(channel: str, trunk: str) -> str | None:
    """The agent's endpoint when ``channel`` is an agent's phone (a PJSIP channel that is not
    the trunk's), else None."""
    endpoint = endpoint_of(channel)
    return endpoint if endpoint is not None and endpoint != trunk else None


def is_trunk_leg(dstchannel: str, trunk: str) -> bool:
    return endpoint_of(dstchannel) == trunk


def dialled_targets(lastapp: str, lastdata: str, trunk: str) -> list[str]:
    """The numbers a ``Dial()`` sent to the trunk, in order (empty when it names none)."""
    if lastapp.lower() != "dial":
        return []
    found = []
    for target in lastdata.split(",", 1)[0].split("&"):
        tech, slash, rest = target.strip().partition("/")
        if tech.upper() != "PJSIP" or not slash:
            continue
        number, at, endpoint = rest.partition("@")
        if at and endpoint == trunk:  # PJSIP/<number>@<trunk>
            found.append(number)
            continue
        endpoint, slash, uri = rest.partition("/")  # PJSIP/<trunk>/sip:<number>@host
        if slash and endpoint == trunk:
            user = uri.split(":", 1)[-1].split("@", 1)[0]
            if user:
                found.append(user)
    return found


def check(
    call: TrunkCall,
    verdicts: Iterable[GateVerdict],
    trunk: str,
    normalise: Callable[[str], str],
    outside_line_prefix: str = "",
) -> Unscreened | None:
    """The alarm for ``call`` (a CDR), or None when it is not an agent's call to the trunk or
    the gate decided it as it went out. ``verdicts`` are the decisions whose call id is the
    CDR's uniqueid or its LiveCall call id; ``normalise`` puts a dialled and a decided number
    in one form (:func:`comparable`)."""
    if not is_trunk_leg(call.dstchannel, trunk):
        return None
    agent = agent_of(call.channel, trunk)
    if agent is None:
        return None
    targets = dialled_targets(call.lastapp, call.lastdata, trunk) or [call.dst]
    if all(strip_prefix(t, outside_line_prefix) in EMERGENCY_NUMBERS or t in EMERGENCY_NUMBERS for t in targets):
        return None
    call_id = call.call_id or call.uniqueid
    number = "&".join(targets)
    mine = [v for v in verdicts if v.call_id in (call.uniqueid, call.call_id) and v.call_id]
    if not mine:
        return Unscreened(call_id, agent, number, "no-decision", start_utc=call.start_utc)
    allowed = {normalise(v.number) for v in mine if v.decision == "allow"}
    if not allowed:
        return Unscreened(call_id, agent, number, "blocked", mine[-1].number, call.start_utc)
    if any(normalise(t) not in allowed for t in targets):
        return Unscreened(call_id, agent, number, "other-number", " or ".join(sorted(allowed)), call.start_utc)
    return None


def unscreened_calls(
    calls: Sequence[TrunkCall],
    verdicts: Sequence[GateVerdict],
    trunk: str,
    normalise: Callable[[str], str],
    outside_line_prefix: str = "",
) -> list[Unscreened]:
    """Every alarm among ``calls``, one per call id (a call that rang two numbers on the trunk
    has a CDR per number)."""
    by_id: dict[str, list[GateVerdict]] = {}
    for v in verdicts:
        by_id.setdefault(v.call_id, []).append(v)
    found: dict[str, Unscreened] = {}
    for call in calls:
        mine = by_id.get(call.uniqueid, []) + (by_id.get(call.call_id, []) if call.call_id != call.uniqueid else [])
        alarm = check(call, mine, trunk, normalise, outside_line_prefix)
        if alarm is not None:
            found.setdefault(alarm.call_id, alarm)
    return list(found.values())
