"""The doctor's checks of the admin's own Asterisk: the files it includes, the trunk, the gate in
every phone's dialing path, and the CDR file charges are rated from.

Each names the real cause (a file by path, owner and mode; a context and the pattern that wins;
a trunk that is not there) rather than the symptom it would cause further on. Asterisk's files
are reached through ``[asterisk] root``; its CLI through ``[asterisk] rx_command``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import glob
import os
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from livecall_ari.app import App
from livecall_ari.asterisk.checks import Check
from livecall_ari.asterisk.gate_path import (
    judge_context, is_phone, numbers_to_try, parse_dialplan_show, parse_endpoint_context, parse_endpoints,
)
from livecall_ari.asterisk.render import INCLUDED_FROM
from livecall_ari.config import Settings

CONFIG_DIR = "/etc/asterisk"
# The sandbox's benchmark phone dials the trunk without the gate, to measure the gate's cost
# (asterisk_conf/sandbox/pbx/extensions.conf.j2).
SANDBOX_UNGATED = ("sandbox-direct",)
# A call's CDR is written when it ends: decisions younger than this may belong to calls still up.
CDR_GRACE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class RxResult:
    ok: bool
    text: str
    command: str


async def rx(settings: Settings, command: str, timeout: float = 15) -> RxResult:
    """Run one Asterisk CLI command through ``[asterisk] rx_command``."""
    argv = shlex.split(settings.asterisk.rx_command) + [command]
    shown = " ".join(shlex.quote(a) for a in argv)
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        return RxResult(False, f"could not run `{shown}`: {exc or 'timed out'}", shown)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        return RxResult(False, f"`{shown}` failed: {(err or out).decode(errors='replace').strip()[:200]}", shown)
    return RxResult(True, text, shown)


def config_dir(settings: Settings, asterisk_dir: str = CONFIG_DIR) -> Path:
    """Asterisk's configuration folder (/etc/asterisk unless it says otherwise) as this host sees it."""
    from livecall_ari.recording.files import on_host

    return on_host(settings, asterisk_dir)


