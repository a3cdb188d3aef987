"""Whole lines of a CDR file in chunks, parsed here or in a second process.

A chunk is a run of whole lines read from a byte offset, with where it ends (offset and line
number) so the store can commit its rows together with the checkpoint. A last line without its
newline is left out and said so. Big files are parsed by a child process
(``python -m livecall_ari.charges.chunks``) on the second core while this one inserts: the
child opens the same file (checked by device and inode), parses chunk after chunk and sends
each, pickled, down its stdout; it stops when told nothing more is wanted (a closed pipe), so a
killed import leaves no parser behind. Nothing is committed by the child.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import os
import pickle
import subprocess
import sys
import traceback
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from livecall_ari.charges.cdr import LocalTimes
from livecall_ari.charges.classify import NumberClassifier
from livecall_ari.charges.lines import LineParser


@dataclass(frozen=True)
class ParserSettings:
    """What a parser needs, small enough to hand to another process."""

    zone: dt.tzinfo  # ZoneInfo pickles by its key
    outside_line_prefix: str
    internal_max_digits: int
    default_account: str

    def parser(self, source: str) -> LineParser:
        classifier = NumberClassifier(self.outside_line_prefix, self.internal_max_digits)
        return LineParser(LocalTimes(self.zone), classifier, self.default_account, source)


@dataclass
class Chunk:
    """Whole lines read from a file: the rows and bad lines they gave, and where they end."""

    rows: list[object]  # flat: the insert's columns, record after record
    records: int
    bad: list[tuple[int, str]]  # (line number, message)
    lines: int
    end_offset: int
    end_line_no: int
    head: bytes | None  # the file's first line, when this chunk starts the file
    incomplete: bool  # the file's last line has no newline yet (left out)


def parse_chunks(f: BinaryIO, offset: int, line_no: int, parser: LineParser, lines_per_chunk: int) -> Iterator[Chunk]:
    """Chunks of at most ``lines_per_chunk`` whole lines of ``f``, from ``offset`` (after
    ``line_no`` lines) to its end."""
    f.seek(offset)
    while True:
        lines = list(itertools.islice(f, lines_per_chunk))
        if not lines:
            return
        incomplete = not lines[-1].endswith(b"\n")
        if incomplete:
            lines.pop()
        data = b"".join(lines)
        parsed = parser.parse(data.decode("utf-8", "replace"), line_no + 1)
        head = lines[0] if line_no == 0 and lines else None
        offset += len(data)
        line_no += len(lines)
        yield Chunk(
            parsed.flat(), parsed.records, parsed.bad, len(lines),
            offset, line_no, head, incomplete,
        )  # fmt: skip
        if incomplete or len(lines) < lines_per_chunk:
            return


@dataclass(frozen=True)
class _Job:
    settings: ParserSettings
    path: str
    device: int
    inode: int
    offset: int
    line_no: int
    lines_per_chunk: int


class ParserProcess:
    """Parses the rest of an open file in a child process; iterate for its chunks.

    Raises :class:`ParserGone` if the child cannot start, cannot open the same file, or dies:
    the caller carries on by itself from what it has committed.
    """

    def __init__(self, f: BinaryIO, source: str, settings: ParserSettings, offset: int, line_no: int, lines_per_chunk: int) -> None:
        st = os.fstat(f.fileno())
        self._job = _Job(settings, source, st.st_dev, st.st_ino, offset, line_no, lines_per_chunk)
        self._proc: subprocess.Popen[bytes] | None = None

    def __iter__(self) -> Iterator[Chunk]:
        try:
            job = pickle.dumps(self._job, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc = proc = subprocess.Popen(
                [sys.executable, "-m", "livecall_ari.charges.chunks"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ParserGone(f"cannot start the parser process: {exc}") from None
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(job)
            proc.stdin.close()
        except OSError:
            pass  # it died at once: the read below says so
        while True:
            collecting = gc.isenabled()
            gc.disable()  # a chunk is tens of thousands of objects, none in a cycle
            try:
                message = pickle.load(proc.stdout)
            except Exception as exc:  # EOFError when it died; anything else it sent is as bad
                raise ParserGone(f"the parser process ended early ({exc!r})") from None
            finally:
                if collecting:
                    gc.enable()
            if message is None:
                return
            if isinstance(message, str):
                raise ParserGone(message)
            yield message

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None
        proc.stdout.close()
        proc.wait()


class ParserGone(Exception):
    """The parser process is not (or no longer) parsing."""


def _child() -> None:
    gc.disable()  # it makes no cycles; collecting would only walk its rows again and again
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but chunks on the pipe
    try:
        job: _Job = pickle.load(sys.stdin.buffer)
        with open(job.path, "rb", buffering=1 << 20) as f:
            st = os.fstat(f.fileno())
            if (st.st_dev, st.st_ino) != (job.device, job.inode):
                pickle.dump(f"{job.path} is no longer the file being imported", out)
                return
            parser = job.settings.parser(job.path)
            for chunk in parse_chunks(f, job.offset, job.line_no, parser, job.lines_per_chunk):
                pickle.dump(chunk, out, protocol=pickle.HIGHEST_PROTOCOL)
                out.flush()
        pickle.dump(None, out)
        out.flush()
    except BrokenPipeError:
        pass  # the importer is gone or has what it wants
    except Exception:
        try:
            pickle.dump(f"the parser process failed: {traceback.format_exc()}", out)
            out.flush()
        except OSError:
            pass


if __name__ == "__main__":
    from livecall_ari.charges import chunks  # pickle by the module's name, not as __main__

    chunks._child()
