"""The portal's pure core: who may do what, and the small decisions every request needs.

Nothing here reads a clock, a database or a request: callers pass the facts (a role, the
agent a call belongs to, a ``Range`` header and a file size, the times of recent failed logins)
and get a value back. The HTTP adapter (http.py and the page modules) only asks and obeys.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

ROLES = ("admin", "supervisor", "agent", "auditor")

# Permissions, by name. An agent's call permissions are limited to their own calls by
# :func:`may_see_call`, not by this table.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "calls.view": frozenset(ROLES),
    "calls.view_all": frozenset({"admin", "supervisor", "auditor"}),
    "recordings.play": frozenset(ROLES),
    "recordings.download": frozenset({"admin", "supervisor", "auditor"}),
    "live.view": frozenset({"admin", "supervisor"}),
    "live.supervise": frozenset({"admin", "supervisor"}),
    "lists.view": frozenset({"admin", "supervisor", "auditor"}),
    "lists.change": frozenset({"admin", "supervisor"}),
    # "Don't call me again" for a call's other party, from the call's page (PECR reg 21(1)(a)):
    # an agent for their own calls only (portal/calls.py); nobody removes one there.
    "calls.object": frozenset({"admin", "supervisor", "agent"}),
    "charges.view": frozenset({"admin", "supervisor", "auditor"}),
    "coaching.view": frozenset(ROLES),
    "coaching.write": frozenset({"admin", "supervisor"}),
    "coaching.rollup": frozenset({"admin", "supervisor", "auditor"}),
    "protection.view": frozenset({"admin", "auditor"}),
    # The data protection officer's registers: subject access, holds, breaches.
    "protection.manage": frozenset({"admin", "auditor"}),
    # Erasure destroys recordings: an administrator's act.
    "protection.erase": frozenset({"admin"}),
    "audit.view": frozenset({"admin", "auditor"}),
    # The unscreened-call alarm's banner: administrators and the data protection officer.
    "alarms.view": frozenset({"admin", "auditor"}),
    "alarms.ack": frozenset({"admin"}),
    "users.manage": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a portal user's name, role and (agents, supervisors) their extension."""

    username: str
    role: str
    extension: str = ""


def can(viewer: Viewer, permission: str) -> bool:
    """Whether the viewer's role grants ``permission`` (an unknown permission grants nothing)."""
    return viewer.role in PERMISSIONS.get(permission, frozenset())


def may_see_call(viewer: Viewer, call_agent: str) -> bool:
    """A call (or its recording, notes and scorecards) is visible to the roles that see every
    call, and to an agent only when it is theirs."""
    if can(viewer, "calls.view_all"):
        return True
    return viewer.role == "agent" and bool(viewer.extension) and viewer.extension == call_agent


def row_key(text: object) -> int | None:
    """A row id from a URL or form: a whole number a database column can hold, else None (a
    bigger one would make the database driver raise instead of finding nothing)."""
    try:
        value = int(str(text))
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


def agent_filter(viewer: Viewer) -> str | None:
    """The agent every call query must be limited to (``None``: no limit). An agent with no
    extension sees nothing: the impossible agent ``""`` matches no call."""
    return None if can(viewer, "calls.view_all") else viewer.extension


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (use {', '.join(ROLES)})")
    return role


# HTTP Range (RFC 9110 14.2), one range only: what an <audio> element asks for when seeking.


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class RangeNotSatisfiable(Exception):
    """The range lies outside the file: answer 416 with ``Content-Range: bytes */size``."""


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The byte range a ``Range`` header asks for, or ``None`` for the whole file (no header,
    a unit other than bytes, several ranges, or syntax we do not understand: RFC 9110 lets a
    server ignore those and send everything). Raises RangeNotSatisfiable when it misses."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(header)
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return ByteRange(start, end)


# The most one answer to a role that may play but not download carries: a few seconds of audio,
# so an <audio> element plays and seeks as usual while a plain GET gets no whole file.
PLAY_WINDOW = 256 * 1024


class PlaybackOnly(Exception):
    """A request for the whole file from a role that may only play: refused (403)."""


def playback_range(wanted: ByteRange | None, size: int, may_download: bool) -> ByteRange | None:
    """What to send for ``/audio``: as asked for a role that may download; for one that may only
    play, a range is required (browsers always send one) and is cut to :data:`PLAY_WINDOW`
    bytes, which the browser follows with the next range as it plays."""
    if may_download:
        return wanted
    if wanted is None:
        raise PlaybackOnly("this role may play recordings in the portal but not download them")
    return ByteRange(wanted.start, min(wanted.end, wanted.start + PLAY_WINDOW - 1, size - 1))


def starts_playback(byte_range: ByteRange | None) -> bool:
    """A request from the first byte is a play or download starting (what the audit counts);
    later ranges are the same play seeking or buffering."""
    return byte_range is None or byte_range.start == 0


# Login throttling.

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)


