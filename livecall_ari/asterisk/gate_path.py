"""Is LiveCall's gate in every phone's dialing path? The pure part of the doctor's answer.

Asterisk's CLI tells us which PJSIP endpoints exist (``pjsip show endpoints``), which context an
endpoint's calls start in (``pjsip show endpoint NAME``) and which extension a number would reach
from a context (``dialplan show NUMBER@CONTEXT``). This module turns that text into decisions:
which endpoints are phones, which representative numbers to try, and whether the extension that
wins is LiveCall's. It runs no command, reads no file and no clock; the doctor hands it the text.

A context's own extensions match before any ``include =>``, so an admin's ``_0X.`` that dials the
trunk beats ``include => livecall-outbound``: that is what this catches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from livecall_ari.gate.core import EMERGENCY_NUMBERS

# The contexts that lead into the gate. Not every "livecall-*" name: a phone context an admin (or
# the sandbox) calls "livecall-agents" proves nothing, and an extension that lands in
# livecall-allowed dials the trunk with no decision at all.
GATE_CONTEXTS = frozenset({"livecall-outbound", "livecall-gate"})

# Numbers a phone's user dials to reach the PSTN, one of each kind the gate screens.
REPRESENTATIVE_NUMBERS: tuple[tuple[str, str], ...] = (
    ("UK landline", "01132960000"),
    ("UK mobile", "07700900123"),
    ("UK 03", "03001234567"),
    ("UK 08", "08001234567"),
    ("+44", "+441132960000"),
    ("00 international", "0033123456789"),
)


@dataclass(frozen=True)
class Endpoint:
    """A PJSIP endpoint as ``pjsip show endpoints`` lists it."""

    name: str
    inbound_auth: bool
    identified_by_ip: bool


@dataclass(frozen=True)
class Route:
    """The extension that wins for a number in a context: where it lives and what it runs first."""

    context: str
    pattern: str
    first_step: str
    where: str

    @property
    def through_gate(self) -> bool:
        """LiveCall's gate contexts, or an admin's extension whose first step jumps straight into one."""
        if self.context in GATE_CONTEXTS:
            return True
        jump = re.match(r"(?i)(?:Goto|Gosub)\(\s*([^,)\s]+)\s*,", self.first_step)
        return jump is not None and jump.group(1) in GATE_CONTEXTS


@dataclass(frozen=True)
class Bypass:
    """A number that reaches something other than LiveCall from a phone's context."""

    label: str
    number: str
    route: Route


@dataclass(frozen=True)
class ContextVerdict:
    """What the representative numbers do from one phones' context."""

    context: str
    phones: tuple[str, ...]
    bypasses: tuple[Bypass, ...]
    unrouted: tuple[str, ...]
    through_gate: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.bypasses and bool(self.through_gate)

    def describe(self) -> str:
        who = f"phone{'s' if len(self.phones) > 1 else ''} {', '.join(self.phones)} (context {self.context})"
        if self.bypasses:
            worst = self.bypasses[0]
            others = ", ".join(b.number for b in self.bypasses[1:])
            why = ("a context's own extensions win over `include => livecall-outbound`" if worst.route.context == self.context
                   else f"[{worst.route.context}] is included before livecall-outbound, and the first include that matches wins")
            return (
                f"{who}: {worst.number} ({worst.label}) reaches the admin's pattern '{worst.route.pattern}' in "
                f"[{worst.route.context}] ({worst.route.first_step} at {worst.route.where}), not LiveCall's gate"
                + (f"; so do {others}" if others else "")
                + f": remove or narrow that pattern ({why})"
            )
        if not self.through_gate:
            return (f"{who}: no outside number reaches LiveCall's gate (none routes at all): "
                    f"add `include => livecall-outbound` to [{self.context}] (`livecall asterisk install --context {self.context}`)")
        tail = f"; no route for {', '.join(self.unrouted)}" if self.unrouted else ""
        return f"{who}: {len(self.through_gate)} outside numbers reach LiveCall's gate{tail}"


def is_phone(endpoint: Endpoint, trunk: str) -> bool:
    """Our rule: a phone authenticates its calls (inbound auth) and is not matched by IP address
    (``identify``); the configured trunk and every other endpoint are trunks."""
    return endpoint.name != trunk and endpoint.inbound_auth and not endpoint.identified_by_ip


