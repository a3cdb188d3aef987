"""Wiring of ``livecall serve``: one asyncio process with the gate's ARI application, the
FastAGI server (gate, recording and supervision entries), and the background work of each
capability (recording catch-up, retention, following the CDR file). The HTTP API and portal
run in a child process it starts and supervises (web/process.py), off the gate's event loop.

Built here from the settings and nowhere else. The service decides and records; it is never in
a call's media path, so stopping or crashing it leaves connected calls alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Coroutine

from livecall_ari.app import App
from livecall_ari.ari.client import AriClient
from livecall_ari.config import ConfigError
from livecall_ari.fastagi.server import FastAgiServer, Handler, secret_problem
from livecall_ari.gate.agi import GateAgiHandler
from livecall_ari.gate.services import DatabaseRecorder, GateService
from livecall_ari.gate.stasis import GateStasisApp
from livecall_ari.recording.plugin import build_agi as build_recording_agi
from livecall_ari.recording.plugin import build_service as build_recording_service
from livecall_ari.recording.plugin import reconcile_loop
from livecall_ari.recording.services import RecordingService
from livecall_ari.screening.agi import build_agent_objection_agi
from livecall_ari.supervision.plugin import agi_handlers as supervision_agi_handlers
from livecall_ari.supervision.plugin import build_service as build_supervision_service
from livecall_ari.supervision.services import SupervisionService

log = logging.getLogger("livecall.serve")


@dataclass
class ServiceDependencies:
    """What the running service is made of (each capability's piece, built once)."""

    service: GateService
    ari: AriClient
    stasis: GateStasisApp
    agi: FastAgiServer
    recording: RecordingService
    supervision: SupervisionService | None = None


def build(app: App) -> ServiceDependencies:
    s = app.settings
    app.database()
    service = GateService(app.decider(), DatabaseRecorder(), s.gate.outside_line_prefix,
                          trunk_number_format=s.asterisk.trunk_number_format)
    ari = AriClient(s.ari.url, s.ari.user, s.ari.password, s.ari.app)
    stasis = GateStasisApp(service, ari, s.gate.default_purpose, s.organisation.id)
    agi_handler = GateAgiHandler(service, s.gate.default_purpose, s.organisation.id)
    recording = build_recording_service(app)
    handlers: dict[str, Handler] = {"screen": agi_handler, **build_recording_agi(app, recording).handlers()}
    supervision = build_supervision_service(app)
    handlers.update(supervision_agi_handlers(app, supervision))
    handlers["agent-objection"] = build_agent_objection_agi(app)
    if (problem := secret_problem(s.fastagi.secret)) is not None:
        # Fail closed: without the secret every request would be refused anyway.
        raise ConfigError(f"[fastagi] secret: {problem}")
    agi = FastAgiServer(handlers, s.fastagi.host, s.fastagi.port, secret=s.fastagi.secret)
    return ServiceDependencies(service, ari, stasis, agi, recording, supervision)


async def _pump_events(deps: ServiceDependencies) -> None:
    async for event in deps.ari.events():
        try:
            await deps.stasis.on_event(event)
        except Exception:
            log.exception("failed to handle ARI event %s", event.get("type"))


async def run(app: App, stop: asyncio.Event) -> None:
    deps = build(app)
    await deps.agi.start()
    log.info(json.dumps({"event": "fastagi_listening", "host": deps.agi.host, "port": deps.agi.port}))
    tasks = [asyncio.create_task(_pump_events(deps), name="ari-events")]
    tasks += [asyncio.create_task(t, name=n) for n, t in extra_tasks(app, stop, deps)]
    for task in tasks:
        task.add_done_callback(_report_failure)
    try:
        await stop.wait()
        # Work that watches `stop` itself (the CDR follower's last read) gets a moment to finish.
        finishing = [t for t in tasks if t.get_name() in _FINISH_ON_STOP]
        if finishing:
            await asyncio.wait(finishing, timeout=5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await deps.agi.close()
        await deps.ari.aclose()


_FINISH_ON_STOP = frozenset({"cdr-follow"})


def _report_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed", task.get_name(), exc_info=task.exception())


def extra_tasks(app: App, stop: asyncio.Event, deps: ServiceDependencies) -> list[tuple[str, Coroutine[Any, Any, None]]]:
    """Background work of other capabilities that runs inside ``livecall serve``."""
    from livecall_ari.protection.services import audit_anchor_loop, retention_loop

    tasks: list[tuple[str, Coroutine[Any, Any, None]]] = [
        ("recording-reconcile", reconcile_loop(deps.recording, stop)),
        ("retention", retention_loop(app, stop)),
        ("audit-anchor", audit_anchor_loop(app, stop)),
    ]
    from livecall_ari.objects.plugin import build_uploader, upload_loop

    if (uploader := build_uploader(app.settings)) is not None:
        storage = app.settings.storage
        tasks.append(("recording-upload", upload_loop(uploader, stop, storage.upload_every, storage.upload_batch)))
    if app.settings.charges.cdr_file:
        from livecall_ari.alarms.services import UnscreenedWatch
        from livecall_ari.charges.services import follow_cdrs
        from livecall_ari.asterisk.paths import cdr_file_on_host

        watch = UnscreenedWatch.from_app(app)  # every imported batch is checked for unscreened calls
        # A path as Asterisk sees it: through [asterisk] root (a chroot, a container, the demo).
        cdr_file = cdr_file_on_host(app.settings)
        assert cdr_file is not None  # the setting is not empty
        if not cdr_file.exists():
            log.warning(json.dumps({"event": "cdr_file_missing", "path": str(cdr_file), "hint": "waiting for it; "
                                    "check [charges] cdr_file and [asterisk] root (`livecall doctor`)"}))
        tasks.append(("cdr-follow", follow_cdrs(app, cdr_file, stop, on_batch=watch.check)))
    if app.settings.web.enabled:
        from livecall_ari.web.process import supervise_web

        # The portal and API in their own process (its own App, AriClient, supervision
        # service): an upload or a slow page never shares the gate's event loop.
        tasks.append(("web", supervise_web(app.settings, stop)))
    return tasks
