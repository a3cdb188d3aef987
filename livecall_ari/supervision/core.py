"""Live supervision's pure core: who may listen to, whisper to or barge in on whom, and how.

Nothing here does I/O or reads a clock. The FastAGI handler (phones' feature codes) and the API
build a :class:`SupervisionRequest` and ask :func:`authorise` against a
:class:`SupervisionPolicy` read once from the ``[supervision]`` settings; the answer says allow,
ask for the PIN, or refuse, with every reason that applies. :func:`chanspy_options` turns a mode
into the ChanSpy options the generated dialplan uses, and :func:`mode_for_digit` maps the DTMF
digits a supervisor presses during a session (4 listen, 5 whisper, 6 barge) to modes.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Mapping

from livecall_ari.config import ConfigError, SupervisionSettings

MODES = ("listen", "whisper", "barge")
# The digits ChanSpy's own `d` option uses; ours exit ChanSpy (option X) so each switch is audited.
MODE_DIGITS: Mapping[str, str] = {"4": "listen", "5": "whisper", "6": "barge"}

# Where a session comes from: a desk phone's feature code, or LiveCall's API ringing the phone.
ORIGIN_PHONE = "phone"
ORIGIN_API = "api"

_ENDPOINT = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_FEATURE_CODE = re.compile(r"[*#0-9]{1,8}")
_PIN = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class SupervisionPolicy:
    """Who may supervise whom, read once from the settings."""

    supervisors: frozenset[str] = frozenset()
    # Groups named in `supervisors` as "@name", and their members.
    supervisor_groups: frozenset[str] = frozenset()
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    teams: Mapping[str, frozenset[str]] = field(default_factory=dict)
    own_team_only: bool = False
    pins: Mapping[str, str] = field(default_factory=dict)

    def is_supervisor(self, endpoint: str) -> bool:
        if endpoint in self.supervisors:
            return True
        return any(endpoint in self.groups.get(g, frozenset()) for g in self.supervisor_groups)

    def share_a_team(self, supervisor: str, agent: str) -> bool:
        return any(supervisor in members and agent in members for members in self.teams.values())


def _named_sets(entries: list[str], where: str) -> dict[str, frozenset[str]]:
    """Parse ``["name: member member", ...]`` (members split on spaces or commas)."""
    out: dict[str, frozenset[str]] = {}
    for entry in entries:
        name, sep, members = entry.partition(":")
        name = name.strip()
        names = frozenset(m for m in re.split(r"[\s,]+", members.strip()) if m)
        if not sep or not name or not names:
            raise ConfigError(f"[supervision] {where}: {entry!r} is not 'name: member member ...'")
        out[name] = out.get(name, frozenset()) | names
    return out


def policy_from_settings(s: SupervisionSettings) -> SupervisionPolicy:
    """Read and check the ``[supervision]`` settings; a bad entry says which and why."""
    groups = _named_sets(s.groups, "groups")
    teams = _named_sets(s.teams, "teams")
    endpoints = frozenset(x.strip() for x in s.supervisors if x.strip() and not x.strip().startswith("@"))
    named_groups = frozenset(x.strip()[1:] for x in s.supervisors if x.strip().startswith("@"))
    unknown = sorted(named_groups - groups.keys())
    if unknown:
        raise ConfigError(f"[supervision] supervisors: no such group {', '.join('@' + g for g in unknown)} in groups")
    pins: dict[str, str] = {}
    for entry in s.pins:
        endpoint, sep, pin = (part.strip() for part in entry.partition(":"))
        if not sep or not endpoint or not _PIN.fullmatch(pin):
            raise ConfigError(f"[supervision] pins: {entry!r} is not 'endpoint: digits' (1 to 12 digits)")
        pins[endpoint] = pin
    feature_codes(s)
    return SupervisionPolicy(endpoints, named_groups, groups, teams, s.own_team_only, pins)


def feature_codes(s: SupervisionSettings) -> dict[str, str]:
    """The feature code of each mode, checked: digits, * and # only, all different."""
    codes = {"listen": s.listen_code, "whisper": s.whisper_code, "barge": s.barge_code}
    for mode, code in codes.items():
        if not _FEATURE_CODE.fullmatch(code):
            raise ConfigError(f"[supervision] {mode}_code: {code!r} must be 1 to 8 of 0-9, * and #")
    for a in codes.values():
        for b in codes.values():
            if a != b and b.startswith(a):
                raise ConfigError(f"[supervision] feature codes {a!r} and {b!r}: one is a prefix of the other")
    if len(set(codes.values())) != len(codes):
        raise ConfigError("[supervision] the listen, whisper and barge codes must differ")
    return codes


