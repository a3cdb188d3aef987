"""Recordings in object storage: the uploader that moves each finished recording's files from
its PBX's disk to the store, and the lookups that let every PBX read and delete them.

The uploader takes what a finished recording row points at (its file and SHA-256, whatever the
recording pipeline made of the audio), checks the file still has that checksum, uploads it and
each file named after it, checks what the store then holds against what was sent (size, the
store's own ETag, the SHA-256 kept with the object), records where the object lives, and only
then removes the local files. A failed upload leaves everything local and is tried again later,
with a growing delay; an object already in the store with the same checksum (a previous run
stopped before recording it) is recorded, not sent twice. It never runs on the call path.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import peewee

from livecall_ari.objects.core import Backlog, Fingerprint, KeyRefused, Retry, object_key, upload_problem
from livecall_ari.objects.models import RecordingObject
from livecall_ari.objects.store import Store, StoreError, StoreUnavailable, fingerprint_file
from livecall_ari.recording.models import Recording
from livecall_ari.recording.paths import RecordingPath, RecordingsFolder
from livecall_ari.storage.times import from_db, to_db

log = logging.getLogger("livecall.objects")
UTC = dt.timezone.utc
# Rows whose audio is finished and kept (recording/services.py: finish).
FINISHED = ("complete", "incomplete")


def _pk(model: type[peewee.Model]) -> Any:
    return model._meta.primary_key


def _rid(row: peewee.Model) -> int:
    return int(row.get_id())  # type: ignore[no-untyped-call]


def _waiting() -> Any:
    """Finished recordings with a file and no object for it yet."""
    uploaded = RecordingObject.select(RecordingObject.recording_id).where(RecordingObject.part == "")
    return Recording.select().where(Recording.state.in_(FINISHED) & Recording.file.is_null(False)
                                    & _pk(Recording).not_in(uploaded))


def backlog(folder: RecordingsFolder | None = None) -> Backlog:
    """Recordings whose audio is still only on a PBX's disk. With ``folder``, only those whose
    file is on this host (this PBX's backlog); without, every PBX's."""
    count = size = 0
    oldest: dt.datetime | None = None
    for row in _waiting().order_by(Recording.ended_at):
        if folder is not None:
            path = folder.to_host(str(row.file))
            if not path.is_file():
                continue
        count += 1
        size += int(row.size_bytes or 0)
        ended = from_db(row.ended_at)
        if ended is not None and (oldest is None or ended < oldest):
            oldest = ended
    return Backlog(count, size, oldest)


def object_of(recording_id: int, part: str = "") -> RecordingObject | None:
    """Where a recording's file (``part`` "" the recording, "-in.wav" a leg) lives in the store."""
    return RecordingObject.get_or_none((RecordingObject.recording_id == recording_id) & (RecordingObject.part == part))


def delete_objects(store: Store | None, recording_ids: list[int]) -> int:
    """Delete the objects of these recordings from the store, every version of each, then their
    rows; how many objects went. Raises StoreUnavailable (rows kept) when the store is down,
    so an erasure or retention run stops and is resumed rather than leaving the audio behind."""
    rows = list(RecordingObject.select().where(RecordingObject.recording_id.in_(recording_ids))) if recording_ids else []
    if rows and store is None:
        raise StoreError("recordings are in object storage but [storage] backend is not \"s3\": cannot delete them")
    deleted = 0
    for row in rows:
        assert store is not None
        store.delete(str(row.key))
        RecordingObject.delete().where(_pk(RecordingObject) == _rid(row)).execute()
        deleted += 1
    return deleted


def read_object(store: Store, obj: RecordingObject, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    return store.read(str(obj.key), start, end)


def verify_object(store: Store, obj: RecordingObject, sha256: str) -> str:
    """Re-check an uploaded file against the store: ``ok``, ``missing`` (no such object) or
    ``changed`` (its bytes, read back whole, do not have ``sha256``, the recording's checksum).
    StoreUnavailable propagates: an unreachable store proves nothing either way."""
    import hashlib

    if store.head(str(obj.key)) is None:
        return "missing"
    digest = hashlib.sha256()
    for block in store.read(str(obj.key)):
        digest.update(block)
    return "ok" if digest.hexdigest() == sha256 else "changed"


def fetch_to(store: Store, obj: RecordingObject, target: Path) -> Path:
    """Copy an object into ``target`` (created 0600), checking its SHA-256 on the way."""
    import hashlib
    import os

    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for block in store.read(str(obj.key)):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != obj.sha256:
        target.unlink(missing_ok=True)
        raise StoreError(f"object {obj.key}: its bytes do not match the SHA-256 recorded at upload")
    return target


@dataclass
class Uploader:
    """Moves this PBX's finished recordings into ``store`` (see the module's docstring)."""

    store: Store
    folder: RecordingsFolder
    node: str  # [asterisk] system_name: the first part of every key this PBX writes
    backend: str = "s3"
    bucket: str = ""
    retry: Retry = field(default_factory=Retry)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)
    # Per recording id: failures in a row, and not before when to try it again.
    _failures: dict[int, int] = field(default_factory=dict, init=False)
    _not_before: dict[int, dt.datetime] = field(default_factory=dict, init=False)
    _bucket_ready: bool = field(default=False, init=False)

    def due(self, limit: int) -> list[Recording]:
        """Up to ``limit`` of this PBX's waiting recordings, oldest first, not in a retry's wait."""
        now = self.clock()
        found: list[Recording] = []
        for row in _waiting().order_by(Recording.ended_at, _pk(Recording)):
            if self._not_before.get(_rid(row), now) > now:
                continue
            if not self.folder.to_host(str(row.file)).is_file():
                continue  # another PBX's recording (or gone: recording/services.py reports that)
            found.append(row)
            if len(found) >= limit:
                break
        return found

    def run_once(self, limit: int = 20) -> dict[str, int]:
        """Upload what is due, one after the other; stop at the first sign the store is down.
        Returns counts by outcome."""
        counts = {"uploaded": 0, "failed": 0, "refused": 0}
        if not self._bucket_ready:
            self.store.ensure_bucket()  # StoreUnavailable goes to the caller's backoff
            self._bucket_ready = True
        for row in self.due(limit):
            try:
                outcome = self.upload(row)
            except StoreUnavailable:
                # Not this recording's fault: the loop waits for the store, the recording does not
                # lose its turn (nor, after a long outage, wait minutes more once it is back).
                raise
            except StoreError as exc:
                self._failed(row)
                counts["failed"] += 1
                log.error("upload of recording %s (call %s) failed: %s", _rid(row), row.call_id, exc)
                continue
            counts[outcome if outcome in counts else "uploaded"] += 1
        return counts

    def _failed(self, row: Recording) -> None:
        key = _rid(row)
        self._failures[key] = self._failures.get(key, 0) + 1
        self._not_before[key] = self.retry.next_try(self._failures[key], self.clock())

    def upload(self, row: Recording) -> str:
        """Upload one recording's files; "uploaded", or "refused" (file changed, or outside the
        recordings folder: kept local, with an ERROR), or "gone" (erased meanwhile)."""
        confined = self.folder.locate(str(row.file), f"upload recording {_rid(row)} (call {row.call_id})")
        if confined is None:
            self._refuse(row)
            return "refused"
        parts = self._parts(confined)
        placed: list[tuple[str, str, Fingerprint, str]] = []
        for suffix, path in parts:
            sent = fingerprint_file(path)
            if suffix == "" and row.sha256 and sent.sha256 != row.sha256:
                log.error("recording %s (call %s) not uploaded: its file %s no longer has the SHA-256 recorded when "
                          "it was finished (%s...); kept on this disk", _rid(row), row.call_id, row.file, str(row.sha256)[:16])
                self._refuse(row)
                return "refused"
            try:
                key = object_key(self.node, self.folder.asterisk_dir, _asterisk_path(confined, path))
            except KeyRefused as exc:
                log.error("recording %s not uploaded: %s", _rid(row), exc)
                self._refuse(row)
                return "refused"
            placed.append((suffix, key, sent, self._put(key, path, sent)))
        # Recorded only now, all verified; the recording itself (part "") last of all.
        placed.sort(key=lambda p: p[0] == "")
        with Recording._meta.database.atomic():
            current = Recording.get_or_none(_pk(Recording) == _rid(row))
            if current is None or current.file != row.file:
                gone = True
            else:
                gone = False
                for suffix, key, sent, etag in placed:
                    RecordingObject.insert(
                        recording_id=_rid(row), part=suffix, backend=self.backend, bucket=self.bucket, key=key,
                        size_bytes=sent.size, sha256=sent.sha256, etag=etag, node=self.node,
                        uploaded_at=to_db(self.clock()),
                    ).on_conflict_ignore().execute()
        if gone:
            # Erased or deleted by retention while it uploaded: what was sent goes too.
            for _suffix, key, _sent, _etag in placed:
                self.store.delete(key)
            return "gone"
        for _suffix, path in parts:
            path.unlink(missing_ok=True)
        self._failures.pop(_rid(row), None)
        self._not_before.pop(_rid(row), None)
        return "uploaded"

    def _refuse(self, row: Recording) -> None:
        # Not tried again until the service restarts: it needs a person, not a retry.
        self._not_before[_rid(row)] = dt.datetime.max.replace(tzinfo=UTC)

    def _parts(self, confined: RecordingPath) -> list[tuple[str, Path]]:
        """The recording and the files beside it in the same format (its legs), each with the
        rest of its name after the recording's stem. Files of another format are the recording
        pipeline's own (WAVs it has not yet removed after compacting): never uploaded."""
        suffix = confined.host.suffix
        stem = confined.host.name[: -len(suffix)] if suffix else confined.host.name
        parts = []
        for path in self.folder.files(confined):
            if path == confined.host:
                parts.append(("", path))
            elif path.name.startswith(stem + "-") and path.suffix == suffix:
                parts.append((path.name[len(stem):], path))
        return parts

    def _put(self, key: str, path: Path, sent: Fingerprint) -> str:
        """Upload unless the store already holds exactly these bytes; the object's ETag."""
        existing = self.store.head(key)
        if existing is not None and upload_problem(sent, existing.size, existing.etag, existing.sha256) is None \
                and existing.sha256:
            log.info("object %s is already in %s with the same SHA-256: not sent again", key, self.store.name)
            return existing.etag
        stored = self.store.put(key, path, sent)
        problem = upload_problem(sent, stored.size, stored.etag, stored.sha256 or sent.sha256)
        if problem is not None:
            raise StoreError(f"{self.store.name}: {key}: {problem}; the file is kept on this disk")
        return stored.etag


def _asterisk_path(confined: RecordingPath, path: Path) -> str:
    """A sibling file's path as Asterisk sees it (beside the recording's own)."""
    return str(Path(confined.asterisk).with_name(path.name))
