"""``livecall doctor``'s checks of object storage (the store reachable with the credentials
given, and the backlog of recordings still only on this PBX's disk) and the portal's notice of
the backlog."""

from __future__ import annotations

import datetime as dt

from livecall_ari.app import App
from livecall_ari.asterisk.checks import Check
from livecall_ari.config import ConfigError, Settings


def storage_checks(app: App, now: dt.datetime | None = None) -> list[Check]:
    """Nothing for ``backend = "local"``; else the store's reachability and the upload backlog."""
    from livecall_ari.objects.plugin import store_from_settings
    from livecall_ari.objects.services import backlog
    from livecall_ari.objects.store import StoreError
    from livecall_ari.recording.paths import RecordingsFolder

    s = app.settings.storage
    try:
        store = store_from_settings(app.settings)
    except ConfigError as exc:
        return [Check("object storage", False, str(exc))]
    if store is None:
        return []
    checks: list[Check] = []
    try:
        for _key in store.keys(prefix="livecall-doctor/"):
            break
        checks.append(Check("object storage", True, f"{store.name} reachable, credentials accepted"))
    except StoreError as exc:
        missing = "NoSuchBucket" in str(exc)
        hint = "; `livecall serve` creates it" if missing else "; recordings stay on this disk until it is back"
        checks.append(Check("object storage", False, f"{exc}{hint}", warning=missing))
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        app.database()
        ours = backlog(RecordingsFolder.from_settings(app.settings))
        everyone = backlog()
    except Exception as exc:  # the database check says why
        return checks + [Check("upload backlog", False, f"cannot read it: {exc}", warning=True)]
    others = everyone.count - ours.count
    detail = f"this PBX: {ours.describe(now)}" + (f"; other PBXs: {others}" if others > 0 else "")
    stuck = ours.stuck(now, dt.timedelta(minutes=s.backlog_alarm_minutes))
    if stuck:
        detail += f" (longer than [storage] backlog_alarm_minutes = {s.backlog_alarm_minutes}: is `livecall serve` running?)"
    checks.append(Check("upload backlog", not stuck, detail, warning=True))
    return checks


def backlog_notice(settings: Settings, now: dt.datetime | None = None) -> tuple[str, bool] | None:
    """For the portal's admins and DPO, on every page: what waits to upload (every PBX's), and
    whether the oldest has waited longer than ``backlog_alarm_minutes``; None when nothing
    waits, or recordings stay local."""
    from livecall_ari.objects.services import backlog

    if settings.storage.backend != "s3":
        return None
    waiting = backlog()
    if waiting.count == 0:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    return waiting.describe(now), waiting.stuck(now, dt.timedelta(minutes=settings.storage.backlog_alarm_minutes))