# Most UK PBXs take 9 for an outside line: an admin's `_9X.` to the trunk is a way around the gate
# even when LiveCall was not told of a prefix.
USUAL_OUTSIDE_LINE_PREFIX = "9"


def numbers_to_try(outside_line_prefix: str) -> list[tuple[str, str]]:
    """The representative numbers, each also behind the outside-line prefix (9 when none is set)."""
    prefix = outside_line_prefix or USUAL_OUTSIDE_LINE_PREFIX
    numbers = list(REPRESENTATIVE_NUMBERS)
    numbers += [(f"{label} after {prefix}", prefix + number) for label, number in REPRESENTATIVE_NUMBERS]
    return [(label, n) for label, n in numbers if n not in EMERGENCY_NUMBERS]


_ENDPOINT = re.compile(r"^ Endpoint:\s+(?P<name>\S+)\s")
_IN_AUTH = re.compile(r"^\s+InAuth:\s+\S")
_IDENTIFY = re.compile(r"^\s+Identify:\s+\S")


def parse_endpoints(text: str) -> list[Endpoint]:
    """Parse ``pjsip show endpoints`` (the header's ``<Endpoint/CID...>`` lines are skipped)."""
    found: list[Endpoint] = []
    name: str | None = None
    auth = identify = False
    for line in text.splitlines():
        match = _ENDPOINT.match(line)
        if match and not match["name"].startswith("<"):
            if name is not None:
                found.append(Endpoint(name, auth, identify))
            # "NAME/CALLERID" when the endpoint has a caller ID
            name, auth, identify = match["name"].split("/", 1)[0], False, False
        elif name is not None and _IN_AUTH.match(line) and "<" not in line:
            auth = True
        elif name is not None and _IDENTIFY.match(line) and "<" not in line:
            identify = True
    if name is not None:
        found.append(Endpoint(name, auth, identify))
    return found


def parse_endpoint_context(text: str) -> str | None:
    """The ``context`` field of ``pjsip show endpoint NAME``."""
    match = re.search(r"^\s*context\s*:\s*(\S+)\s*$", text, re.MULTILINE)
    return match[1] if match else None


_CONTEXT_HEADER = re.compile(r"^\[ (?:Included )?[Cc]ontext '(?P<context>[^']+)'")
_EXTENSION = re.compile(r"^\s+'(?P<pattern>[^']+)'(?:\s+\([^)]*\))?\s+=>\s+(?P<rest>.*)$")
_STEP = re.compile(r"^(?:hint:\s*\S+\s*)?(?:\d+\.|\[\w+\]\s*\d+\.)?\s*(?P<app>.*?)\s+\[(?P<where>[^\]]+)\]\s*$")


def parse_dialplan_show(text: str) -> Route | None:
    """The winning extension in ``dialplan show NUMBER@CONTEXT``: the first one listed.

    Asterisk lists the context's own matching extensions first, best match first, then each
    included context's in include order; that is also the order it tries them in. None when no
    extension matches ("There is no existence of ...").
    """
    context: str | None = None
    for line in text.splitlines():
        header = _CONTEXT_HEADER.match(line)
        if header:
            context = header["context"]
            continue
        ext = _EXTENSION.match(line)
        if ext and context is not None:
            rest = ext["rest"].strip()
            if rest.startswith("hint:"):
                continue
            step = _STEP.match(rest)
            app, where = (step["app"], step["where"]) if step else (rest, "?")
            app = re.sub(r"^\d+\.\s*", "", app)
            return Route(context, ext["pattern"], app, where)
    return None


def judge_context(context: str, phones: list[str], routes: dict[tuple[str, str], Route | None]) -> ContextVerdict:
    """Sort each number's winning route (``routes[(label, number)]``) into through the gate,
    bypassing it, or going nowhere."""
    bypasses, unrouted, through = [], [], []
    for (label, number), route in routes.items():
        if route is None:
            unrouted.append(number)
        elif route.through_gate:
            through.append(number)
        else:
            bypasses.append(Bypass(label, number, route))
    return ContextVerdict(context, tuple(sorted(phones)), tuple(bypasses), tuple(unrouted), tuple(through))