def login_delay(failures: Sequence[dt.datetime], now: dt.datetime, max_failures: int = MAX_FAILURES,
                window: dt.timedelta = FAILURE_WINDOW) -> int:
    """Seconds before another login attempt is even checked (0: go ahead).

    ``failures`` are the times of recent failed logins for the same user name or the same
    address. Up to ``max_failures`` within ``window`` cost nothing; after that each further
    failure doubles the wait (1 min, 2, 4... capped at the window), counted from the last one.
    """
    recent = sorted(f for f in failures if now - f < window)
    if len(recent) < max_failures:
        return 0
    wait = min(dt.timedelta(minutes=1) * 2 ** (len(recent) - max_failures), window)
    left = recent[-1] + wait - now
    return max(0, int(left.total_seconds() + 0.999))


# Requests that change things.


def same_origin(origin: str | None, host: str | None, scheme: str) -> bool:
    """A POST whose ``Origin`` names another site is refused whatever its token; browsers that
    send no Origin (or ``null`` from privacy modes) fall back on the token alone."""
    if not origin or origin == "null":
        return True
    return bool(host) and origin.rstrip("/").lower() in (f"{scheme}://{host}".lower(),)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# Live board: which channels are agents' calls.

_AGENT_CHANNEL = re.compile(r"^PJSIP/([^-/]+)-[0-9a-f]+$")


@dataclass(frozen=True)
class LiveCall:
    channel_id: str
    agent: str
    number: str
    state: str
    since: str  # ISO time the channel was created
    decision: str = ""
    purpose: str = ""
    reasons: str = ""


def live_calls(channels: Iterable[Mapping[str, object]], agents: Iterable[str] | None = None,
               trunk: str = "livecall-trunk") -> list[LiveCall]:
    """Agents' channels among ARI's ``GET /channels``: one per PJSIP channel that is not the
    trunk's (the far end's leg), optionally only those of ``agents``."""
    wanted = set(agents) if agents is not None else None
    found: list[LiveCall] = []
    for ch in channels:
        match = _AGENT_CHANNEL.match(str(ch.get("name", "")))
        if match is None or match.group(1) == trunk:
            continue
        agent = match.group(1)
        if wanted is not None and agent not in wanted:
            continue
        dialplan = ch.get("dialplan")
        connected = ch.get("connected")
        number = ""
        if isinstance(connected, Mapping):
            number = str(connected.get("number") or "")
        if not number and isinstance(dialplan, Mapping):
            number = str(dialplan.get("exten") or "")
        found.append(LiveCall(str(ch.get("id", "")), agent, number, str(ch.get("state", "")),
                              str(ch.get("creationtime", ""))))
    return sorted(found, key=lambda c: (c.since, c.channel_id))


# Lists: freshness.


def list_freshness(snapshot: dt.date | None, today: dt.date, max_age_days: int) -> tuple[str, int | None]:
    """``("missing", None)``, ``("fresh", age)``, ``("ageing", age)`` (within a week of the
    limit: time to import) or ``("stale", age)`` (marketing calls are being blocked)."""
    if snapshot is None:
        return "missing", None
    age = (today - snapshot).days
    if age > max_age_days:
        return "stale", age
    if age > max_age_days - 7:
        return "ageing", age
    return "fresh", age


# Coaching: a simple scorecard, rolled up per agent per month.

SCORECARD = (
    ("opening", "Opening: introduced themselves and the organisation"),
    ("compliance", "Compliance: notice, purpose, no pressure, objections respected"),
    ("listening", "Listening: understood and answered the customer"),
    ("outcome", "Outcome: clear next step, accurate information"),
)
SCORE_MIN, SCORE_MAX = 1, 5


def check_scores(given: Mapping[str, str]) -> dict[str, int]:
    """Every criterion scored 1..5; the message names the one that is not."""
    scores: dict[str, int] = {}
    for key, title in SCORECARD:
        text = (given.get(key) or "").strip()
        if not text.isdigit() or not SCORE_MIN <= int(text) <= SCORE_MAX:
            raise ValueError(f"{title.split(':')[0]}: give a score from {SCORE_MIN} to {SCORE_MAX}")
        scores[key] = int(text)
    return scores


@dataclass(frozen=True)
class ScoredCall:
    agent: str
    scored_at: dt.date
    scores: Mapping[str, int]


@dataclass(frozen=True)
class AgentPeriod:
    agent: str
    period: str  # YYYY-MM
    cards: int
    average: Mapping[str, float]  # per criterion, one decimal
    overall: float  # out of 100


def rollup(cards: Iterable[ScoredCall]) -> list[AgentPeriod]:
    """Scorecards per agent per calendar month: how many, the mean of each criterion and an
    overall percentage (the mean score over the maximum)."""
    groups: dict[tuple[str, str], list[ScoredCall]] = {}
    for card in cards:
        groups.setdefault((card.agent, card.scored_at.strftime("%Y-%m")), []).append(card)
    out = []
    for (agent, period), items in sorted(groups.items()):
        average = {key: round(sum(c.scores.get(key, 0) for c in items) / len(items), 1) for key, _ in SCORECARD}
        total = sum(sum(c.scores.get(key, 0) for key, _ in SCORECARD) for c in items)
        overall = round(100 * total / (len(items) * len(SCORECARD) * SCORE_MAX), 1)
        out.append(AgentPeriod(agent, period, len(items), average, overall))
    return out
