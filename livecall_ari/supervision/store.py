"""The sessions and their events in the database (``supervision_sessions``, ``supervision_events``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Mapping

from livecall_ari.supervision.models import SupervisionEvent, SupervisionSession
from livecall_ari.supervision.services import Session

_FIELDS = [f.name for f in dataclasses.fields(Session)]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back text for timezone-aware values
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _session(row: SupervisionSession) -> Session:
    values = {name: getattr(row, name) for name in _FIELDS}
    for name in ("requested_at", "started_at", "ended_at"):
        values[name] = _utc(values[name])
    return Session(**values)


class DatabaseSessionStore:
    """Needs the database opened (models bound) first, as every store does. Sessions are marked
    as ``organisation``'s (several organisations' services may share a database)."""

    def __init__(self, organisation: str = "") -> None:
        self.organisation = organisation

    def save(self, session: Session) -> None:
        values = dataclasses.asdict(session)
        for name in ("requested_at", "started_at", "ended_at"):
            if values[name] is not None:
                values[name] = values[name].astimezone(dt.timezone.utc).replace(tzinfo=None)
        session_id = values.pop("id")
        # Update, else insert: portable between SQLite and PostgreSQL (no REPLACE/UPSERT needed).
        if not SupervisionSession.update(**values).where(SupervisionSession.id == session_id).execute():
            SupervisionSession.insert(id=session_id, organisation=self.organisation, **values).execute()

    def get(self, session_id: str) -> Session | None:
        row = SupervisionSession.get_or_none(SupervisionSession.id == session_id)
        return None if row is None else _session(row)

    def add_event(self, session_id: str, at: dt.datetime, event: str, mode: str, detail: Mapping[str, Any]) -> None:
        SupervisionEvent.create(
            session=session_id, at=at.astimezone(dt.timezone.utc).replace(tzinfo=None), event=event, mode=mode,
            detail=json.dumps(dict(detail), sort_keys=True, default=str),
        )

    def recent(self, limit: int) -> list[Session]:
        query = SupervisionSession.select().order_by(SupervisionSession.requested_at.desc()).limit(limit)
        return [_session(row) for row in query]

    def recorded_on_call(self, call_id: str) -> list[Session]:
        """The call's sessions still running that record it."""
        query = SupervisionSession.select().where(
            (SupervisionSession.call_id == call_id) & (SupervisionSession.status == "active")
            & SupervisionSession.recording.is_null(False)
        )
        return [_session(row) for row in query]

    def events(self, session_id: str) -> list[dict[str, Any]]:
        query = SupervisionEvent.select().where(SupervisionEvent.session == session_id).order_by(SupervisionEvent.id)
        return [
            {"at": _utc(e.at), "event": e.event, "mode": e.mode, "detail": json.loads(e.detail or "{}")}
            for e in query
        ]


def call_recording_state(call_id: str) -> str:
    """The state of a call's own recording, as supervision follows it (core.CALL_RECORDING_STATES):
    ``declined`` once its called party declined (or its audio is gone), ``paused`` while a pause is
    open, ``recorded`` while it records, ``pending`` before there is any recording of it."""
    from livecall_ari.recording.models import Recording, RecordingPause

    row = Recording.get_or_none(Recording.call_id == call_id)
    if row is None:
        return "pending"
    if row.state in ("declined", "deleted") or (row.state != "recording" and not row.file):
        return "declined"
    open_pause = RecordingPause.select().where((RecordingPause.recording == row) & RecordingPause.resumed_at.is_null())
    return "paused" if open_pause.exists() else "recorded"