def parse_core_settings(text: str) -> dict[str, str]:
    """``core show settings``: its ``Name:   value`` lines (e.g. "Configuration directory")."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and value.strip():
            found.setdefault(name.strip(), value.strip())
    return found


async def asterisk_dirs(settings: Settings) -> tuple[str, str]:
    """Asterisk's configuration and run folders as it sees them (Debian's when it cannot say)."""
    shown = await rx(settings, "core show settings")
    values = parse_core_settings(shown.text) if shown.ok else {}
    return values.get("Configuration directory", CONFIG_DIR), values.get("Run/Sockets directory", "/run/asterisk")


# ---- who Asterisk runs as, and whether it can read a file --------------------------------------

@dataclass(frozen=True)
class AsteriskUser:
    uid: int
    gids: frozenset[int]
    name: str


def _names(path: Path) -> dict[int, str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    return {int(p[2]): p[0] for p in (line.split(":") for line in lines) if len(p) > 3 and p[2].isdigit()}


def asterisk_user(root: Path, conf: Path, run_dir: str = "/run/asterisk") -> AsteriskUser:
    """The user Asterisk runs as: the owner of its pid file (written after it drops root), else
    of asterisk.conf. Its groups come from the /etc/group that Asterisk itself sees."""
    # /var/run is a symlink to /run, an absolute one that would lead out of the root: use /run.
    run = "/run/" + run_dir[len("/var/run/"):] if run_dir.startswith("/var/run/") else run_dir
    probes = [root / run.lstrip("/") / "asterisk.pid", root / "run/asterisk/asterisk.pid", conf / "asterisk.conf"]
    st = next((p.stat() for p in probes if p.exists()), None)
    uid, gid = (st.st_uid, st.st_gid) if st else (0, 0)
    name = _names(root / "etc/passwd").get(uid, str(uid))
    gids = {gid}
    try:
        for line in (root / "etc/group").read_text(errors="replace").splitlines():
            parts = line.split(":")
            if len(parts) > 3 and parts[2].isdigit() and name in parts[3].split(","):
                gids.add(int(parts[2]))
    except OSError:
        pass
    return AsteriskUser(uid, frozenset(gids), name)


def can_read(user: AsteriskUser, st: os.stat_result) -> bool:
    if user.uid == 0:
        return True
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid in user.gids:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def _owner(root: Path, st: os.stat_result) -> str:
    users, groups = _names(root / "etc/passwd"), _names(root / "etc/group")
    return f"{users.get(st.st_uid, st.st_uid)}:{groups.get(st.st_gid, st.st_gid)} mode {stat.S_IMODE(st.st_mode):04o}"


def include_checks(settings: Settings, asterisk_dir: str = CONFIG_DIR, run_dir: str = "/run/asterisk") -> list[Check]:
    """Every ``#include`` of the stock files LiveCall hooks into must exist and be readable by
    Asterisk, which otherwise skips it with only a log line; each of LiveCall's files that is
    there should be included (a warning: the dialplan and ARI checks say what is then missing)."""
    root, conf = settings.asterisk_root(), config_dir(settings, asterisk_dir)
    if not (conf / "asterisk.conf").exists() and not (conf / "extensions.conf").exists():
        return [Check("Asterisk includes", False, f"no Asterisk configuration in {conf}: set [asterisk] root", warning=True)]
    user = asterisk_user(root, conf, run_dir)
    problems: list[str] = []
    unused: list[str] = []
    seen = 0
    for stock in sorted(set(INCLUDED_FROM.values())):
        path = conf / stock
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        for name, optional in _includes(text):
            target = (root / name.lstrip("/")) if name.startswith("/") else conf / name
            matches = [Path(p) for p in glob.glob(str(target))] if any(c in name for c in "*?[") else [target]
            for found in matches:
                if not found.exists():
                    # A #tryinclude may be missing by design; one of LiveCall's files may not.
                    if not optional or found.name in INCLUDED_FROM:
                        problems.append(f"{stock} includes {name}, but {found} does not exist")
                    continue
                seen += 1
                st = found.stat()
                if not can_read(user, st):
                    problems.append(f"{stock} includes {name}, but {found} is {_owner(root, st)} and Asterisk runs as "
                                    f"{user.name} (uid {user.uid}): it cannot read it (chown it like {stock}, mode 0640)")
        for ours, from_stock in INCLUDED_FROM.items():
            if from_stock == stock and (conf / ours).exists() and ours not in {Path(n).name for n, _ in _includes(text)}:
                if ours == "http_livecall.conf" and re.search(r"^\s*enabled\s*=\s*yes", text, re.MULTILINE):
                    continue  # http.conf enables the HTTP server itself (as the sandbox's does)
                unused.append(f"{conf / ours} exists but {path} has no `#include {ours}` line")
    checks = [Check("Asterisk includes", False, "; ".join(problems)) if problems else
              Check("Asterisk includes", True, f"{seen} included files in {conf} readable by Asterisk ({user.name})")]
    if unused:
        checks.append(Check("LiveCall files not included", False, "; ".join(unused), warning=True))
    return checks


def _includes(text: str) -> list[tuple[str, bool]]:
    """Each ``#include``/``#tryinclude`` target of a config file, and whether it may be missing."""
    found = []
    for line in text.splitlines():
        words = line.split(";", 1)[0].strip().split(None, 1)
        if len(words) == 2 and words[0] in ("#include", "#tryinclude"):
            found.append((words[1].strip().strip('"'), words[0] == "#tryinclude"))
    return found


# ---- the trunk and the gate in each phone's path ------------------------------------------------

async def gate_path_checks(settings: Settings) -> list[Check]:
    """The trunk exists; every phone's context sends outside numbers to LiveCall's gate."""
    listed = await rx(settings, "pjsip show endpoints")
    if not listed.ok:
        return [Check("gate in the path", False, f"{listed.text}; set [asterisk] rx_command", warning=True)]
    endpoints = parse_endpoints(listed.text)
    trunk = settings.asterisk.trunk
    names = [e.name for e in endpoints]
    checks = [Check("trunk", trunk in names, f"PJSIP endpoint {trunk!r} is there ([asterisk] trunk)" if trunk in names else
                    f"[asterisk] trunk is {trunk!r}, which is not a PJSIP endpoint of this Asterisk "
                    f"(endpoints: {', '.join(names) or 'none'}): set it (or LIVECALL_ASTERISK_TRUNK) to your trunk's endpoint")]
    phones = [e for e in endpoints if is_phone(e, trunk)]
    if not phones:
        checks.append(Check("gate in the path", False, "no phone endpoints found (a phone has inbound auth and no "
                            "identify-by-IP and is not [asterisk] trunk)", warning=True))
        return checks
    # A few CLI runs at a time: each may be a process start (`livecall sandbox rx` costs a second).
    slots = asyncio.Semaphore(3)

    async def ask(command: str) -> RxResult:
        async with slots:
            return await rx(settings, command, timeout=30)

    details = await asyncio.gather(*(ask(f"pjsip show endpoint {p.name}") for p in phones))
    by_context: dict[str, list[str]] = {}
    for phone, detail in zip(phones, details):
        context = parse_endpoint_context(detail.text) if detail.ok else None
        by_context.setdefault(context or "?", []).append(phone.name)
    numbers = numbers_to_try(settings.gate.outside_line_prefix)
    ungated = set(settings.asterisk.ungated_contexts) | (set(SANDBOX_UNGATED) if settings.asterisk.root == "sandbox" else set())
    for context, members in sorted(by_context.items()):
        if context == "?":
            checks.append(Check("gate in the path", False, f"no context found for phones {', '.join(members)}", warning=True))
            continue
        if context in ungated:
            checks.append(Check(f"gate in the path of {context}", False, f"phones {', '.join(sorted(members))}: context "
                                f"{context} is deliberately outside the gate ([asterisk] ungated_contexts)", warning=True))
            continue
        shown = await asyncio.gather(*(ask(f"dialplan show {n}@{context}") for _, n in numbers))
        # "There is no existence of ..." is an answer (no route); anything else that failed is not.
        unanswered = [r for r in shown if not r.ok and "no existence" not in r.text]
        if unanswered:
            checks.append(Check(f"gate in the path of {context}", False, f"could not ask Asterisk where {len(unanswered)} "
                                f"numbers go from {context}: {unanswered[0].text}", warning=True))
            continue
        routes = {number: parse_dialplan_show(result.text) for number, result in zip(numbers, shown)}
        verdict = judge_context(context, members, routes)
        checks.append(Check(f"gate in the path of {context}", verdict.ok, verdict.describe()))
    return checks


