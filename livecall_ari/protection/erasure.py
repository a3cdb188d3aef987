"""Erasure of a telephone number: a persistent job of steps, each committed with its mark.

``livecall erase NUMBER`` looks the job up by the number's keyed hash (never by the number) and
runs the steps not yet done, so a run killed anywhere is finished by the next:

1. ``suppress``: the keyed hash goes into the suppression table, with a screening revision bump,
   so from this moment on marketing and claims calls to the number are blocked as ``objection``;
2. ``recordings``: audio files (and their per-leg siblings) unlinked, their objects in the
   object store deleted (every version), then the rows deleted, with
   what is kept about them (coaching comments, scorecards: registry.recording_linked_tables); a
   file already gone (a previous run died after unlinking) is counted as such;
3. ``exports``: subject access export files made for the number are deleted;
4. ``rows``: each registry table's rows deleted, or pseudonymised (``erased:<hmac prefix>``)
   where a record must stay for the accounts (call charges) or as the gate's evidence;
5. ``text``: every other text column mentioning the number in any form (``0044...``, spaced,
   behind the outside-line prefix) has each mention replaced whole by the pseudonym;
6. ``audit``: audit entries mentioning it are redacted (the chain still verifies);
7. ``certificate``: a JSON certificate (what, when, counts, the request's hash) is written.

On SQLite, ``secure_delete`` overwrites freed space and the WAL is checkpointed and truncated,
so the database file itself keeps no copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import peewee

from livecall_ari.protection import audit
from livecall_ari.objects.services import delete_objects
from livecall_ari.objects.store import Store
from livecall_ari.recording.paths import RecordingsFolder
from livecall_ari.protection.core import canonical, key_fingerprint, keyed_hash, pseudonym
from livecall_ari.protection.mentions import like_pattern, replace_mentions
from livecall_ari.protection.models import DsarRequest, ErasureJob, LegalHoldRecord, Suppression
from livecall_ari.protection.registry import (
    OWN_TABLES, columns, delete_recording_linked, execute, is_text, linked_files, number_forms, of_organisation, owned, personal_tables, pk,
    q, row_id, subject_calls, subject_where,
)
from livecall_ari.screening.numbers import NumberParser
from livecall_ari.screening.store import ScreeningStore

UTC = dt.timezone.utc
STEPS = ("suppress", "recordings", "exports", "rows", "text", "audit", "certificate")
Stage = Callable[[str], None]


class ErasureRefused(Exception):
    """Erasure cannot go ahead (a legal hold); the message says why."""


@dataclass
class ErasureResult:
    job: int
    certificate: dict[str, Any]
    certificate_file: Path
    resumed: bool


class Erasure:
    def __init__(self, db: peewee.Database, key: bytes, certificates: Path, screening: ScreeningStore,
                 actor: str, organisation: str, stage: Stage | None = None,
                 *, folder: RecordingsFolder, objects: Store | None = None, organisation_id: str = "") -> None:
        self.db = db
        # The object store recordings were uploaded to ([storage] backend = "s3"), if any.
        self.objects = objects
        self.parser = NumberParser()
        # Every recording path of a row is confined to it before a file is deleted (recording.paths).
        self.folder = folder
        self.key = key
        self.certificates = certificates
        self.screening = screening
        self.actor = actor
        self.organisation = organisation
        # The [organisation] id its job is filed under, and whose rows it reaches (registry.owned:
        # organisations may share a database); "" reaches every row.
        self.organisation_id = organisation_id
        self.stage = stage or (lambda _s: None)

    def _recordings_of(self, forms: tuple[str, ...]) -> Any:
        """The number's recordings that are this organisation's."""
        from livecall_ari.recording.models import Recording

        return Recording.number.in_(forms) & of_organisation(Recording.organisation, self.organisation_id)

    def run(self, e164: str, at: dt.datetime) -> ErasureResult:
        number_hash = keyed_hash(self.key, e164)
        forms = number_forms(e164)
        self._check_holds(e164, forms)
        job = ErasureJob.get_or_none(ErasureJob.request_hash == number_hash)
        created = job is None
        if job is None:
            job = ErasureJob.create(request_hash=number_hash, pseudonym=pseudonym(self.key, e164),
                                    requested_by=self.actor, started_at=_db(at), organisation=self.organisation_id)
        resumed = not created and job.state == "running"
        if not created and job.state == "done":
            # A new pass: anything recorded since (a blocked attempt, a CDR) is erased too.
            job.state, job.steps_done, job.started_at = "running", "[]", _db(at)
            job.save()
        if isinstance(self.db, peewee.SqliteDatabase):
            execute(self.db, "PRAGMA secure_delete = ON")
        done: list[str] = json.loads(job.steps_done)
        for step in STEPS:
            if step in done:
                continue
            self.stage(f"{step}:before")
            getattr(self, f"_{step}")(job, e164, forms, at)
            self.stage(f"{step}:after")
        if isinstance(self.db, peewee.SqliteDatabase):
            execute(self.db, "PRAGMA wal_checkpoint(TRUNCATE)")
        job = ErasureJob.get_by_id(job.id)
        path = Path(str(job.certificate))
        return ErasureResult(int(job.id), json.loads(path.read_text()), path, resumed)

    def _check_holds(self, e164: str, forms: tuple[str, ...]) -> None:
        from livecall_ari.recording.models import Recording

        calls = subject_calls(self.db, e164, self.organisation_id)
        recordings = [str(row_id(r)) for r in Recording.select(pk(Recording)).where(self._recordings_of(forms))]
        holds = list(LegalHoldRecord.select().where(
            LegalHoldRecord.released_at.is_null() & of_organisation(LegalHoldRecord.organisation, self.organisation_id) & (
                ((LegalHoldRecord.kind == "number") & LegalHoldRecord.target.in_(forms))
                | ((LegalHoldRecord.kind == "call") & LegalHoldRecord.target.in_(calls or [""]))
                | ((LegalHoldRecord.kind == "recording") & LegalHoldRecord.target.in_(recordings or [""]))
            )
        ))
        if holds:
            listed = "; ".join(f"hold {h.id} on {h.kind} {h.target if h.kind != 'number' else '(this number)'}: {h.reason}" for h in holds)
            raise ErasureRefused(f"refused: legal holds cover this number's data ({listed}); release them first")

    def _mark(self, job: ErasureJob, step: str, counts: dict[str, int]) -> None:
        row = ErasureJob.get_by_id(job.id)
        done = json.loads(row.steps_done) + [step]
        total: dict[str, dict[str, int]] = json.loads(row.counts)
        merged = total.setdefault(step, {})
        for name, value in counts.items():
            merged[name] = merged.get(name, 0) + value
        ErasureJob.update(steps_done=json.dumps(done), counts=json.dumps(total)).where(ErasureJob.id == job.id).execute()

    def _suppress(self, job: ErasureJob, e164: str, forms: tuple[str, ...], at: dt.datetime) -> None:
        with self.screening.change():
            added = Suppression.insert(
                number_hash=job.request_hash, key_fingerprint=key_fingerprint(self.key), job=job.id, created_at=_db(at)
            ).on_conflict_ignore().execute()
            self._mark(job, "suppress", {"numbers_suppressed": 1 if added else 0})

    def _recordings(self, job: ErasureJob, e164: str, forms: tuple[str, ...], at: dt.datetime) -> None:
        from livecall_ari.recording.models import Recording, RecordingPause

        with self.db.atomic():
            rows = list(Recording.select().where(self._recordings_of(forms)))
            counts = {"recordings": len(rows), "files_deleted": 0, "bytes_deleted": 0, "files_already_gone": 0}
            for row in rows:
                if not row.file:
                    continue
                self._delete_files(str(row.file), f"erase recording of call {row.call_id}", counts, row_file=True)
            # Monitoring recordings and other audio of the number's calls named by linked tables.
            for table, column, name in linked_files(self.db, subject_calls(self.db, e164, self.organisation_id)):
                self._delete_files(name, f"erase the file {table}.{column} names", counts)
                execute(self.db, f"UPDATE {q(table)} SET {q(column)} = NULL WHERE {q(column)} = {self.db.param}", [name])
            ids = [row_id(r) for r in rows]
            # Uploaded audio, whichever PBX recorded it: every version of each object.
            if deleted := delete_objects(self.objects, ids):
                counts["objects_deleted"] = deleted
            self.stage("recordings:files-deleted")
            if ids:
                # What is kept about these recordings (coaching comments, scorecards) goes with them.
                for table, n in delete_recording_linked(self.db, ids).items():
                    counts[f"{table}_deleted"] = n
                RecordingPause.delete().where(RecordingPause.recording.in_(ids)).execute()
                Recording.delete().where(pk(Recording).in_(ids)).execute()
            self._mark(job, "recordings", counts)

    def _delete_files(self, name: str, why: str, counts: dict[str, int], row_file: bool = False) -> None:
        """Delete the recording ``name`` and the files beside it, if it lies in the recordings
        folder; a path outside it is refused (logged, counted), and its row goes all the same."""
        path = self.folder.locate(name, why)
        if path is None:
            counts["files_refused"] = counts.get("files_refused", 0) + 1
            return
        if row_file and not path.host.exists():
            counts["files_already_gone"] += 1
        for part in self.folder.files(path):
            counts["bytes_deleted"] += part.stat().st_size
            part.unlink(missing_ok=True)
            counts["files_deleted"] += 1

    def _exports(self, job: ErasureJob, e164: str, forms: tuple[str, ...], at: dt.datetime) -> None:
        with self.db.atomic():
            deleted = 0
            for row in DsarRequest.select().where(DsarRequest.number.in_(forms) & DsarRequest.export_file.is_null(False)
                                                  & of_organisation(DsarRequest.organisation, self.organisation_id)):
                path = Path(str(row.export_file))
                if path.exists():
                    path.unlink()
                    deleted += 1
                DsarRequest.update(export_file=None).where(DsarRequest.id == row.id).execute()
            self._mark(job, "exports", {"export_files_deleted": deleted})

    def _rows(self, job: ErasureJob, e164: str, forms: tuple[str, ...], at: dt.datetime) -> None:
        counts: dict[str, int] = {}
        param = self.db.param
        with self.screening.change():
            for table in personal_tables(self.db):
                if table.on_erase == "recordings":
                    continue
                where, params = subject_where(self.db, table, e164, self.organisation_id)
                if table.on_erase == "delete":
                    cursor = execute(self.db, f"DELETE FROM {q(table.table)} WHERE {where}", params)
                    counts[f"{table.table}_deleted"] = cursor.rowcount
                else:
                    cursor = execute(self.db, 
                        f"UPDATE {q(table.table)} SET {q(table.number_column)} = {param} WHERE {where}",
                        [job.pseudonym, *params],
                    )
                    counts[f"{table.table}_pseudonymised"] = cursor.rowcount
            self._mark(job, "rows", counts)

    def _text(self, job: ErasureJob, e164: str, forms: tuple[str, ...], at: dt.datetime) -> None:
        counts: dict[str, int] = {}
        param = self.db.param
        with self.db.atomic():
            for table in sorted(set(self.db.get_tables()) - OWN_TABLES):
                # Another organisation's rows keep their mentions (registry.owned).
                mine, more = owned(self.db, table, self.organisation_id)
                for column in columns(self.db, table):
                    if not is_text(column):
                        continue
                    c = q(column.name)
                    cursor = execute(self.db, f"SELECT DISTINCT {c} FROM {q(table)} WHERE {c} LIKE {param} AND {mine}",
                                     [like_pattern(e164), *more])
                    for (value,) in cursor.fetchall():
                        # Each mention replaced whole, never a part of a longer number (mentions.py).
                        new = replace_mentions(str(value), e164, job.pseudonym, self.parser.parse)
                        if new == value:
                            continue
                        updated = execute(self.db, f"UPDATE {q(table)} SET {c} = {param} WHERE {c} = {param} AND {mine}",
                                          [new, value, *more])
                        counts[f"{table}.{column.name}"] = counts.get(f"{table}.{column.name}", 0) + updated.rowcount
            self._mark(job, "text", counts)

    def _audit(self, job: ErasureJob, e164: str, forms: tuple[str, ...], at: dt.datetime) -> None:
        with self.db.atomic():
            seqs = audit.redact_mentions(forms, self.actor, {"erasure_job": job.id}, self.organisation_id)
            self._mark(job, "audit", {"audit_entries_redacted": len(seqs)})

    def _certificate(self, job: ErasureJob, e164: str, forms: tuple[str, ...], at: dt.datetime) -> None:
        row = ErasureJob.get_by_id(job.id)
        finished = at.astimezone(UTC)
        request = {"number_hmac": row.request_hash, "requested_by": row.requested_by,
                   "first_requested_at": _iso(row.started_at)}
        certificate = {
            "certificate": "LiveCall erasure certificate",
            "organisation": self.organisation,
            "erasure_job": int(row.id),
            "request_sha256": hashlib.sha256(canonical(request).encode()).hexdigest(),
            "number_hmac": row.request_hash,
            "hmac_key_fingerprint": key_fingerprint(self.key),
            "pseudonym_in_kept_records": row.pseudonym,
            "requested_by": row.requested_by,
            "completed_by": self.actor,
            "completed_at": finished.isoformat(timespec="seconds"),
            "erased": json.loads(row.counts),
            "suppressed": True,
            "kept": [
                "call charge records, with the number replaced by the pseudonym (accounts)",
                "gate decisions, with the number replaced by the pseudonym (evidence of lawful calling)",
                "the number's keyed hash, so that it stays blocked for marketing and claims calls",
            ],
            "not_covered": ["copies outside LiveCall: Asterisk's own CDR files and logs, backups, TPS/CTPS list files"],
        }
        text = json.dumps(certificate, indent=2, sort_keys=True) + "\n"
        from livecall_ari.storage.private import private_dir, private_file

        private_dir(self.certificates)
        path = self.certificates / f"erasure-{row.id}.json"
        tmp = private_file(path.with_name(path.name + ".tmp"))
        tmp.write_text(text)
        os.replace(tmp, path)
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self.db.atomic():
            audit.append(self.actor, "erasure.complete", f"erasure:{row.id}",
                         {"request_sha256": certificate["request_sha256"], "certificate_sha256": digest,
                          "counts": certificate["erased"]}, at=at)
            self._mark(job, "certificate", {})
            ErasureJob.update(state="done", finished_at=_db(at), certificate=str(path), certificate_sha256=digest).where(
                ErasureJob.id == job.id
            ).execute()


def _db(at: dt.datetime) -> dt.datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def _iso(value: Any) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return str(value.replace(tzinfo=UTC).isoformat(timespec="seconds"))
