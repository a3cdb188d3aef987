"""Whole lines of a CDR file in chunks, parsed here or in a second process.

A chunk is a run of whole lines read from a byte offset, with where it ends (offset and line
number) so the store can commit its rows together with the checkpoint. A last line without its
newline is left out and said so. Big files are parsed by child processes
(``python -m livecall_ari.charges.chunks``), one per core, while this process inserts: each
child opens the same file (checked by device and inode) and reads it all, parses every
``stride``-th chunk (child ``index`` the chunks ``index``, ``index + stride``, ...; only counting
the lines of the others) and sends each, pickled, down its stdout. The importer takes the chunks
from the children in turn, so they arrive in file order, and checks that each starts where the
one before ended. A child stops when told nothing more is wanted (a closed pipe), so a killed
import leaves no parser behind. Nothing is committed by a child.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import os
import pickle
import queue
import subprocess
import sys
import threading
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
    start_offset: int = -1  # where its first line starts


def parse_chunks(
    f: BinaryIO, offset: int, line_no: int, parser: LineParser, lines_per_chunk: int, *, stride: int = 1, index: int = 0
) -> Iterator[Chunk]:
    """Chunks of at most ``lines_per_chunk`` whole lines of ``f``, from ``offset`` (after
    ``line_no`` lines) to its end; of these, with ``stride`` > 1, only the ``index``-th of
    every ``stride`` (the others are read, to know where the next begins, but not parsed)."""
    f.seek(offset)
    for number in itertools.count():
        lines = list(itertools.islice(f, lines_per_chunk))
        if not lines:
            return
        incomplete = not lines[-1].endswith(b"\n")
        if incomplete:
            lines.pop()
        short = incomplete or len(lines) < lines_per_chunk
        if number % stride != index:
            offset += sum(map(len, lines))
            line_no += len(lines)
            if short:
                return
            continue
        data = b"".join(lines)
        parsed = parser.parse(data.decode("utf-8", "replace"), line_no + 1)
        head = lines[0] if line_no == 0 and lines else None
        start = offset
        offset += len(data)
        line_no += len(lines)
        yield Chunk(
            parsed.flat(), parsed.records, parsed.bad, len(lines),
            offset, line_no, head, incomplete, start,
        )  # fmt: skip
        if short:
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
    stride: int = 1
    index: int = 0


def cores() -> int:
    """The cores this process may run on, at most 4: how many parser processes parse a big
    file (the importer sharing one), and how many parts rating groups in."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


_AHEAD = 2  # chunks a child may have parsed and sent before the importer takes them


class _Child:
    """One parser process and the thread that takes its chunks off the pipe as they come, so
    the child can parse on while the importer is busy with another child's chunk."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.proc: subprocess.Popen[bytes] | None = None
        self.chunks: queue.Queue[object] = queue.Queue(maxsize=_AHEAD)
        self.stopping = threading.Event()

    def start(self) -> None:
        try:
            job = pickle.dumps(self.job, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc = proc = subprocess.Popen(
                [sys.executable, "-m", "livecall_ari.charges.chunks"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ParserGone(f"cannot start the parser process: {exc}") from None
        assert proc.stdin is not None
        try:
            proc.stdin.write(job)
            proc.stdin.close()
        except OSError:
            pass  # it died at once: the reader says so
        threading.Thread(target=self._read, name=f"livecall-cdr-parser-{self.job.index}", daemon=True).start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            try:
                message = pickle.load(self.proc.stdout)
            except Exception as exc:  # EOFError when it died; anything else it sent is as bad
                message = f"the parser process ended early ({exc!r})"
            if not self._put(message) or not isinstance(message, Chunk):
                return

    def _put(self, message: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.chunks.put(message, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> Chunk | None:
        message = self.chunks.get()
        if message is None or isinstance(message, Chunk):
            return message
        raise ParserGone(str(message))

    def close(self) -> None:
        self.stopping.set()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


class ParserProcess:
    """Parses the rest of an open file in child processes; iterate for its chunks, in order.

    Raises :class:`ParserGone` if a child cannot start, cannot open the same file, or dies:
    the caller carries on by itself from what it has committed.
    """

    def __init__(
        self, f: BinaryIO, source: str, settings: ParserSettings, offset: int, line_no: int, lines_per_chunk: int,
        processes: int | None = None,
    ) -> None:  # fmt: skip
        st = os.fstat(f.fileno())
        stride = processes or cores()
        self._children = [
            _Child(_Job(settings, source, st.st_dev, st.st_ino, offset, line_no, lines_per_chunk, stride, i))
            for i in range(stride)
        ]  # fmt: skip
        self._offset = offset

    def __iter__(self) -> Iterator[Chunk]:
        for child in self._children:
            child.start()
        expected = self._offset
        for child in itertools.cycle(self._children):
            chunk = child.next()
            # A child that found the end first, or saw a shorter file than the one before (the
            # file grows as it is read): what it says of the end is what the file held then.
            if chunk is None or chunk.start_offset != expected:
                return
            yield chunk
            expected = chunk.end_offset
            if chunk.incomplete or chunk.lines < self._children[0].job.lines_per_chunk:  # the file's end, then
                return

    def close(self) -> None:
        for child in self._children:
            child.close()


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
            for chunk in parse_chunks(f, job.offset, job.line_no, parser, job.lines_per_chunk, stride=job.stride, index=job.index):
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
