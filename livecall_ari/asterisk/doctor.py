"""``livecall doctor``: is Asterisk ready for LiveCall, and is anything exposed?"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import shlex
import stat
from pathlib import Path
from urllib.parse import urlsplit

from livecall_ari.app import App
from livecall_ari.asterisk.checks import Check
from livecall_ari.ari.client import AriClient, AriError, AriUnavailable
from livecall_ari.config import Settings

REQUIRED_MODULES = {
    "res_ari.so": "ARI, for the Stasis entry and live supervision",
    "app_stasis.so": "the Stasis() application of the gate",
    "res_agi.so": "the FastAGI entry",
    "app_mixmonitor.so": "call recording",
    "app_chanspy.so": "live supervision from feature codes",
    "cdr_csv.so": "the CDR backend that charges are rated from",
}

REQUIRED_CONTEXTS = {
    "livecall-outbound": "the context phones include",
    "livecall-gate": "the gate",
    "livecall-allowed": "where allowed calls go",
    "livecall-blocked": "where blocked calls go",
    "livecall-unavailable": "the fail-closed refusal",
    "livecall-emergency": "emergency calls",
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind_check(name: str, host: str, shown: str, risk: str) -> Check:
    loopback = _is_loopback(host)
    return Check(name, loopback, shown + ("" if loopback else f" is not loopback: {risk}"), warning=not loopback)


def _private_file_check(name: str, path: Path, what: str) -> Check | None:
    """A warning when a file holding secrets can be read by its group or by others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # not there (yet): nothing exposed
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(name, False, f"{path} is mode {stat.S_IMODE(mode):o} and holds {what}: chmod 600 {path}", warning=True)
    return Check(name, True, f"{path} is mode {stat.S_IMODE(mode):o}")


def exposure_checks(app: App) -> list[Check]:
    """What LiveCall exposes: services bound beyond loopback, secrets readable by others."""
    from livecall_ari.protection.crypto import audit_key_path, erasure_key_path, recording_key_path

    s = app.settings
    ari_host = urlsplit(s.ari.url).hostname or ""
    checks = [
        _bind_check("ARI bind", ari_host, s.ari.url, "put it behind TLS and a firewall"),
        _bind_check("FastAGI bind", s.fastagi.host, f"{s.fastagi.host}:{s.fastagi.port}",
                    "anyone who reaches it can ask for decisions"),
        _bind_check("AMI host", s.ami.host, f"{s.ami.host}:{s.ami.port}",
                    "the AMI secret crosses the network in clear; keep manager.conf on loopback"),
    ]
    if s.web.enabled:
        checks.append(_bind_check("web bind", s.web.host, f"{s.web.host}:{s.web.port}",
                                  "the portal and API are reachable from the network; put an admin's TLS proxy in front"))
    for name, path, what in (
        ("settings file", s.path, "the ARI password, the API token and the AMI secret"),
        ("recording key", recording_key_path(s), "the key of recordings sealed at rest"),
        ("erasure key", erasure_key_path(s), "the key of erased numbers' pseudonyms"),
        ("audit key", audit_key_path(s), "the key of the audit trail's MACs and anchors"),
    ):
        if path is not None:
            check = _private_file_check(name, Path(path), what)
            if check is not None:
                checks.append(check)
    checks.append(private_data_check(app))
    return checks


