"""Wiring of supervision inside ``livecall serve``: its FastAGI handler and its API service."""

from __future__ import annotations

import logging

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
    app.database()
    return SupervisionService(
        policy, DatabaseSessionStore(), audit.append, beep=s.beep, record_monitoring=s.record_monitoring,
        ring_timeout=s.ring_timeout, recordings_dir=app.settings.recordings_dir(),
    )


def agi_handlers(service: SupervisionService | None) -> dict[str, Handler]:
    """The ``supervision`` FastAGI script (none without a service)."""
    return {} if service is None else {"supervision": SupervisionAgiHandler(service)}