@dataclass(frozen=True)
class SupervisionRequest:
    """A supervisor asking to monitor an agent in a mode."""

    supervisor: str
    agent: str
    mode: str
    origin: str = ORIGIN_PHONE
    # The PIN keyed in; None until the phone has been asked for it. The API does not ask: its
    # caller holds the API token (and the portal its own login).
    pin: str | None = None


@dataclass(frozen=True)
class Authorisation:
    """``allow``, ``pin`` (ask for the PIN, then ask again) or ``refuse``, with reasons."""

    verdict: str
    reasons: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def authorise(request: SupervisionRequest, policy: SupervisionPolicy) -> Authorisation:
    """May this supervisor monitor this agent in this mode? Every failing rule is a reason."""
    reasons: list[str] = []
    if request.mode not in MODES:
        reasons.append("unknown_mode")
    if not _ENDPOINT.fullmatch(request.agent):
        reasons.append("unknown_agent")
    if not _ENDPOINT.fullmatch(request.supervisor) or not policy.is_supervisor(request.supervisor):
        reasons.append("not_supervisor")
    elif request.supervisor == request.agent:
        reasons.append("self")
    elif policy.own_team_only and not policy.share_a_team(request.supervisor, request.agent):
        reasons.append("not_in_team")
    if reasons:
        return Authorisation("refuse", tuple(reasons))
    expected = policy.pins.get(request.supervisor)
    if expected is not None and request.origin == ORIGIN_PHONE:
        if request.pin is None or request.pin == "":
            return Authorisation("pin")
        if not hmac.compare_digest(request.pin.encode(), expected.encode()):
            return Authorisation("refuse", ("wrong_pin",))
    return Authorisation("allow")


def mode_for_digit(digit: str) -> str | None:
    return MODE_DIGITS.get(digit)


def chanspy_options(mode: str) -> str:
    """ChanSpy options for a mode.

    ``u``: the target is the agent's channel uniqueid; ``q``: no beep or channel name to the
    supervisor; ``E``: the session ends with the agent's call; ``X``: a digit with an extension
    in ``SPY_EXIT_CONTEXT`` (4, 5, 6) leaves ChanSpy, so LiveCall hears of every switch;
    ``w`` whispers to the agent only; ``B`` barges into both sides of the call.
    """
    extra = {"listen": "", "whisper": "w", "barge": "B"}[mode]
    return "uqEX" + extra


def is_recorded(mode: str, record_monitoring: bool) -> bool:
    """Barge audio is part of the call, so it is always recorded; listening and whispering only
    when the organisation says so."""
    return mode == "barge" or record_monitoring


# What the call's own recording is doing (recording.models): recorded, paused (the agent's
# pause code: card details being given), declined (the called party pressed the decline key),
# or pending (no recording yet: the call is not answered, or its purpose is not recorded).
CALL_RECORDING_STATES = ("recorded", "paused", "declined", "pending")


@dataclass(frozen=True)
class SpyRecording:
    """Whether a session's audio is recorded, and whether that recording starts muted."""

    record: bool
    muted: bool = False


def spy_recording(mode: str, record_monitoring: bool, call: str) -> SpyRecording:
    """A session follows its call's recording (UK GDPR art. 5(1)(c); PCI DSS for card details):
    nothing of a call whose called party declined; muted while the call's recording is paused,
    or while there is none yet (it is unmuted when the call's recording starts, and thrown away
    at the end if the call was never recorded)."""
    if not is_recorded(mode, record_monitoring) or call == "declined":
        return SpyRecording(False)
    return SpyRecording(True, muted=call != "recorded")


def keeps_spy_recording(call: str) -> bool:
    """At a session's end: its recording is kept only if the call's own recording is (a call
    never recorded, or declined, keeps no audio of its supervision either)."""
    return call in ("recorded", "paused")


def agent_channel(agent: str, channels: str) -> str | None:
    """The first of the space-separated channel names (from ``CHANNELS()``) that belongs to the
    agent's endpoint: ``PJSIP/<agent>-<sequence>``."""
    for name in channels.split():
        tech, _, rest = name.partition("/")
        endpoint, dash, _ = rest.rpartition("-")
        if tech and dash and endpoint == agent:
            return name
    return None
