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
import functools
import hashlib
import itertools
import operator
import re
import struct
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from livecall_ari.charges.cdr import CdrFieldError, LocalTimes, parse_fields
from livecall_ari.charges.classify import NumberClass, NumberClassifier

# LiveCall's CDR column livecall_purpose on a call to one of the organisation's DIDs.
INBOUND_PURPOSE = "inbound"

Row = tuple[object, ...]

# The FastAGI secret in an AGI URL (dialplan-safe characters only, see fastagi/server.py).
_FASTAGI_SECRET = re.compile(r"(secret=)[A-Za-z0-9_.~-]+")
# ":MM:SS", the tail of "YYYY-MM-DD HH:MM:SS", to seconds past the hour; anything else misses.
_MINUTE_SECOND = {f":{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
_HOUR, _REST = operator.itemgetter(slice(None, 13)), operator.itemgetter(slice(13, None))
_ENCODE = operator.methodcaller("encode", "utf-8", "surrogateescape")
_KEY_HASH = functools.partial(hashlib.blake2b, digest_size=8)
_DIGEST = operator.methodcaller("digest")
_line_no = operator.itemgetter(13)


WIDTH = 14  # columns of a row


class ParsedLines:
    """What a run of whole lines gave: rows to insert, and the bad lines (number, message).

    Rows made a column at a time are kept flat (record after record), as the store inserts
    them, and made into tuples only if :attr:`rows` is asked for or a row is added one by one.
    """

    def __init__(self, lines: int = 0) -> None:
        self.bad: list[tuple[int, str]] = []
        self.lines = lines
        self._rows: list[Row] = []
        self._flat: list[object] = []

    @property
    def rows(self) -> list[Row]:
        if self._flat:
            self._rows.extend(zip(*[iter(self._flat)] * WIDTH))
            self._flat = []
        return self._rows

    @property
    def records(self) -> int:
        return len(self._rows) + len(self._flat) // WIDTH

    def flat(self) -> list[object]:
        """The rows, flat: the insert's columns, record after record."""
        if not self._rows:
            return self._flat
        return list(itertools.chain.from_iterable(self.rows))

    def add_columns(self, columns: Sequence[Sequence[object]]) -> None:
        """Rows given as WIDTH columns of equal length, after those already here."""
        n = len(columns[0])
        flat: list[object] = [None] * (n * WIDTH)
        for i, column in enumerate(columns):
            flat[i::WIDTH] = column
        if self._rows:
            self._rows.extend(zip(*[iter(flat)] * WIDTH))
        elif self._flat:
            self._flat.extend(flat)
        else:
            self._flat = flat


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
        if r.purpose == INBOUND_PURPOSE:
            number_class = NumberClass.INBOUND
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
        if "secret=" in text:
            # A CDR whose last application was AGI() holds the FastAGI URL with its secret in
            # lastdata: the stored line (and so a subject access export) must not.
            text = _FASTAGI_SECRET.sub(r"\1[secret]", text)
        lines = text.split("\n")
        lines.pop()  # after the last newline
        out = ParsedLines(len(lines))
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
        e164s, classes, countries = self.classifier.plain_columns(dsts)
        # As CdrRecord.key(), a column at a time: the digests of all rows read as one array.
        joined = map("\x1f".join, zip(uniqueids, columns[5], columns[6], dsts, map(str, start_at), map(str, end_at)))
        digests = map(_DIGEST, map(_KEY_HASH, map(_ENCODE, joined)))
        keys = struct.unpack(f">{len(rows)}q", b"".join(digests))
        accounts: Sequence[str] = columns[0]
        if "" in columns[0]:
            accounts = [a or self.default_account for a in columns[0]]
        call_ids: Sequence[str] = [""] * len(rows)
        if 24 in widths:
            call_ids = [r[21] if len(r) == 24 else "" for r in rows]
            if any(len(r) == 24 and r[22] == INBOUND_PURPOSE for r in rows):
                classes = [str(NumberClass.INBOUND) if len(r) == 24 and r[22] == INBOUND_PURPOSE else c
                           for r, c in zip(rows, classes)]
        if any(t[-1:] == "\r" for t in texts):
            texts = [t.rstrip("\r\n") for t in texts]
        out.add_columns((
            accounts, start_at, keys, end_at, list(map(int, durations)), list(map(int, billsecs)),
            e164s, classes, countries, uniqueids, call_ids, texts, [self.source] * len(rows), numbers,
        ))  # fmt: skip

    def _halves(self, rows: list[list[str]], numbers: list[int], texts: list[str], out: ParsedLines) -> None:
        half = len(rows) // 2
        self._columns(rows[:half], numbers[:half], texts[:half], out)
        self._columns(rows[half:], numbers[half:], texts[half:], out)
