"""CDR lines in batches, parsed into the rows the store inserts: pure, and quick.

The store reads thousands of whole lines at a time; :class:`LineParser` turns them into row
tuples (in :data:`~livecall_ari.charges.models.INSERT_COLUMNS` order) with one ``csv.reader``
pass. The common line, a Master.csv line in an hour already seen with one reading and a UK
number whose prefix is known, is handled inline: a dict look-up per time and per number, and
the record key. Every other line (a new hour, the repeated hour when the clocks go back, epoch
times, a bad field, a line whose quotes run on into the next) goes through the reference,
:func:`~livecall_ari.charges.cdr.parse_fields` and
:meth:`~livecall_ari.charges.classify.NumberClassifier.classify`, line by line; tests check
that both give the same rows.
"""

from __future__ import annotations

import csv
import hashlib
import operator
import struct
from dataclasses import dataclass, field
from itertools import repeat
from typing import Iterable, Iterator

from livecall_ari.charges.cdr import CdrFieldError, LocalTimes, parse_fields
from livecall_ari.charges.classify import NumberClassifier

Row = tuple[object, ...]

# ":MM:SS", the tail of "YYYY-MM-DD HH:MM:SS", to seconds past the hour; anything else misses.
_MINUTE_SECOND = {f":{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
_HOUR, _REST = operator.itemgetter(slice(None, 13)), operator.itemgetter(slice(13, None))
_NUMBER, _CLASS, _COUNTRY = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)
_SIGNED64 = struct.Struct(">q").unpack
_line_no = operator.itemgetter(13)


@dataclass
class ParsedLines:
    """What a run of whole lines gave: rows to insert, and the bad lines (number, message)."""

    rows: list[Row] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    lines: int = 0


class _OneLine:
    """Feeds one line at a time to a csv reader, so a stray quote spoils only its own line."""

    def __init__(self) -> None:
        self.line: str | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.line
        if line is None:
            raise StopIteration
        self.line = None
        return line


