"""Wiring of supervision inside ``livecall serve``: its FastAGI handler and its API service."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from livecall_ari.ami.client import mute_mixmonitor, stop_mixmonitor
from livecall_ari.app import App
from livecall_ari.config import ConfigError
from livecall_ari.fastagi.server import Handler
from livecall_ari.supervision.agi import SupervisionAgiHandler
from livecall_ari.supervision.core import policy_from_settings
from livecall_ari.supervision.services import SupervisionService

log = logging.getLogger("livecall.supervision")


def build_service(app: App) -> SupervisionService | None:
    """The service from the settings. With a bad ``[supervision]`` section there is none: the
    error is logged and the dialplan, which gets no answer, refuses everyone (fail closed)."""
    from livecall_ari.protection import audit
    from livecall_ari.supervision.store import DatabaseSessionStore

    s = app.settings.supervision
    try:
        policy = policy_from_settings(s)
    except ConfigError as exc:
        log.error("supervision disabled: %s", exc)
        return None
    from livecall_ari.recording.paths import RecordingsFolder
    from livecall_ari.supervision.store import call_recording_state

    folder = RecordingsFolder.from_settings(app.settings)

    def discard(path: str) -> None:
        confined = folder.locate(path, "delete a supervision recording its call does not keep")
        for part in folder.files(confined) if confined is not None else []:
            part.unlink(missing_ok=True)

    app.database()
    return SupervisionService(
        policy, DatabaseSessionStore(app.settings.organisation.id), audit.append, beep=s.beep, record_monitoring=s.record_monitoring,
        ring_timeout=s.ring_timeout, recordings_dir=app.settings.recordings_dir(),
        call_state=call_recording_state, discard=discard,
    )


def agi_handlers(app: App, service: SupervisionService | None) -> dict[str, Handler]:
    """The ``supervision`` FastAGI script (none without a service): it mutes and stops the
    sessions' recordings over AMI as their calls' recordings change."""
    if service is None:
        return {}
    ami = app.settings.ami

    async def mute(channel: str, on: bool) -> None:
        await mute_mixmonitor(ami, channel, on)

    async def stop(channel: str) -> None:
        await stop_mixmonitor(ami, channel)

    return {"supervision": SupervisionAgiHandler(service, mute, stop, seal=sealer(app))}


def sealer(app: App) -> Callable[[str], None] | None:
    """Encrypts a session's recording at rest once MixMonitor has closed it, as the calls' own
    recordings are (``[protection] encrypt_recordings``); None when they are not."""
    from livecall_ari.protection.crypto import encrypt_file, is_encrypted, recording_keys
    from livecall_ari.recording.paths import RecordingsFolder

    if not app.settings.protection.encrypt_recordings:
        return None
    keys = recording_keys(app.settings, create=True)
    folder = RecordingsFolder.from_settings(app.settings)

    def seal(path: str) -> None:
        confined = folder.locate(path, "encrypt a supervision recording")
        if confined is None or not settled(confined.host, timeout=30.0):
            log.error("supervision recording %s was not closed in time; left unencrypted", path)
            return
        for part in folder.files(confined):
            if not is_encrypted(part):
                encrypt_file(part, keys)

    return seal


def settled(path: Path, timeout: float, every: float = 1.0) -> bool:
    """Whether the file exists and its size stopped changing (MixMonitor closes it after hangup)."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else -1
        if size >= 0 and size == last:
            return True
        last = size
        time.sleep(every)
    return False