def private_data_check(app: App) -> Check:
    """The data folder and what LiveCall keeps of people in it (the SQLite database and its WAL,
    list files, subject access exports, erasure certificates, audit anchors) are the owner's alone."""
    s = app.settings
    data = s.data_path()
    open_: list[str] = []
    places = [data, data / "lists", data / "dsar-exports", data / "erasure-certificates"]
    url = s.database_url()
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        places += [db.parent, db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    for place in dict.fromkeys(places):
        files = sorted(place.iterdir()) if place.is_dir() else []
        for path in [place, *files]:
            try:
                mode = path.stat().st_mode
            except OSError:
                continue
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                open_.append(f"{path} ({stat.S_IMODE(mode):o})")
    if open_:
        shown = ", ".join(open_[:5]) + (f" and {len(open_) - 5} more" if len(open_) > 5 else "")
        return Check("private data", False, f"readable by others: {shown}: chmod -R go= {data}", warning=True)
    return Check("private data", True, f"{data} and what it keeps are readable by their owner only")


async def run_checks(app: App) -> list[Check]:
    s = app.settings
    checks: list[Check] = exposure_checks(app)
    from livecall_ari.alarms.services import unscreened_check  # fails until every unscreened call is acknowledged

    checks.append(unscreened_check(app))
    from livecall_ari.asterisk.pbx_checks import pbx_checks  # its checks' causes come before ARI's symptoms

    checks += await pbx_checks(app)
    if not s.ari.password:
        checks.append(Check("ARI credentials", False, "no ARI password in the settings: run `livecall init`"))
    else:
        async with AriClient(s.ari.url, s.ari.user, s.ari.password, s.ari.app, timeout=3) as ari:
            try:
                info = await ari.call("asterisk_info")
                version = info.get("system", {}).get("version", "?") if isinstance(info, dict) else "?"
                checks.append(Check("ARI", True, f"reachable at {s.ari.url}, Asterisk {version}, credentials accepted"))
                checks.append(system_name_check(app, info))
            except AriError as exc:
                why = "credentials refused (check [ari] user/password and ari_livecall.conf)" if exc.status == 401 else str(exc)
                checks.append(Check("ARI", False, why))
                return checks + [_database_check(app), recordings_disk_check(app)]
            except AriUnavailable as exc:
                checks.append(Check("ARI", False, f"not reachable at {s.ari.url}: is http.conf enabled and Asterisk running? ({exc})"))
                return checks + [_database_check(app), recordings_disk_check(app)]
            for module, why in REQUIRED_MODULES.items():
                try:
                    data = await ari.call("asterisk_module", {"moduleName": module})
                    status = data.get("status", "?") if isinstance(data, dict) else "?"
                    checks.append(Check(f"module {module}", status == "Running", f"{status} ({why})"))
                except AriError:
                    checks.append(Check(f"module {module}", False, f"not loaded: needed for {why}"))
    checks.extend(await _dialplan_checks(app))
    checks.append(_database_check(app))
    checks.append(recordings_disk_check(app))
    from livecall_ari.recording.compact import format_check  # opusenc for [recording] format = "opus"

    checks.append(format_check(s))
    from livecall_ari.protection.privacy import organisation_check  # PECR reg 24: who is calling

    checks.append(organisation_check(s))
    from livecall_ari.protection.retention import organisations_check  # whose rows retention and erasure reach

    checks.append(organisations_check(app))
    from livecall_ari.objects.checks import storage_checks  # the store and the upload backlog ([storage])

    checks += storage_checks(app)
    return checks


def system_name_check(app: App, info: object) -> Check:
    """Asterisk's systemname against [asterisk] system_name: PBXs sharing one database tell
    their CDRs apart by it (it prefixes every uniqueid)."""
    config = info.get("config", {}) if isinstance(info, dict) else {}
    asterisk_name = str(config.get("name", "") if isinstance(config, dict) else "")
    ours = app.settings.system_name()
    if asterisk_name == ours:
        return Check("system name", True, f"Asterisk's systemname is {ours!r}, as [asterisk] system_name")
    shared = not app.settings.database_url().startswith("sqlite")
    why = (f"Asterisk's systemname is {asterisk_name or '(not set)'!r}, [asterisk] system_name is {ours!r}: set "
           f"`systemname = {ours}` in asterisk.conf [options]")
    if shared:
        why += " (PBXs sharing this database tell their CDRs apart by it)"
    return Check("system name", not shared, why, warning=shared)


def recordings_disk_check(app: App) -> Check:
    """Free space where Asterisk writes recordings: a warning when low, a failure when full."""
    from livecall_ari.recording.core import DISK_FULL_BYTES
    from livecall_ari.recording.files import disk_report, free_bytes, on_host

    s = app.settings
    root = on_host(s, s.recordings_dir())
    free, min_free = free_bytes(root), s.recording.min_free_mb * 2**20
    if free >= max(min_free, DISK_FULL_BYTES):
        return Check("recordings disk", True, f"{free / 2**30:,.1f} GiB free in {root}")
    return Check("recordings disk", False, disk_report(root, free, min_free), warning=free >= DISK_FULL_BYTES)


def _database_check(app: App) -> Check:
    url = app.settings.database_url()
    shown = url.split("@")[-1] if "@" in url else url
    try:
        app.database().execute_sql("SELECT 1")  # type: ignore[no-untyped-call]
        return Check("database", True, f"reachable ({shown})")
    except Exception as exc:
        return Check("database", False, f"{shown}: {exc}")


async def _dialplan_checks(app: App) -> list[Check]:
    """ARI cannot list the dialplan, so ask Asterisk's CLI (``[asterisk] rx_command``)."""
    argv = shlex.split(app.settings.asterisk.rx_command) + ["dialplan show"]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    except (OSError, asyncio.TimeoutError) as exc:
        return [Check("dialplan", False, f"could not run `{' '.join(argv)}`: {exc}; set [asterisk] rx_command", warning=True)]
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip()[:200]
        return [Check("dialplan", False, f"`{' '.join(argv)}` failed: {detail}; set [asterisk] rx_command", warning=True)]
    text = out.decode(errors="replace")
    checks = []
    for context, why in REQUIRED_CONTEXTS.items():
        present = f"Context '{context}'" in text
        detail = f"present ({why})" if present else f"missing ({why}): render with `livecall asterisk render` and #include extensions_livecall.conf"
        checks.append(Check(f"dialplan {context}", present, detail))
    secret_check = fastagi_secret_check(app.settings, text)
    if secret_check is not None:
        checks.append(secret_check)
    return checks


def fastagi_secret_check(settings: Settings, dialplan: str) -> Check | None:
    """Whether every AGI URL of ``dialplan show`` that reaches ``serve`` carries the current
    ``[fastagi] secret`` (serve refuses the others, and the calls then fail closed); None when
    the dialplan calls no FastAGI of ours. The secret itself is never shown."""
    import hmac
    from urllib.parse import parse_qsl

    where = f"{settings.fastagi.host}:{settings.fastagi.port}"
    urls = re.findall(rf"agi://{re.escape(where)}/[^,)\s\"]*", dialplan)
    if not urls:
        return None
    secret = settings.fastagi.secret.encode()

    def carries(url: str) -> bool:
        values = [v for k, v in parse_qsl(url.partition("?")[2]) if k == "secret"]
        return bool(secret) and len(values) == 1 and hmac.compare_digest(values[0].encode(), secret)

    stale = [url.partition("?")[0].rsplit("/", 1)[-1] for url in urls if not carries(url)]
    if not stale:
        return Check("dialplan FastAGI secret", True, f"all {len(urls)} AGI calls to {where} carry [fastagi] secret")
    return Check("dialplan FastAGI secret", False,
                 f"{len(stale)} of {len(urls)} AGI calls to {where} ({', '.join(sorted(set(stale)))}) lack the current "
                 "[fastagi] secret, so serve refuses them and those calls fail closed: run `livecall init` if the "
                 "settings have none, render the dialplan again (`livecall asterisk render`) and `dialplan reload`")