@dataclass
class LineParser:
    """Parses CDR lines of one file (``source``) into rows; ``default_account`` stands in for
    an empty accountcode."""

    times: LocalTimes
    classifier: NumberClassifier
    default_account: str
    source: str
    _feed: _OneLine = field(default_factory=_OneLine, init=False, repr=False)

    def __post_init__(self) -> None:
        self._one = csv.reader(self._feed, strict=True)

    def reference_row(self, fields: list[str], line: str, line_no: int) -> Row:
        """The row of one line's columns, the plain way (:class:`CdrFieldError` if it is bad)."""
        r = parse_fields(fields, self.times)
        number, number_class, country = self.classifier.classify(r.dst)
        return (
            r.accountcode or self.default_account, r.start, r.key(), r.end, r.duration, r.billsec,
            number, str(number_class), country, r.uniqueid, r.call_id, line, self.source, line_no,
        )  # fmt: skip

    def _line_by_line(self, lines: list[str], first_no: int, out: ParsedLines) -> None:
        for i, text in enumerate(lines):
            self._feed.line = text + "\n"  # as the file has it: a quote left open ends here
            try:
                fields = next(self._one)
            except csv.Error as exc:
                out.bad.append((first_no + i, f"not a CSV line: {exc}"))
                continue
            except StopIteration:  # pragma: no cover - the feed always has the line
                continue
            self._row(fields, text, first_no + i, out)

    def _row(self, fields: list[str], text: str, line_no: int, out: ParsedLines) -> None:
        if not fields:
            out.bad.append((line_no, "empty line"))
            return
        try:
            out.rows.append(self.reference_row(fields, text.rstrip("\r\n"), line_no))
        except CdrFieldError as exc:
            out.bad.append((line_no, str(exc)))

    def parse(self, text: str, first_no: int) -> ParsedLines:
        """The rows of ``text``, whole lines each ending in a newline, the first numbered
        ``first_no``; in line order, as are the bad lines."""
        lines = text.split("\n")
        lines.pop()  # after the last newline
        out = ParsedLines(lines=len(lines))
        reader = csv.reader(lines, strict=True)
        try:
            rows = list(reader)
        except csv.Error:
            rows = []
        if len(rows) == len(lines) == reader.line_num:  # one row a line, as CDR files have
            self._columns(rows, list(range(first_no, first_no + len(lines))), lines, out)
            return out
        # A line that is not CSV, or a quoted field running on over a newline: find which.
        reader = csv.reader(lines, strict=True)
        rows = []
        numbers: list[int] = []
        texts: list[str] = []
        done = 0  # lines consumed by the reader so far
        while True:
            try:
                for fields in reader:
                    n = reader.line_num
                    if n - done == 1:
                        rows.append(fields)
                        numbers.append(first_no + n - 1)
                        texts.append(lines[n - 1])
                    else:
                        self._line_by_line(lines[done:n], first_no + done, out)
                    done = n
                break
            except csv.Error as exc:
                n = reader.line_num
                if n - done == 1:
                    out.bad.append((first_no + n - 1, f"not a CSV line: {exc}"))
                else:
                    self._line_by_line(lines[done:n], first_no + done, out)
                done = n
        self._columns(rows, numbers, texts, out)
        out.rows.sort(key=_line_no)
        out.bad.sort()
        return out

    def _learn_hours(self, *columns: tuple[str, ...]) -> None:
        hours = self.times.hour_starts
        seen: set[str] = set()
        for column in columns:
            seen.update(map(_HOUR, column))
        for hour in seen.difference(hours):
            if len(hour) == 13:
                try:
                    self.times.candidates(hour + ":00:00", "")
                except CdrFieldError:
                    pass  # not a time, or one that never happened: the line will say so

    def _columns(self, rows: list[list[str]], numbers: list[int], texts: list[str], out: ParsedLines) -> None:
        """Rows of one line each, column by column; any line off the common path sends its
        half of the rows back through here, down to a few rows read the reference way."""
        if len(rows) <= 16:
            for fields, line_no, text in zip(rows, numbers, texts):
                self._row(fields, text, line_no, out)
            return
        widths = set(map(len, rows))
        columns = list(zip(*rows))
        if not widths <= {18, 21, 24}:
            return self._halves(rows, numbers, texts, out)
        starts, answers, ends, durations, billsecs = columns[9], columns[10], columns[11], columns[12], columns[13]
        self._learn_hours(starts, answers, ends)
        hour_at, minsec = self.times.hour_starts.get, _MINUTE_SECOND.get
        start_hours, start_secs = list(map(hour_at, map(_HOUR, starts))), list(map(minsec, map(_REST, starts)))
        end_hours, end_secs = list(map(hour_at, map(_HOUR, ends))), list(map(minsec, map(_REST, ends)))
        answered = [a for a in answers if a]
        counts = "".join(durations) + "".join(billsecs)
        if (
            None in start_hours or None in start_secs or None in end_hours or None in end_secs
            or None in map(hour_at, map(_HOUR, answered)) or None in map(minsec, map(_REST, answered))
            or not (counts.isdigit() and counts.isascii()) or "" in durations or "" in billsecs
        ):  # fmt: skip
            return self._halves(rows, numbers, texts, out)
        start_at, end_at = list(map(operator.add, start_hours, start_secs)), list(map(operator.add, end_hours, end_secs))
        if any(map(operator.lt, end_at, start_at)):
            return self._halves(rows, numbers, texts, out)
        dsts, uniqueids = columns[2], columns[16]
        classified = list(map(self.classifier.plain, dsts))
        blake2b, signed64 = hashlib.blake2b, _SIGNED64
        keys = [
            signed64(blake2b(f"{u}\x1f{c}\x1f{dc}\x1f{d}\x1f{s}\x1f{e}".encode("utf-8", "surrogateescape"), digest_size=8).digest())[0]
            for u, c, dc, d, s, e in zip(uniqueids, columns[5], columns[6], dsts, start_at, end_at)
        ]  # as CdrRecord.key()
        accounts: Iterable[str] = columns[0]
        if "" in columns[0]:
            accounts = [a or self.default_account for a in columns[0]]
        call_ids: Iterable[str] = repeat("")
        if 24 in widths:
            call_ids = [r[21] if len(r) == 24 else "" for r in rows]
        if any(t[-1:] == "\r" for t in texts):
            texts = [t.rstrip("\r\n") for t in texts]
        out.rows.extend(zip(
            accounts, start_at, keys, end_at, map(int, durations), map(int, billsecs),
            map(_NUMBER, classified), map(_CLASS, classified), map(_COUNTRY, classified),
            uniqueids, call_ids, texts, repeat(self.source), numbers,
        ))  # fmt: skip

    def _halves(self, rows: list[list[str]], numbers: list[int], texts: list[str], out: ParsedLines) -> None:
        half = len(rows) // 2
        self._columns(rows[:half], numbers[:half], texts[:half], out)
        self._columns(rows[half:], numbers[half:], texts[half:], out)
