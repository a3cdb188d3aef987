"""``livecall doctor``: is Asterisk ready for LiveCall, and is anything exposed?"""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from livecall_ari.app import App
from livecall_ari.ari.client import AriClient, AriError, AriUnavailable

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


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_checks(app: App) -> list[Check]:
    s = app.settings
    checks: list[Check] = []
    ari_host = urlsplit(s.ari.url).hostname or ""
    checks.append(Check("ARI bind", _is_loopback(ari_host), f"{s.ari.url}" + ("" if _is_loopback(ari_host) else " is not loopback: put it behind TLS and a firewall"), warning=not _is_loopback(ari_host)))
    checks.append(Check("FastAGI bind", _is_loopback(s.fastagi.host), f"{s.fastagi.host}:{s.fastagi.port}" + ("" if _is_loopback(s.fastagi.host) else " is not loopback: anyone who reaches it can ask for decisions"), warning=not _is_loopback(s.fastagi.host)))
    if not s.ari.password:
        checks.append(Check("ARI credentials", False, "no ARI password in the settings: run `livecall init`"))
    else:
        async with AriClient(s.ari.url, s.ari.user, s.ari.password, s.ari.app, timeout=3) as ari:
            try:
                info = await ari.call("asterisk_info")
                version = info.get("system", {}).get("version", "?") if isinstance(info, dict) else "?"
                checks.append(Check("ARI", True, f"reachable at {s.ari.url}, Asterisk {version}, credentials accepted"))
            except AriError as exc:
                why = "credentials refused (check [ari] user/password and ari_livecall.conf)" if exc.status == 401 else str(exc)
                checks.append(Check("ARI", False, why))
                return checks + [_database_check(app)]
            except AriUnavailable as exc:
                checks.append(Check("ARI", False, f"not reachable at {s.ari.url}: is http.conf enabled and Asterisk running? ({exc})"))
                return checks + [_database_check(app)]
            for module, why in REQUIRED_MODULES.items():
                try:
                    data = await ari.call("asterisk_module", {"moduleName": module})
                    status = data.get("status", "?") if isinstance(data, dict) else "?"
                    checks.append(Check(f"module {module}", status == "Running", f"{status} ({why})"))
                except AriError:
                    checks.append(Check(f"module {module}", False, f"not loaded: needed for {why}"))
    checks.extend(await _dialplan_checks(app))
    checks.append(_database_check(app))
    return checks


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
    return checks