# ---- the CDR file -------------------------------------------------------------------------------

def cdr_file_verdict(
    shown: str, exists: bool, readable: bool, modified: dt.datetime | None, last_decision: dt.datetime | None,
    now: dt.datetime,
) -> tuple[bool, str]:
    """Is the CDR file charges follow there, readable, and written since calls were decided?"""
    if not exists and last_decision is None:
        return True, f"{shown} does not exist yet (Asterisk writes it when the first call ends)"
    if not exists:
        return False, f"{shown} does not exist, but calls were decided: charges will see no calls (is [asterisk] root right, and cdr_csv or cdr_custom loaded?)"
    if not readable:
        return False, f"{shown} cannot be read by LiveCall's user: charges will see no calls"
    if last_decision is not None and modified is not None and modified < last_decision and now - last_decision >= CDR_GRACE:
        return False, (f"{shown} last grew at {modified:%Y-%m-%d %H:%M:%S} UTC, but calls were decided until "
                       f"{last_decision:%Y-%m-%d %H:%M:%S} UTC: Asterisk is writing its CDRs elsewhere "
                       f"(check [charges] cdr_file and [asterisk] root)")
    return True, f"{shown} is there and readable" + (f", last grew at {modified:%Y-%m-%d %H:%M:%S} UTC" if modified else "")


def cdr_file_check(app: App, now: dt.datetime) -> Check:
    from livecall_ari.asterisk.paths import cdr_file_on_host

    s = app.settings
    path = cdr_file_on_host(s)
    if path is None:
        return Check("CDR file", False, "[charges] cdr_file is empty: `livecall serve` imports no CDRs and charges see no calls", warning=True)
    shown = str(path) if str(path) == s.charges.cdr_file else f"{path} ({s.charges.cdr_file} as Asterisk sees it)"
    exists = path.is_file()
    modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc) if exists else None
    ok, detail = cdr_file_verdict(shown, exists, exists and os.access(path, os.R_OK), modified, _last_decision(app, now), now)
    return Check("CDR file", ok, detail)


def _last_decision(app: App, now: dt.datetime) -> dt.datetime | None:
    """The latest gate decision old enough for its call to have ended (UTC); None if none."""
    from peewee import fn

    from livecall_ari.gate.models import GateDecision

    try:
        app.database()
        cutoff = (now - CDR_GRACE).astimezone(dt.timezone.utc)
        # `livecall gate check` decisions (entry "cli") are not calls: no CDR follows them.
        value = (GateDecision.select(fn.MAX(GateDecision.decided_at))
                 .where((GateDecision.decided_at <= cutoff) & (GateDecision.entry != "cli")).scalar())
    except Exception:
        return None  # the database check reports a database that cannot be read
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


async def pbx_checks(app: App) -> list[Check]:
    """All of the above, for ``livecall doctor``."""
    checks = include_checks(app.settings, *await asterisk_dirs(app.settings))
    checks += await gate_path_checks(app.settings)
    from livecall_ari.asterisk.inbound_checks import inbound_checks

    checks += await inbound_checks(app.settings)
    checks.append(cdr_file_check(app, dt.datetime.now(dt.timezone.utc)))
    return checks
