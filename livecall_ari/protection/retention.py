"""Retention: load the facts, let core.retention_plan decide, delete exactly what is due.

Recordings past their date lose their audio (the file and its per-leg siblings, and their
objects in the object store, every version) and are marked ``deleted``; calls (gate
decisions) past theirs are deleted with their notices, their recording rows already emptied,
and any lawful-basis change. A legal hold on a number, a call or a recording keeps everything
it covers. Each deletion is an audit entry.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from livecall_ari.protection import audit
from livecall_ari.protection.core import LegalHold, RetainedRecord, RetentionVerdict, retention_plan
from livecall_ari.protection.registry import delete_recording_linked, execute, linked_files, of_organisation, pk, q, row_id
from livecall_ari.protection.models import CallLawfulBasis, LegalHoldRecord, RetentionRun
from livecall_ari.protection.services import basis_policy, retention_policy
from livecall_ari.storage.times import from_db, to_db
from livecall_ari.recording.paths import RecordingsFolder

if TYPE_CHECKING:
    from peewee import Database

    from livecall_ari.asterisk.checks import Check

    from livecall_ari.app import App

HOLD_KINDS = ("number", "call", "recording")


@dataclass
class RetentionResult:
    dry_run: bool
    verdicts: list[RetentionVerdict] = field(default_factory=list)
    held: int = 0

    @property
    def due(self) -> list[RetentionVerdict]:
        return [v for v in self.verdicts if v.due]

    def deleted_counts(self) -> dict[str, int]:
        counts = {"recordings": 0, "calls": 0}
        for verdict in self.due:
            counts[verdict.record.kind] += 1
        return counts


def active_holds() -> list[LegalHold]:
    rows = LegalHoldRecord.select().where(LegalHoldRecord.released_at.is_null()).order_by(LegalHoldRecord.id)
    return [LegalHold(int(r.id), str(r.kind), str(r.target), str(r.reason)) for r in rows]


def _recordings(organisation: str) -> list[RetainedRecord]:
    from livecall_ari.recording.models import Recording

    rows = Recording.select().where(Recording.state.not_in(["recording", "deleted"])
                                    & of_organisation(Recording.organisation, organisation))
    found = []
    for r in rows:
        tags = tuple(t.strip().lower() for t in str(r.tags or "").split(",") if t.strip())
        started = from_db(r.started_at)
        assert started is not None
        until = r.retention_until
        keep = dt.date.fromisoformat(until) if isinstance(until, str) else until
        found.append(RetainedRecord("recordings", row_id(r), str(r.call_id), str(r.number),
                                    (str(r.purpose).lower(), *tags), str(r.lawful_basis), started, keep))
    return found


def _calls(app: "App") -> list[RetainedRecord]:
    from livecall_ari.gate.models import GateDecision

    policy = basis_policy(app.settings)
    changed = {str(r.call_id): str(r.basis) for r in CallLawfulBasis.select()}
    found = []
    for r in GateDecision.select().where(of_organisation(GateDecision.organisation, app.settings.organisation.id)):
        decided = from_db(r.decided_at)
        assert decided is not None
        basis = changed.get(str(r.call_id)) or policy.basis_for(str(r.purpose))
        found.append(RetainedRecord("calls", row_id(r), str(r.call_id), str(r.number), (str(r.purpose).lower(),), basis, decided))
    return found


def _delete_linked_audio(db: "Database", folder: RecordingsFolder, call_id: str) -> None:
    """Delete the other recordings of a call (supervisors' listen, whisper and barge recordings:
    registry.linked_files) and the rows' note of them: they go when the call's recording does."""
    for table, column, name in linked_files(db, [call_id]):
        path = folder.locate(name, f"delete {table}.{column} of call {call_id} (retention)")
        for part in folder.files(path) if path is not None else []:
            part.unlink(missing_ok=True)
        execute(db, f"UPDATE {q(table)} SET {q(column)} = NULL WHERE {q(column)} = {db.param}", [name])


def run_retention(app: "App", now: dt.datetime, *, dry_run: bool, actor: str) -> RetentionResult:
    """Decide and, unless ``dry_run``, delete what is due; the run is recorded either way."""
    from livecall_ari.gate.models import GateDecision
    from livecall_ari.recording.models import NoticeEvent, Recording, RecordingPause

    db = app.database()
    policy = retention_policy(app.settings)
    # This organisation's rules for its own rows only: another organisation sharing the database
    # keeps its data as its own rules say (docs/data-protection.md).
    verdicts = retention_plan(_recordings(app.settings.organisation.id) + _calls(app), policy, active_holds(), now)
    folder = RecordingsFolder.from_settings(app.settings)
    from livecall_ari.objects.plugin import store_from_settings
    from livecall_ari.objects.services import delete_objects

    objects = None if dry_run else store_from_settings(app.settings)
    result = RetentionResult(dry_run, verdicts, sum(1 for v in verdicts if v.hold is not None))
    run = RetentionRun.create(started_at=to_db(now), dry_run=dry_run, actor=actor, held=result.held,
                              organisation=app.settings.organisation.id)
    if dry_run:
        RetentionRun.update(finished_at=to_db(now), deleted=json.dumps({})).where(RetentionRun.id == run.id).execute()
        return result
    for verdict in result.due:
        record = verdict.record
        details = {"call_id": record.call_id, "purposes": list(record.purposes), "lawful_basis": record.basis,
                   "kept_until": str(verdict.keep_until), "why": verdict.why, "run": int(run.id)}
        with db.atomic():
            if record.kind == "recordings":
                row = Recording.get_or_none(pk(Recording) == record.id)
                if row is not None and row.file and (
                        path := folder.locate(str(row.file), f"delete recording of call {row.call_id} (retention)")):
                    for part in folder.files(path):
                        part.unlink(missing_ok=True)
                # Uploaded audio (objects/), every version; a store that is down stops the run.
                delete_objects(objects, [record.id])
                Recording.update(state="deleted", file=None).where(pk(Recording) == record.id).execute()
                _delete_linked_audio(db, folder, record.call_id)  # supervisors' recordings of the call
                audit.append(actor, "retention.delete", audit.subject_for_recording(record.id), details, at=now)
            else:
                GateDecision.delete().where(pk(GateDecision) == record.id).execute()
                if not GateDecision.select().where(GateDecision.call_id == record.call_id).exists():
                    NoticeEvent.delete().where(NoticeEvent.call_id == record.call_id).execute()
                    emptied = Recording.select(pk(Recording)).where(
                        (Recording.call_id == record.call_id) & (Recording.state == "deleted"))
                    RecordingPause.delete().where(RecordingPause.recording.in_(emptied)).execute()
                    delete_recording_linked(db, [row_id(r) for r in emptied])  # coaching comments, scorecards
                    Recording.delete().where((Recording.call_id == record.call_id) & (Recording.state == "deleted")).execute()
                    CallLawfulBasis.delete().where(CallLawfulBasis.call_id == record.call_id).execute()
                    if not Recording.select().where(Recording.call_id == record.call_id).exists():
                        _delete_linked_audio(db, folder, record.call_id)  # of a call never recorded
                audit.append(actor, "retention.delete", audit.subject_for_call(record.call_id), details | {"decision": record.id}, at=now)
    RetentionRun.update(finished_at=to_db(now), deleted=json.dumps(result.deleted_counts())).where(RetentionRun.id == run.id).execute()
    return result


def add_hold(kind: str, target: str, reason: str, by: str, at: dt.datetime, organisation: str = "") -> LegalHoldRecord:
    if kind not in HOLD_KINDS:
        raise ValueError(f"unknown hold kind {kind!r} (use {', '.join(HOLD_KINDS)})")
    if not reason.strip():
        raise ValueError("a legal hold needs a reason (the claim, the request, the case)")
    with LegalHoldRecord._meta.database.atomic():
        row: LegalHoldRecord = LegalHoldRecord.create(kind=kind, target=target, reason=reason, placed_by=by, placed_at=to_db(at),
                                                      organisation=organisation)
        audit.append(by, "legal_hold.add", f"{kind}:{target}", {"hold": row.id, "reason": reason}, at=at)
    return row


def release_hold(hold_id: int, by: str, at: dt.datetime) -> LegalHoldRecord:
    row = LegalHoldRecord.get_or_none(LegalHoldRecord.id == hold_id)
    if row is None or row.released_at is not None:
        raise ValueError(f"no legal hold {hold_id} in force")
    with LegalHoldRecord._meta.database.atomic():
        LegalHoldRecord.update(released_at=to_db(at), released_by=by).where(LegalHoldRecord.id == hold_id).execute()
        audit.append(by, "legal_hold.remove", f"{row.kind}:{row.target}", {"hold": hold_id}, at=at)
    return row


# An organisation id with no new call for this long is probably no service's any more (an
# [organisation] id changed): its rows are then reached by no retention run.
STALE_ORGANISATION = dt.timedelta(days=30)


def organisations_check(app: "App", now: dt.datetime | None = None) -> "Check":
    """Which organisations' calls the database holds: retention, subject access and erasure here
    reach only this organisation's. A warning when another id has had no call for
    :data:`STALE_ORGANISATION` (an old id of this installation, whose rows nothing deletes)."""
    import peewee

    from livecall_ari.asterisk.checks import Check
    from livecall_ari.gate.models import GateDecision

    ours = app.settings.organisation.id
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        rows = execute(app.database(), f"SELECT {q('organisation')}, COUNT(*), MAX({q('decided_at')}) "
                                       f"FROM {q(GateDecision._meta.table_name)} GROUP BY {q('organisation')}").fetchall()
    except peewee.PeeweeException as exc:
        return Check("organisations", False, f"cannot read the calls' organisations: {exc}")
    others = [(str(org), int(n), from_db(last)) for org, n, last in rows if org not in (ours, "")]
    if not others:
        return Check("organisations", True, f"every call in the database is this organisation's ({ours!r})")
    listed = ", ".join(f"{org!r} ({n} calls)" for org, n, _ in others)
    stale = [org for org, _, last in others if last is None or now - last > STALE_ORGANISATION]
    detail = (f"the database also holds calls of {listed}: retention, subject access and erasure here reach "
              f"only {ours!r}'s")
    if stale:
        detail += (f"; {', '.join(repr(o) for o in stale)} had no call for {STALE_ORGANISATION.days} days: if it is an "
                   f"earlier [organisation] id of this installation, no retention run reaches its rows "
                   f"(set the id back, or move its rows to {ours!r})")
    return Check("organisations", not stale, detail, warning=bool(stale))
