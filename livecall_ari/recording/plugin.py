"""Wiring of recording into ``livecall serve``: its FastAGI entries and a periodic catch-up."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path

from livecall_ari.ami.client import mute_mixmonitor
from livecall_ari.app import App
from livecall_ari.config import ConfigError, Settings
from livecall_ari.recording.agi import RecordingAgi
from livecall_ari.recording.inbound import InboundCalls
from livecall_ari.recording.services import RecordingService

log = logging.getLogger("livecall.recording")


def build_service(app: App) -> RecordingService:
    from livecall_ari.screening.agi import add_objection
    from livecall_ari.screening.numbers import NumberParser
    from livecall_ari.screening.services import list_files

    settings = app.settings
    parser = NumberParser(settings.gate.outside_line_prefix)
    org = settings.organisation.id

    def record_objection(number: str, call_id: str, at: dt.datetime) -> None:
        parsed = parser.parse(number)
        if parsed is None:
            log.warning("objection key pressed on call %s, but %r is not a number to list", call_id, number)
            return
        list_files(app).store.add_objection(
            org, parsed.key, at, "called party",
            f"pressed the objection key during the recording notice of call {call_id}",
        )
        log.info(json.dumps({"event": "objection", "call_id": call_id, "number": parsed.e164, "via": "recording notice"}))

    def record_agent_objection(number: str, call_id: str, at: dt.datetime, agent: str) -> None:
        # Spooled by the dialplan itself, from the call's own variables: no further check.
        from livecall_ari.screening.agent_objections import objection_reason

        if not add_objection(list_files(app), parser, org, number, at, f"agent {agent}",
                             objection_reason(agent, call_id, "(spooled while serve was unreachable) on")):
            log.warning("agent %s's objection code on call %s: %r is not a number to list", agent, call_id, number)

    from livecall_ari.protection.core import RetainedRecord, retention_until
    from livecall_ari.protection.crypto import encrypt_file, recording_keys
    from livecall_ari.protection.services import basis_policy, retention_policy
    from livecall_ari.recording.paths import RecordingsFolder

    bases, retention = basis_policy(settings), retention_policy(settings)
    own_basis = recording_own_basis(settings)

    def keep_until(purpose: str, tags: str, basis: str, at: dt.datetime) -> dt.date | None:
        purposes = (purpose, *[t for t in tags.split(",") if t])
        record = RetainedRecord("recordings", 0, "", "", purposes, basis, at)
        return retention_until(record, retention)[0]

    seal = None
    if settings.protection.encrypt_recordings:
        keys = recording_keys(settings, create=True)

        def seal(path: Path) -> None:
            encrypt_file(path, keys)

    app.database()
    service = RecordingService(RecordingsFolder.from_settings(settings), org, record_objection,
                               lambda purpose: own_basis, keep_until, seal)
    service.record_agent_objection = record_agent_objection
    service.reconcile_after = dt.timedelta(seconds=settings.recording.reconcile_after)
    service.reconcile_every = settings.recording.reconcile_every
    service.min_free_bytes = settings.recording.min_free_mb * 1024 * 1024
    from livecall_ari.recording.compact import compactor_for

    service.compactor, service.workers = compactor_for(settings), settings.recording.finish_workers
    return service


def recording_own_basis(settings: Settings) -> str:
    """A recording's own lawful basis unless the called party consents (RecordingService.started
    then makes it "consent"), whatever its call's purpose rests on; checks [recording]
    notice_mode too. Raises ConfigError naming the setting."""
    from livecall_ari.protection.core import check_basis
    from livecall_ari.recording.core import check_notice_mode, recording_basis

    try:
        check_notice_mode(settings.recording.notice_mode)
        return recording_basis(check_basis(settings.protection.recording_lawful_basis), consented=False)
    except ValueError as exc:
        where = f"{settings.path}: " if settings.path is not None else ""
        raise ConfigError(f"{where}{exc}") from None


def build_agi(app: App, service: RecordingService) -> RecordingAgi:
    r, ami = app.settings.recording, app.settings.ami

    async def mute(channel: str, on: bool) -> None:
        await mute_mixmonitor(ami, channel, on)

    agi = RecordingAgi(service, r.decline_key, r.objection_key, mute, r.consent_key)
    agi.inbound = build_inbound(app, service)
    return agi


def build_inbound(app: App, service: RecordingService) -> InboundCalls:
    """Inbound calls' books, with the caller's number parsed as the gate parses a dialled one."""
    from livecall_ari.screening.numbers import NumberParser

    parser = NumberParser()

    def e164(caller: str) -> str | None:
        parsed = parser.parse(caller)
        return None if parsed is None else parsed.e164

    return InboundCalls(service, app.settings.organisation.id, e164)


async def reconcile_loop(service: RecordingService, stop: asyncio.Event, every: float | None = None) -> None:
    """Catch up on what the dialplan could not report (see RecordingService.reconcile), and
    raise the alarm while the recordings disk is (nearly) full."""
    loop = asyncio.get_running_loop()
    alarm: str | None = None
    while not stop.is_set():
        try:
            counts = await loop.run_in_executor(None, service.reconcile)
            if any(counts.values()):
                log.info(json.dumps({"event": "recordings_reconciled", **counts}))
        except Exception:
            log.exception("recording reconciliation failed")
        now = service.disk_alarm()
        if now is not None:
            log.error("ALARM %s", now)
        elif alarm is not None:
            log.warning("the recordings disk has room again: alarm cleared")
        alarm = now
        try:
            await asyncio.wait_for(stop.wait(), service.reconcile_every if every is None else every)
        except asyncio.TimeoutError:
            pass
    # serve is stopping: recordings still waiting to be finished are left to the next catch-up
    # (their WAVs stay), so serve never waits for a backlog to drain.
    service.close()
