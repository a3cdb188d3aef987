"""Reading CDR files into the database exactly once: the I/O half of ingesting CDRs.

Exactly once rests on two things committed together, batch by batch, in one transaction:
the records (a unique ``record_key`` makes the database ignore a record it already has) and
the file's checkpoint (byte offset and line number read so far). So:

* importing the same file twice: the second run resumes at the checkpoint (or, with
  ``restart``, re-reads and every record is ignored as a duplicate);
* a crash in the middle: the open transaction is rolled back, the checkpoint still names the
  last committed batch, and a re-run starts there;
* a rotated or truncated file: a new first line means a new file, read from its start; the
  rotated copy, if imported too, adds nothing already there.

A checkpoint belongs to a file of one PBX: several PBXs' services share one database, and
each PBX writes its CDRs to the same path (/var/log/asterisk/cdr-csv/Master.csv), so the
checkpoint's key is the PBX's name ([asterisk] system_name) and the resolved path. A checkpoint
saved before PBXs had names (keyed by the path alone) is taken over by the first PBX whose file
it matches (same first line), and then renamed.

Only whole lines are read: a last line without its newline is still being written (or was cut
short) and is left for the next read, and said so. Each bad line is reported with file and line
number and skipped; it never stops the import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import peewee

from livecall_ari.charges.cdr import LocalTimes
from livecall_ari.charges.chunks import Chunk, ParserGone, ParserProcess, ParserSettings, parse_chunks
from livecall_ari.charges.classify import NumberClassifier
from livecall_ari.charges.lines import LineParser
from livecall_ari.charges.models import INSERT_COLUMNS, CdrFile, CdrRow

BATCH_SIZE = 5000
KEEP_BAD = 100  # bad lines kept in a result (all are counted, and all are reported as they come)
# More than this left to read, and the lines are parsed by a second process while this one
# inserts (see chunks.py); below it, starting that process costs more than it saves.
PARALLEL_MIN_BYTES = 16 << 20

log = logging.getLogger("livecall.charges")


@dataclass(frozen=True)
class BadLine:
    path: str
    line_no: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no}: {self.message}"


@dataclass
class IngestResult:
    path: str
    resumed_at_line: int = 0
    lines: int = 0  # lines read this time
    records: int = 0  # good records among them
    inserted: int = 0  # records new to the database
    bad_count: int = 0
    bad: list[BadLine] = field(default_factory=list)
    incomplete_line: bool = False  # a last line without newline was left for later
    offset: int = 0
    line_no: int = 0

    @property
    def duplicates(self) -> int:
        return self.records - self.inserted


@dataclass
class CdrIngest:
    """How CDR lines become rows: the zone of their times, the number classifier, the account
    of a CDR without accountcode, the lines per transaction, and from how many bytes left to
    read a second process parses (negative: never)."""

    times: LocalTimes
    classifier: NumberClassifier
    default_account: str = "default"
    batch_size: int = BATCH_SIZE
    parallel_min_bytes: int = PARALLEL_MIN_BYTES

    def parser(self, source: str) -> LineParser:
        return LineParser(self.times, self.classifier, self.default_account, source)

    def settings(self) -> ParserSettings:
        return ParserSettings(
            self.times.zone, self.classifier.outside_line_prefix, self.classifier.internal_max_digits, self.default_account
        )


def head_hash(first_line: bytes) -> str:
    """Identity of a CDR file: the hash of its first whole line ("" while it has none)."""
    if not first_line.endswith(b"\n"):
        return ""
    return hashlib.blake2b(first_line, digest_size=16).hexdigest()


def read_head(f: BinaryIO) -> str:
    """The head hash of an open file, read without moving its position."""
    here = f.tell()
    f.seek(0)
    first = f.readline(65536)
    f.seek(here)
    return head_hash(first)


_WIDTH = len(INSERT_COLUMNS)
_PER_STATEMENT = 64  # rows per INSERT statement: fewer statements to step through
_ROW_SQL = f"({', '.join('?' for _ in INSERT_COLUMNS)})"
_INSERT_SQL = f"INSERT OR IGNORE INTO {CdrRow._meta.table_name} ({', '.join(INSERT_COLUMNS)}) VALUES "
_INSERT_ONE = _INSERT_SQL + _ROW_SQL
_INSERT_MANY = _INSERT_SQL + ", ".join([_ROW_SQL] * _PER_STATEMENT)


def _insert(db: peewee.Database, flat: list[object]) -> int:
    """Insert what is new of ``flat`` (the insert's columns, record after record); the number
    inserted (duplicates of a record's identity are ignored)."""
    if not flat:
        return 0
    if isinstance(db, peewee.SqliteDatabase):
        cursor = db.cursor()  # type: ignore[no-untyped-call]
        step = _WIDTH * _PER_STATEMENT
        whole = len(flat) // step * step
        inserted = 0
        if whole:
            cursor.executemany(_INSERT_MANY, [flat[i : i + step] for i in range(0, whole, step)])
            inserted += cursor.rowcount
        if whole < len(flat):
            cursor.executemany(_INSERT_ONE, [flat[i : i + _WIDTH] for i in range(whole, len(flat), _WIDTH)])
            inserted += cursor.rowcount
        return int(inserted)
    fields = [getattr(CdrRow, name) for name in INSERT_COLUMNS]
    rows = [tuple(flat[i : i + _WIDTH]) for i in range(0, len(flat), _WIDTH)]
    return int(CdrRow.insert_many(rows, fields=fields).on_conflict_ignore().as_rowcount().execute())


@dataclass
class Checkpoint:
    """How far one PBX's CDR file (``path``, resolved) is committed; ``pbx`` is the PBX's name
    ("" only for checkpoints saved before PBXs had names)."""

    path: str
    head: str = ""
    offset: int = 0
    line_no: int = 0
    records: int = 0
    bad_lines: int = 0
    pbx: str = ""
    # Loaded from a checkpoint saved under the path alone: the first save renames it.
    unnamed: bool = False

    @property
    def key(self) -> str:
        """The row's key in ``cdr_files``: "pbx:/path" (a bare path is an unnamed PBX's)."""
        return f"{self.pbx}:{self.path}" if self.pbx else self.path

    @classmethod
    def load(cls, db: peewee.Database, path: str, pbx: str = "") -> "Checkpoint | None":
        """The checkpoint of ``pbx``'s file at ``path``; failing that, one saved under the
        path alone (before PBXs had names), which the caller keeps only if the file matches."""
        with db.bind_ctx([CdrFile]):
            row = CdrFile.get_or_none(CdrFile.path == cls(path, pbx=pbx).key)
            unnamed = row is None and bool(pbx)
            if unnamed:
                row = CdrFile.get_or_none(CdrFile.path == path)
        if row is None:
            return None
        return cls(path, row.head_hash, int(row.offset), int(row.line_no), int(row.records), int(row.bad_lines), pbx, unnamed)

    def save(self, db: peewee.Database) -> None:
        values = {
            "head_hash": self.head,
            "offset": self.offset,
            "line_no": self.line_no,
            "records": self.records,
            "bad_lines": self.bad_lines,
            "updated_at": dt.datetime.now(dt.timezone.utc),
        }
        with db.bind_ctx([CdrFile]):
            if self.unnamed:  # taken over: from now on under this PBX's name
                CdrFile.delete().where(CdrFile.path == self.path).execute()
                self.unnamed = False
            CdrFile.insert(path=self.key, **values).on_conflict(
                conflict_target=[CdrFile.path], update={getattr(CdrFile, k): v for k, v in values.items()}
            ).execute()


def _file_size(f: BinaryIO) -> int:
    try:
        return os.fstat(f.fileno()).st_size
    except (OSError, ValueError, AttributeError):
        return -1


def _chunks(f: BinaryIO, checkpoint: Checkpoint, ingest: CdrIngest) -> Iterator[Chunk]:
    """The chunks of ``f`` from the checkpoint, parsed by a second process when there is
    much to read; each is asked for only once the one before is committed."""
    offset, line_no = checkpoint.offset, checkpoint.line_no
    if 0 <= ingest.parallel_min_bytes < _file_size(f) - offset:
        worker = ParserProcess(f, checkpoint.path, ingest.settings(), offset, line_no, ingest.batch_size)
        try:
            for chunk in worker:
                yield chunk
                offset, line_no = chunk.end_offset, chunk.end_line_no
        except ParserGone as exc:
            log.warning("%s: %s; parsing in this process from line %d", checkpoint.path, exc, line_no + 1)
        else:
            return
        finally:
            worker.close()
    yield from parse_chunks(f, offset, line_no, ingest.parser(checkpoint.path), ingest.batch_size)


def ingest_from(
    db: peewee.Database,
    f: BinaryIO,
    checkpoint: Checkpoint,
    ingest: CdrIngest,
    *,
    on_bad: Callable[[BadLine], None] | None = None,
    before_commit: Callable[[Checkpoint], None] | None = None,
    on_batch: Callable[[list[tuple[int, str]]], object] | None = None,
) -> IngestResult:
    """Read whole lines from ``f`` at ``checkpoint.offset`` to its end, committing each batch
    of records together with the advanced checkpoint (updated in place).

    ``before_commit`` runs inside each batch's transaction, after the inserts: tests use it
    to kill the process at the worst moment. ``on_batch`` also runs inside it, with each
    record's (start_utc, CDR line): what it writes is committed with the batch, or not at all.
    """
    source = checkpoint.path
    result = IngestResult(source, resumed_at_line=checkpoint.line_no)
    for chunk in _chunks(f, checkpoint, ingest):
        result.incomplete_line = chunk.incomplete
        if not chunk.lines:
            continue
        for line_no, message in chunk.bad:
            report = BadLine(source, line_no, message)
            if len(result.bad) < KEEP_BAD:
                result.bad.append(report)
            if on_bad is not None:
                on_bad(report)
        result.bad_count += len(chunk.bad)
        with db.atomic():
            result.inserted += _insert(db, chunk.rows)
            if on_batch is not None:
                on_batch(batch_lines(chunk.rows))
            if chunk.head is not None:
                checkpoint.head = head_hash(chunk.head)
            checkpoint.offset, checkpoint.line_no = chunk.end_offset, chunk.end_line_no
            checkpoint.records += chunk.records
            checkpoint.bad_lines += len(chunk.bad)
            checkpoint.save(db)
            if before_commit is not None:
                before_commit(checkpoint)
        result.records += chunk.records
        result.lines += chunk.lines
    result.offset, result.line_no = checkpoint.offset, checkpoint.line_no
    return result


_START = INSERT_COLUMNS.index("start_utc")
_LINE = INSERT_COLUMNS.index("cdr_line")


def batch_lines(flat: list[object]) -> list[tuple[int, str]]:
    """(start_utc, CDR line as read) of each record of a batch (the insert's flat columns)."""
    return [(int(flat[i + _START]), str(flat[i + _LINE])) for i in range(0, len(flat), _WIDTH)]  # type: ignore[call-overload]


def import_file(
    db: peewee.Database,
    path: Path,
    ingest: CdrIngest,
    *,
    restart: bool = False,
    on_bad: Callable[[BadLine], None] | None = None,
    before_commit: Callable[[Checkpoint], None] | None = None,
    pbx: str = "",
) -> IngestResult:
    """Import a CDR file of the PBX named ``pbx``, resuming where the last import of this file
    stopped (unless ``restart``); what was already imported, from this or any file, is not
    imported again."""
    key = str(path.resolve())
    with open(path, "rb") as f:
        head = read_head(f)
        saved = Checkpoint.load(db, key, pbx)
        size = os.fstat(f.fileno()).st_size
        if saved is not None and not restart and saved.head == head and head and saved.offset <= size:
            checkpoint = saved
        else:
            checkpoint = Checkpoint(key, head, pbx=pbx)
        return ingest_from(db, f, checkpoint, ingest, on_bad=on_bad, before_commit=before_commit)


class CdrFollower:
    """Follows a CDR file as Asterisk appends to it, through rotation and truncation.

    Each :meth:`poll` reads the new whole lines. When the path names a different file
    (logrotate's rename), the old file is first read to its end; when the file's first line
    changes (truncated, or rewritten in place), it is read again from the start.
    """

    def __init__(
        self,
        db: peewee.Database,
        path: Path,
        ingest: CdrIngest,
        on_bad: Callable[[BadLine], None] | None = None,
        pbx: str = "",
        on_batch: Callable[[list[tuple[int, str]]], object] | None = None,
    ) -> None:
        self.db = db
        self.path = path
        self.ingest = ingest
        self.on_bad = on_bad
        self.pbx = pbx
        self.on_batch = on_batch
        self._f: BinaryIO | None = None
        self._checkpoint: Checkpoint | None = None

    def _open(self) -> bool:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return False
        key = str(self.path.resolve())
        head = read_head(f)
        saved = Checkpoint.load(self.db, key, self.pbx)
        size = os.fstat(f.fileno()).st_size
        if saved is not None and saved.head == head and head and saved.offset <= size:
            self._checkpoint = saved
        else:
            self._checkpoint = Checkpoint(key, head, pbx=self.pbx)
        self._f = f
        return True

    def _read(self) -> IngestResult:
        assert self._f is not None and self._checkpoint is not None
        return ingest_from(self.db, self._f, self._checkpoint, self.ingest, on_bad=self.on_bad, on_batch=self.on_batch)

    def poll(self) -> list[IngestResult]:
        """Import what was appended since the last poll; the results of each file read."""
        if self._f is None and not self._open():
            return []
        assert self._f is not None and self._checkpoint is not None
        results = [self._read()]
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return results  # rotated away and not yet recreated: keep the old file
        mine = os.fstat(self._f.fileno())
        if (st.st_ino, st.st_dev) != (mine.st_ino, mine.st_dev):
            results.append(self._read())  # lines written before the rename
            self.close()
            if self._open():
                results.append(self._read())
            return results
        head = read_head(self._f)
        if mine.st_size < self._checkpoint.offset or (self._checkpoint.head and head != self._checkpoint.head):
            self._checkpoint = Checkpoint(self._checkpoint.path, head, pbx=self.pbx)
            results.append(self._read())
        return results

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
