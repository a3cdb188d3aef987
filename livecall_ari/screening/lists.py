"""TPS and CTPS list files: importing a supplier's file, and opening the list in force.

A list version is one immutable file under the lists directory::

    64-byte header: b"LCLIST01", count (uint64), snapshot day (int32, days since 1970-01-01)
    count x int64: the number keys, sorted, unique
    count x int32: the day each number was first seen listed

An import parses the supplier's file in chunks, builds the new arrays in memory, writes them to
``<name>.tmp``, fsyncs, renames it to its final (never before used) name, and only then commits
the ``screening_list_versions`` row that names it. That commit is the switch: until it happens
the previous version is the newest row and stays in force, so an import that fails, is refused
or is killed at any point leaves the old list untouched. Older files are deleted after the
switch, keeping the previous version for readers that still map it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import mmap
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import numpy.typing as npt
import peewee

from livecall_ari.screening.core import EPOCH, ListSnapshot, NumberList
from livecall_ari.screening.models import ListVersion
from livecall_ari.screening.parsers import BadLine, ParsedChunk, date_in_name, detected_format, parse_chunk
from livecall_ari.screening.revision import RevisionFile
from livecall_ari.screening.store import ScreeningStore
from livecall_ari.storage.times import to_db

MAGIC = b"LCLIST01"
HEADER_SIZE = 64
CHUNK_BYTES = 14 * (1 << 20)  # about a million 14-byte records
LIST_NAMES = ("tps", "ctps")
KEEP_BAD_LINES = 200  # bad lines kept for the report; all are counted

Progress = Callable[[int, int], None]  # (bytes read, file size)
Stage = Callable[[str], None]  # "parsing", "parsed", "written", "committing", "committed"


class ImportRefused(Exception):
    """The file was not imported; the message says why, and the list in force is unchanged."""

    def __init__(self, message: str, bad: list[BadLine] | None = None) -> None:
        super().__init__(message)
        self.bad = bad or []


class ShrinkRefused(ImportRefused):
    """The import would remove more of the list in force than allowed; confirm to go ahead."""


def shrink_refusal(in_force: int, removed: int, max_percent: float) -> str | None:
    """Why an import removing ``removed`` of the ``in_force`` numbers must be confirmed, or None.

    Pure: a supplier's list shrinks by a fraction of a percent a month, so a file that takes away
    more than ``max_percent`` is far more likely truncated than true.
    """
    if in_force == 0 or removed * 100 <= in_force * max_percent:
        return None
    share = removed * 100 / in_force
    return (f"it would remove {removed:,} of the {in_force:,} numbers in force ({share:.1f}%, more than the "
            f"{max_percent:g}% allowed); the list in force is kept. If the file is complete, import it again "
            "confirming the shrink (--allow-shrink)")


@dataclass
class ImportReport:
    list_name: str
    kind: str
    source: str
    snapshot_date: dt.date
    record_format: str = ""
    lines: int = 0
    count: int = 0
    added: int = 0
    removed: int = 0
    bad_count: int = 0
    bad: list[BadLine] = field(default_factory=list)
    version: int = 0
    seconds: float = 0.0


def _day(date: dt.date) -> int:
    return (date - EPOCH).days


def write_list_file(path: Path, keys: npt.NDArray[np.int64], days: npt.NDArray[np.int32], snapshot: dt.date) -> None:
    """Write a list file and make it durable (fsync) before anyone may rename it into use."""
    header = bytearray(HEADER_SIZE)
    header[0:8] = MAGIC
    header[8:16] = int(keys.shape[0]).to_bytes(8, "little")
    header[16:20] = _day(snapshot).to_bytes(4, "little", signed=True)
    from livecall_ari.storage.private import private_file

    with open(private_file(path), "wb") as out:
        out.write(bytes(header))
        np.ascontiguousarray(keys, dtype="<i8").tofile(out)
        np.ascontiguousarray(days, dtype="<i4").tofile(out)
        out.flush()
        os.fsync(out.fileno())


def read_list_file(path: Path, snapshot: ListSnapshot) -> NumberList:
    """Map a list file read-only; raise ValueError naming the file when it is not one of ours."""
    with open(path, "rb") as f:
        header = f.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE or header[:8] != MAGIC:
        raise ValueError(f"{path}: not a LiveCall list file")
    count = int.from_bytes(header[8:16], "little")
    expected = HEADER_SIZE + count * 12
    if path.stat().st_size != expected:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, expected {expected} for {count} numbers")
    if count == 0:
        return NumberList(snapshot, np.empty(0, np.int64), np.empty(0, np.int32))
    with open(path, "rb") as f:
        # MAP_POPULATE maps every page now: otherwise the first lookups touching a page take a
        # page fault each (tens of µs at p99 on a 20-million-number list).
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        mapped = mmap.mmap(f.fileno(), expected, flags=flags, prot=mmap.PROT_READ)
    keys = np.frombuffer(mapped, dtype="<i8", count=count, offset=HEADER_SIZE)
    days = np.frombuffer(mapped, dtype="<i4", count=count, offset=HEADER_SIZE + 8 * count)
    return NumberList(snapshot, keys, days)


# A record is 12 characters: a line longer than this is bad whatever follows, so only its start
# is kept (a file that is one 300 MB "line" is read in bounded memory, not carried whole).
LONG_LINE = 4096


def _chunks(stream: BinaryIO, size: int) -> Iterator[tuple[bytes, int]]:
    """Whole-line chunks of the stream, each with the byte offset reached after it. A line
    longer than :data:`LONG_LINE` that crosses a read is cut to its first LONG_LINE bytes."""
    carry = b""
    skipping = False  # inside an over-long line: drop bytes up to its end
    done = 0
    while True:
        block = stream.read(size)
        if not block:
            if carry:
                yield carry, done
            return
        done += len(block)
        if skipping:
            end = block.find(b"\n")
            if end < 0:
                continue
            block, skipping = block[end:], False
        block = carry + block
        cut = block.rfind(b"\n") + 1
        carry = block[cut:]
        if len(carry) > LONG_LINE:
            carry, skipping = carry[:LONG_LINE], True
        if cut:
            yield block[:cut], done - len(carry)


def _sorted_unique(buffer: npt.NDArray[np.int64], filled: int) -> npt.NDArray[np.int64]:
    """The first ``filled`` values of ``buffer``, sorted in place and deduplicated."""
    values = buffer[:filled]
    values.sort()
    if filled < 2:
        return values.copy()
    keep = np.empty(filled, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


class ListFiles:
    """The lists directory: imports into it, and opens the version a database row names."""

    def __init__(
        self, db: peewee.Database, directory: Path, max_bad_lines: int = 100, chunk_bytes: int = CHUNK_BYTES,
        max_shrink_percent: float = 5,
    ) -> None:
        self.db = db
        self.directory = directory
        self.max_bad_lines = max_bad_lines
        self.max_shrink_percent = max_shrink_percent
        self.chunk_bytes = chunk_bytes
        self.revision_file = RevisionFile(directory / "revision")
        self.store = ScreeningStore(db, self.revision_file)

    def path_of(self, file_name: str) -> Path:
        return self.directory / file_name

    def open(self, row: ListVersion) -> NumberList:
        from livecall_ari.screening.store import snapshot_of

        return read_list_file(self.path_of(str(row.file_name)), snapshot_of(row))

    def current(self, name: str) -> NumberList | None:
        row = self.store.current_versions().get(name)
        return self.open(row) if row is not None else None

    def import_file(
        self,
        name: str,
        source: Path,
        *,
        delta: bool,
        list_date: dt.date | None,
        now: dt.datetime,
        by: str = "",
        progress: Progress | None = None,
        stage: Stage | None = None,
        on_commit: Callable[[ImportReport], None] | None = None,
        allow_shrink: bool = False,
    ) -> ImportReport:
        """Import ``source`` as a full replacement or a change file; raise ImportRefused if not
        (ShrinkRefused when it would remove more than ``max_shrink_percent`` of the list in force
        and ``allow_shrink`` is not given). ``on_commit`` runs inside the transaction that puts
        the new version in force (the audit entry goes there: a version is never in force unaudited)."""
        if name not in LIST_NAMES:
            raise ImportRefused(f"unknown list {name!r} (use tps or ctps)")
        started = time.perf_counter()
        snapshot = list_date or date_in_name(source.name) or now.date()
        report = ImportReport(name, "delta" if delta else "full", str(source), snapshot)
        notify = stage or (lambda _s: None)
        from livecall_ari.storage.private import private_dir

        private_dir(self.directory)
        with os.fdopen(os.open(self.directory / ".import.lock", os.O_RDWR | os.O_CREAT, 0o600), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._remove_orphans()
            notify("parsing")
            additions, deletions = self._parse(source, delta, report, progress)
            notify("parsed")
            current = self.current(name)
            keys, days = self._merge(current, additions, deletions, delta, _day(snapshot), report)
            if keys.shape[0] == 0 and not delta:
                raise ImportRefused(f"{source}: no numbers in the file; the list in force is kept")
            in_force = int(current.keys.shape[0]) if current is not None else 0
            why = None if allow_shrink else shrink_refusal(in_force, report.removed, self.max_shrink_percent)
            if why is not None:
                raise ShrinkRefused(f"{source}: not imported: {why}")
            file_name = f"{name}-{now.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns()}.list"
            tmp = self.directory / (file_name + ".tmp")
            write_list_file(tmp, keys, days, snapshot)
            notify("written")
            os.replace(tmp, self.directory / file_name)
            self._fsync_directory()
            report.count = int(keys.shape[0])
            notify("committing")
            with self.store.change() as revision:
                row = ListVersion.create(
                    list_name=name, file_name=file_name, kind=report.kind, source=str(source),
                    record_format=report.record_format, snapshot_date=snapshot, imported_at=to_db(now),
                    imported_by=by, count=report.count, added=report.added, removed=report.removed,
                    bad_lines=report.bad_count, revision=revision,
                )
                report.version = int(row.id)
                if on_commit is not None:
                    on_commit(report)
            notify("committed")
            self._remove_superseded(name)
        report.seconds = time.perf_counter() - started
        return report

    def _parse(
        self, source: Path, delta: bool, report: ImportReport, progress: Progress | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        try:
            size = source.stat().st_size
            stream = open(source, "rb")
        except OSError as exc:
            raise ImportRefused(f"{source}: cannot read it ({exc.strerror})") from None
        # One growing buffer instead of a list of chunks and a concatenation: a 20-million-line
        # file must import in well under 1.5 GB.
        adds = np.empty(size // 14 + 1024, dtype=np.int64)
        filled = 0
        dels: list[npt.NDArray[np.int64]] = []
        with_spaces = without_spaces = 0
        with stream:
            for chunk, offset in _chunks(stream, self.chunk_bytes):
                parsed: ParsedChunk = parse_chunk(chunk, report.lines + 1, delta)
                del chunk
                report.lines += parsed.lines
                report.bad_count += len(parsed.bad)
                report.bad.extend(parsed.bad[: max(0, KEEP_BAD_LINES - len(report.bad))])
                if report.bad_count > self.max_bad_lines:
                    raise ImportRefused(
                        f"{source}: more than {self.max_bad_lines} bad lines (the limit); "
                        "nothing was imported and the list in force is kept",
                        report.bad,
                    )
                count = parsed.additions.shape[0]
                if filled + count > adds.shape[0]:
                    adds = np.resize(adds, max(filled + count, adds.shape[0] * 5 // 4))
                adds[filled:filled + count] = parsed.additions
                filled += count
                if parsed.deletions.shape[0]:
                    dels.append(parsed.deletions)
                with_spaces += parsed.with_spaces
                without_spaces += parsed.without_spaces
                if progress is not None:
                    progress(offset, size)
        report.record_format = detected_format(with_spaces, without_spaces)
        additions = _sorted_unique(adds, filled)
        del adds
        deletions = np.unique(np.concatenate(dels)) if dels else np.empty(0, np.int64)
        return additions, deletions

    @staticmethod
    def _merge(
        current: NumberList | None,
        additions: npt.NDArray[np.int64],
        deletions: npt.NDArray[np.int64],
        delta: bool,
        today: int,
        report: ImportReport,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        old_keys = current.keys if current is not None else np.empty(0, np.int64)
        old_days = current.first_seen_days if current is not None else np.empty(0, np.int32)
        if not delta:
            # Numbers already listed keep the day they were first seen.
            days = np.full(additions.shape[0], today, dtype=np.int32)
            known_count = 0
            if old_keys.shape[0]:
                last = old_keys.shape[0] - 1
                for start in range(0, additions.shape[0], 1 << 20):  # in blocks: no 160 MB index
                    block = additions[start:start + (1 << 20)]
                    index = np.searchsorted(old_keys, block)
                    np.minimum(index, last, out=index)
                    known = old_keys[index] == block
                    days[start:start + block.shape[0]][known] = old_days[index[known]]
                    known_count += int(np.count_nonzero(known))
            report.added = int(additions.shape[0]) - known_count
            report.removed = int(old_keys.shape[0]) - known_count
            return additions, days
        keys, days = np.asarray(old_keys), np.asarray(old_days)
        if deletions.shape[0] and keys.shape[0]:
            index = np.searchsorted(keys, deletions)
            np.minimum(index, keys.shape[0] - 1, out=index)
            gone = index[keys[index] == deletions]
            report.removed = int(gone.shape[0])
            keys, days = np.delete(keys, gone), np.delete(days, gone)
        # A number both deleted and added in one change file ends up listed (fail safe).
        if additions.shape[0]:
            index = np.searchsorted(keys, additions)
            clipped = np.minimum(index, max(keys.shape[0] - 1, 0))
            present = (keys[clipped] == additions) if keys.shape[0] else np.zeros(additions.shape[0], bool)
            new = additions[~present]
            report.added = int(new.shape[0])
            keys = np.insert(keys, index[~present], new)
            days = np.insert(days, index[~present], np.full(new.shape[0], today, dtype=np.int32))
        return np.ascontiguousarray(keys, np.int64), np.ascontiguousarray(days, np.int32)

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove_orphans(self) -> None:
        """Temporary files of imports that died (we hold the import lock: none is running)."""
        for path in self.directory.glob("*.list.tmp"):
            path.unlink(missing_ok=True)

    def _remove_superseded(self, name: str) -> None:
        """Delete this list's files other than the two newest versions (readers may map the
        previous one; an unlinked mapped file stays readable on POSIX)."""
        keep = {str(r.file_name) for r in self.store.versions(name)[-2:]}
        for path in self.directory.glob(f"{name}-*.list"):
            # Older versions, and files renamed into place by an import killed before its commit.
            if path.name not in keep:
                path.unlink(missing_ok=True)
