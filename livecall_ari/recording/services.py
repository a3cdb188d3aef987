"""Recording's adapter: what the dialplan reports over FastAGI becomes rows, files are checked
and finished, objections pressed during the notice go on the objection list at once.

The dialplan records on its own (MixMonitor); this service only keeps the books, so a call is
recorded even while ``livecall serve`` is down, and :meth:`RecordingService.reconcile` catches
up on anything it missed (files with no row, rows whose call ended unseen, objections spooled
to a file by the dialplan when FastAGI was unreachable).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from livecall_ari.gate.models import GateDecision
from livecall_ari.protection.crypto import is_encrypted
from livecall_ari.recording import compact, core
from livecall_ari.recording.compact import CompactError, Compactor, StoredObject
from livecall_ari.recording.files import disk_report, free_bytes
from livecall_ari.recording.models import NoticeEvent, Recording, RecordingPause
from livecall_ari.recording.paths import PathRefused, RecordingPath, RecordingsFolder
from livecall_ari.storage.times import from_db, to_db

log = logging.getLogger("livecall.recording")
UTC = dt.timezone.utc

# The dialplan appends "<call id> <number> <epoch>" here when it cannot reach FastAGI (and
# " <agent>" for an agent's objection code).
PENDING_OBJECTIONS = "objections.pending"


@dataclass
class RecordingService:
    """Bookkeeping for recordings, given what the rest of LiveCall decides:

    - ``folder`` is the recordings folder: every path, from Asterisk or from a row, is confined
      to it (recording.paths) before a file is read, sealed or deleted;
    - ``record_objection(number, call_id, at)`` puts a number on the objection list;
    - ``basis_for(purpose)`` and ``keep_until(purpose, tags, basis, at)`` come from the data
      protection policy; ``seal(path)`` encrypts a finished file when that is switched on;
    - ``compactor`` makes the stored object (Opus in Ogg, sealed when encryption is on) of a
      finished WAV, when ``[recording] format = "opus"`` (recording.compact); then ``seal`` is
      not used. ``workers`` threads of the service's own finish recordings after their calls.
    """

    folder: RecordingsFolder
    organisation: str
    record_objection: Callable[[str, str, dt.datetime], None]
    basis_for: Callable[[str], str]
    keep_until: Callable[[str, str, str, dt.datetime], dt.date | None]
    seal: Callable[[Path], None] | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)
    # ``(number, call_id, at, agent)``: an agent's objection code spooled by the dialplan (the
    # spool line's fourth field); None: such lines are recorded like the notice's objection key.
    record_agent_objection: Callable[[str, str, dt.datetime, str], None] | None = None
    # The catch-up books a file, or finishes a row, once it has not been written for this long.
    reconcile_after: dt.timedelta = dt.timedelta(minutes=5)
    reconcile_every: float = 60.0
    # Below this much free space on the recordings disk, the catch-up raises the alarm.
    min_free_bytes: int = 1024 * 1024 * 1024
    compactor: Compactor | None = None
    workers: int = 2
    # Files last written before this (epoch seconds) were examined by an earlier reconcile.
    _examined_before: float = field(default=0.0, init=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)
    _waiting: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _busy: set[str] = field(default_factory=set, init=False)

    # -- events from the dialplan ---------------------------------------------------------

    def started(self, call_id: str, number: str, agent: str, purpose: str, file: RecordingPath,
                direction: str = "outbound") -> Recording:
        existing = Recording.get_or_none(Recording.call_id == call_id)
        if existing is not None:
            return existing
        tags = core.TRAINING if purpose == core.TRAINING else ""
        # Consent is the recording's basis only with the called party's key press on record.
        consent = NoticeEvent.get_or_none((NoticeEvent.call_id == call_id) & (NoticeEvent.outcome == "consented"))
        basis = core.CONSENT if consent is not None else self.basis_for(purpose)
        reason = (f"the called party pressed {consent.key_pressed} to allow recording ({consent.prompt})"
                  if consent is not None else "[protection] recording_lawful_basis")
        return Recording.create(
            call_id=call_id, organisation=self.organisation, agent=agent, number=number, purpose=purpose,
            tags=tags, file=file.asterisk, state="recording", started_at=to_db(self.clock()), lawful_basis=basis,
            lawful_basis_reason=reason, direction=direction,
        )

    def notice(self, call_id: str, number: str, prompt: str, started_epoch: str, status: str, key: str,
               decline_key: str, objection_key: str, mode: str = "inform", consent_key: str = "") -> NoticeEvent:
        started = _epoch(started_epoch) or self.clock()
        now = self.clock()
        outcome = core.notice_outcome(mode, status, key, decline_key, objection_key, consent_key)
        event = NoticeEvent.create(
            call_id=call_id, number=number, prompt=prompt, played=True, started_at=to_db(started),
            duration_ms=max(0, int((now - started).total_seconds() * 1000)), key_pressed=key, outcome=outcome,
        )
        if outcome in ("declined", "not_consented"):
            self.declined(call_id)
        elif outcome == "objected":
            self.record_objection(number, call_id, now)
        return event

    def declined(self, call_id: str) -> None:
        """No audio of a declined call is kept: the dialplan removed the file; make sure."""
        row = Recording.get_or_none(Recording.call_id == call_id)
        if row is None:
            return
        if row.file and (path := self.folder.locate(row.file, f"delete the audio of declined call {call_id}")):
            for part in self.folder.files(path):
                part.unlink(missing_ok=True)
        row.state, row.file, row.ended_at = "declined", None, to_db(self.clock())
        row.save()

    def paused(self, call_id: str, action: str, by: str) -> None:
        row = Recording.get_or_none(Recording.call_id == call_id)
        if row is None:
            return
        now = self.clock()
        if action == "pause":
            RecordingPause.create(recording=row, paused_at=now, by=by)
        else:
            open_pause = (RecordingPause.select().where((RecordingPause.recording == row) & RecordingPause.resumed_at.is_null())
                          .order_by(RecordingPause.paused_at.desc()).first())
            if open_pause is not None:
                open_pause.resumed_at = now
                open_pause.save()

    def finish(
        self, call_id: str, settle_seconds: float = 10.0, at_hangup: bool = True, hung_up: dt.datetime | None = None
    ) -> Recording | None:
        """The call ended (at ``hung_up``, or now): wait for MixMonitor to close the file, then
        keep its facts (and seal it, when recordings are encrypted at rest: the checksum is of
        the stored bytes).

        A file cut short (the disk filled up) is kept as ``incomplete``, with an error in the
        log; ``at_hangup`` says the call has just ended, so the file should hold all of it.
        One call is finished by one thread at a time (the catch-up may reach a call still
        waiting in the pool): the other returns at once."""
        with self._lock:
            if call_id in self._busy:
                return None
            self._busy.add(call_id)
        try:
            return self._finish(call_id, settle_seconds, at_hangup, hung_up)
        finally:
            with self._lock:
                self._busy.discard(call_id)

    def _finish(self, call_id: str, settle_seconds: float, at_hangup: bool, hung_up: dt.datetime | None) -> Recording | None:
        row = Recording.get_or_none(Recording.call_id == call_id)
        if row is None or row.state != "recording" or not row.file:
            return row
        confined = self.folder.locate(row.file, f"finish the recording of call {call_id}")
        hung_up = hung_up or self.clock()
        data = None if confined is None else _settled_bytes(confined.host, settle_seconds)
        ended = self.clock()
        stored: StoredObject | None = None
        if confined is None:
            row.state = "missing"  # the row names a file outside the folder: never read it
        elif data is None:
            row.state = "missing"
            log.error("recording of call %s: its file %s is missing", call_id, row.file)
        else:
            duration_ms = core.wav_duration_ms(data)
            ran_ms = int((hung_up - (from_db(row.started_at) or hung_up)).total_seconds() * 1000) if at_hangup else None
            short = core.cut_short(duration_ms, ran_ms, free_bytes(confined.host))
            stored = self._compact(confined, duration_ms)
            if stored is not None:
                row.file, row.encrypted = stored.asterisk, stored.encrypted
                facts = core.AudioFacts(stored.size_bytes, duration_ms, stored.sha256)
            else:
                if self.seal is not None:
                    try:
                        for part in self.folder.files(confined):
                            self.seal(part)
                    except OSError as exc:
                        # A full disk, say: the recording is kept as recorded rather than lost.
                        log.error("recording of call %s could not be encrypted (%s); it is kept as recorded",
                                  call_id, exc.strerror or exc)
                    data = confined.host.read_bytes()
                    row.encrypted = is_encrypted(confined.host)
                facts = core.audio_facts(data)
            row.state, row.size_bytes, row.duration_ms, row.sha256 = "complete", facts.size_bytes, duration_ms, facts.sha256
            if short is not None:
                row.state = "incomplete"
                log.error("recording of call %s is cut short and kept as incomplete: %s (%s)", call_id, short, row.file)
            row.retention_until = self.keep_until(row.purpose, row.tags, row.lawful_basis, from_db(row.started_at) or ended)
        row.ended_at = to_db(ended)
        row.save()
        if stored is not None and confined is not None:
            self._discard_wavs(confined)  # only now that the row names the stored object
        return row

    def finish_later(self, call_id: str, hung_up: dt.datetime) -> "Future[Recording | None]":
        """:meth:`finish` in one of the service's own ``workers`` threads: encoding and sealing
        never share a thread with the call path, and at most ``workers`` recordings are finished
        at once; the others wait their turn (:meth:`backlog`)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max(1, self.workers), thread_name_prefix="recording-finish")
            self._waiting += 1

        def run() -> Recording | None:
            try:
                return self.finish(call_id, hung_up=hung_up)
            finally:
                with self._lock:
                    self._waiting -= 1

        return self._pool.submit(run)

    def close(self) -> None:
        """Stop finishing: the recording being encoded completes, those waiting are dropped
        (their rows stay ``recording``, their WAVs stay; the catch-up finishes them later)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def backlog(self) -> int:
        """Recordings whose calls have ended and that are being, or waiting to be, finished."""
        with self._lock:
            return self._waiting

    def _compact(self, mixed: RecordingPath, duration_ms: int) -> StoredObject | None:
        """The stored object of the mixed file, its legs' WAVs compacted beside it; or None (an
        ERROR logged, whatever was made removed) when any of them could not be: then every file
        stays WAV, as recorded, and is sealed as before when encryption is on."""
        if self.compactor is None:
            return None
        made: list[StoredObject] = []
        try:
            for part in self.folder.files(mixed):
                if part.suffix != ".wav":
                    continue
                ms = duration_ms if part == mixed.host else core.wav_duration_ms(part.read_bytes())
                asterisk = str(PurePosixPath(mixed.asterisk).with_name(part.name))
                made.append(self.compactor.finalise(part, asterisk, ms))
        except (CompactError, OSError) as exc:
            log.error("recording %s is kept as WAV: %s", mixed.asterisk, exc)
            for obj in made:
                obj.path.unlink(missing_ok=True)
            return None
        wanted = compact.stored_name(mixed.asterisk, "opus")
        return next((obj for obj in made if obj.asterisk == wanted), None)

    def _discard_wavs(self, mixed: RecordingPath) -> None:
        """Remove a compacted recording's WAVs: the legs first, the mixed file last (while it is
        there, the catch-up knows the recording is not done with)."""
        wavs = [p for p in self.folder.files(mixed) if p.suffix == ".wav"]
        for part in sorted(wavs, key=lambda p: p == mixed.host):
            part.unlink(missing_ok=True)

    def _leftover(self, found: RecordingPath) -> bool:
        """Whether ``found`` is the WAV of a recording already stored compacted (serve stopped
        between booking the stored object and removing the WAV); if so, and the stored object is
        intact, the WAVs are removed now."""
        stored_as = compact.stored_name(found.asterisk, "opus")
        if stored_as == found.asterisk:
            return False
        row = Recording.get_or_none(Recording.file == stored_as)
        if row is None:
            return False
        stored = self.folder.locate(stored_as, f"check the stored recording of call {row.call_id}")
        if stored is not None and stored.host.exists() and core.audio_facts(stored.host.read_bytes()).sha256 == row.sha256:
            self._discard_wavs(found)
        else:
            log.error("recording of call %s: %s is kept: its stored object %s is missing or changed",
                      row.call_id, found.asterisk, stored_as)
        return True

    # -- checks and catching up -----------------------------------------------------------

    def verify(self) -> list[tuple[Recording, str]]:
        """Re-check every kept recording: ``ok``, ``missing`` or ``changed`` (checksum differs)."""
        results: list[tuple[Recording, str]] = []
        for row in Recording.select().where(Recording.state == "complete").order_by(Recording.started_at):
            confined = self.folder.locate(row.file or "", f"verify recording of call {row.call_id}")
            if confined is None or not confined.host.exists():
                results.append((row, "missing"))
                continue
            data = confined.host.read_bytes()
            results.append((row, "ok" if core.audio_facts(data).sha256 == row.sha256 else "changed"))
        return results

    def _unsettled_files(self, root: Path, closed_before: float) -> list[Path]:
        """Mixed recordings last written between the previous scan and ``closed_before`` that
        no row names. Day folders older than the previous scan are not walked again, so the
        cost of a scan follows what is new, not the size of the archive."""
        since = dt.datetime.fromtimestamp(self._examined_before, UTC).date() - dt.timedelta(days=1)
        candidates: dict[str, Path] = {}
        for day in sorted(root.glob("[0-9]*/[0-9]*/[0-9]*")):
            try:
                if dt.date(*(int(part) for part in day.relative_to(root).parts)) < since:
                    continue
            except (TypeError, ValueError):
                continue
            for path in day.glob("*.wav"):
                if path.stem.endswith(("-in", "-out")):
                    continue
                mtime = path.stat().st_mtime
                if self._examined_before <= mtime < closed_before:
                    candidates[f"{self.folder.asterisk_dir.rstrip('/')}/{path.relative_to(root)}"] = path
        names = list(candidates)
        for start in range(0, len(names), 500):
            for row in Recording.select(Recording.file).where(Recording.file.in_(names[start:start + 500])):
                candidates.pop(str(row.file), None)
        return [candidates[name] for name in sorted(candidates)]

    def reconcile(self, older_than: dt.timedelta | None = None) -> dict[str, int]:
        """Finish rows whose end was never reported; register files nobody reported; record
        spooled objections. Safe to run at any time, any number of times."""
        older_than = self.reconcile_after if older_than is None else older_than
        counts = {"finished": 0, "registered": 0, "objections": 0}
        cutoff = self.clock() - older_than
        # Read them all first: writing while a SELECT is still being stepped would turn its read
        # into a write transaction, which SQLite refuses at once ("database is locked") when
        # another connection (the CDR follower) committed meanwhile.
        unfinished = list(Recording.select().where((Recording.state == "recording") & (Recording.started_at < to_db(cutoff))))
        for row in unfinished:
            if _written_since(self._host(row.file or ""), time.time() - older_than.total_seconds()):
                continue  # a long call, still recording: its end will come
            self.finish(row.call_id, settle_seconds=1.0, at_hangup=False)
            counts["finished"] += 1
        root = self.folder.host_dir
        if root.is_dir():
            now = time.time()
            for path in self._unsettled_files(root, now - older_than.total_seconds()):
                # Untouched for longer than `older_than`: MixMonitor has long closed it.
                asterisk_path = f"{self.folder.asterisk_dir.rstrip('/')}/{path.relative_to(root)}"
                found = self.folder.locate(asterisk_path, "book a recording found in the recordings folder")
                if found is None:
                    continue  # a symlink leading out of the folder
                if self._leftover(found):
                    counts["leftovers"] = counts.get("leftovers", 0) + 1
                    continue
                call_id = path.stem
                try:
                    mtime = path.stat().st_mtime
                except FileNotFoundError:
                    continue  # deleted since the scan (erasure, retention, a declined call)
                # The file is named after the gate's call id: its decision says who and what.
                decision = GateDecision.get_or_none(GateDecision.call_id == call_id)
                if decision is not None and decision.decision == core.INBOUND:
                    # An inbound call's row holds the caller's number (its "dialled" is the DID).
                    self.started(call_id, decision.number, decision.agent, core.INBOUND, found, direction=core.INBOUND)
                elif decision is not None:
                    self.started(call_id, decision.dialled, decision.agent, decision.purpose, found)
                else:
                    self.started(call_id, "", "", "unknown", found)
                Recording.update(started_at=to_db(dt.datetime.fromtimestamp(mtime, UTC))).where(
                    Recording.call_id == call_id).execute()
                self.finish(call_id, settle_seconds=0, at_hangup=False)
                counts["registered"] += 1
            # Everything last written before this has now been looked at once.
            self._examined_before = now - older_than.total_seconds()
            spool = root / PENDING_OBJECTIONS
            if spool.is_symlink():
                log.error("refused to read %s: it is a symlink (the dialplan writes a plain file)", spool)
            elif spool.exists():
                taken = spool.with_suffix(".taking")
                spool.replace(taken)
                for line in taken.read_text().splitlines():
                    parts = line.split()
                    if len(parts) >= 4 and self.record_agent_objection is not None:
                        self.record_agent_objection(parts[1], parts[0], _epoch(parts[2]) or self.clock(), parts[3])
                        counts["objections"] += 1
                    elif len(parts) >= 3:
                        self.record_objection(parts[1], parts[0], _epoch(parts[2]) or self.clock())
                        counts["objections"] += 1
                taken.unlink()
        return counts


    def disk_alarm(self) -> str | None:
        """What is wrong with the recordings disk's free space, or None."""
        root = self.folder.host_dir
        free = free_bytes(root)
        if free >= max(self.min_free_bytes, core.DISK_FULL_BYTES):
            return None
        return disk_report(root, free, self.min_free_bytes)


    def _host(self, asterisk_path: str) -> Path | None:
        try:
            return self.folder.confine(asterisk_path).host
        except PathRefused:
            return None  # finish() refuses it, with the error


def _written_since(path: Path | None, since: float) -> bool:
    if path is None:
        return False
    try:
        return path.stat().st_mtime >= since
    except OSError:
        return False


def _epoch(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(float(text), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _settled_bytes(path: Path, timeout: float) -> bytes | None:
    """The file's bytes once its size has stopped changing (MixMonitor closes it after hangup)."""
    deadline = time.monotonic() + timeout
    last = -1
    while True:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = -1
        if size >= 0 and size == last:
            return path.read_bytes()
        if time.monotonic() > deadline:
            return path.read_bytes() if size >= 0 else None
        last = size
        time.sleep(0.15)
