"""Parsers for the TPS and CTPS files: bytes in, integer keys and bad lines out. No I/O.

The files hold UK national numbers, one per CRLF-terminated record, in one of the two layouts
supplied to subscribers:

* "with spaces": the dialling code left-justified in 5 characters, then the rest of the number
  right-justified in 7 (``0207 3787244``, ``01635 506160``);
* "without spaces": the whole number left-justified and space-padded to 12 characters.

Either way a record is 12 characters of digits and spaces whose digits, read in order, are the
national number, so one vectorised pass handles both. A chunk whose records are all exactly
12 characters plus CRLF (a well-formed file) is viewed as an ``(n, 14)`` byte array without
splitting lines; anything else (LF endings, trimmed padding, change-file markers) goes through
a per-line path that pads records to 12 characters first.

Change files (``--delta``) carry one action per record: a record followed by ``A`` (add) or
``D`` (delete) after at least one space, or preceded by ``+`` or ``-``. A record without a marker
is an addition. This layout is LiveCall's assumption (see docs/screening.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

RECORD_WIDTH = 12
_FIXED_WIDTH = RECORD_WIDTH + 2  # with CRLF
_POW10 = np.array([10**i for i in range(RECORD_WIDTH + 1)], dtype=np.int64)

# Problem codes of the vectorised checks, and what they mean to a person.
_OK, _BAD_CHAR, _NO_ZERO, _LENGTH, _GROUPS, _BLANK, _TOO_LONG, _MARKER, _NO_NUMBER = range(9)
_PROBLEMS = {
    _BAD_CHAR: "contains a character that is neither a digit nor a space",
    _NO_ZERO: "does not start with 0 (not a UK national number)",
    _LENGTH: "has {digits} digits; a UK national number has 10 or 11",
    _GROUPS: "has its digits in more than two groups",
    _TOO_LONG: "is longer than 12 characters",
    _MARKER: "has an unknown change marker (use A or D after the number, or + or - before it)",
    _NO_NUMBER: "has a change marker but no number",
}

Keys = npt.NDArray[np.int64]


# A bad line is quoted at most this many characters wherever it is shown (CLI, portal, logs):
# a file of one 300 MB "line" must not come back whole in a reply.
QUOTE_LIMIT = 200


def quote_limited(text: str, limit: int = QUOTE_LIMIT) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, and whether it was cut."""
    return (text, False) if len(text) <= limit else (text[:limit], True)


@dataclass(frozen=True)
class BadLine:
    """A record that could not be read, with where and why, for the import report. ``text`` is
    at most :data:`QUOTE_LIMIT` characters of it; ``cut`` says the line went on."""

    line: int
    text: str
    problem: str
    cut: bool = False

    @classmethod
    def of(cls, line: int, raw: bytes, problem: str) -> "BadLine":
        """The bad line ``raw`` (bytes as read, line end included or not), quoted at most
        :data:`QUOTE_LIMIT` characters; only that much of it is ever decoded."""
        record = raw.rstrip(b"\r\n")
        text, cut = quote_limited(record[: QUOTE_LIMIT + 1].decode("latin-1"))
        return cls(line, text, problem, cut)

    @property
    def shown(self) -> str:
        """The quoted text as a person sees it: an ellipsis marks a cut line."""
        return self.text + ("…" if self.cut else "")

    def describe(self, file: str) -> str:
        more = f"… (cut at {QUOTE_LIMIT} characters)" if self.cut else ""
        return f"{file}:{self.line}: {self.problem}: {self.text!r}{more}"


@dataclass
class ParsedChunk:
    """What one chunk of a list file held: numbers to add, numbers to delete, bad lines."""

    additions: Keys
    deletions: Keys
    bad: list[BadLine] = field(default_factory=list)
    lines: int = 0
    with_spaces: int = 0
    without_spaces: int = 0


def _records_to_keys(records: npt.NDArray[np.uint8]) -> tuple[Keys, npt.NDArray[np.int8], npt.NDArray[np.int8], npt.NDArray[np.int8]]:
    """Keys, problem codes, digit counts and digit-group counts of an ``(n, 12)`` record array."""
    n = records.shape[0]
    value = np.zeros(n, dtype=np.int64)
    digits = np.zeros(n, dtype=np.int8)
    groups = np.zeros(n, dtype=np.int8)
    bad_char = np.zeros(n, dtype=bool)
    previous = np.zeros(n, dtype=bool)
    for column in range(RECORD_WIDTH):
        col = records[:, column]
        is_digit = (col >= 48) & (col <= 57)
        bad_char |= ~is_digit & (col != 32)
        value = np.where(is_digit, value * 10 + (col.astype(np.int64) - 48), value)
        digits += is_digit
        groups += is_digit & ~previous
        previous = is_digit
    keys = 44 * _POW10[np.maximum(digits.astype(np.int64) - 1, 0)] + value
    problem = np.zeros(n, dtype=np.int8)
    problem[groups > 2] = _GROUPS
    problem[(digits < 10) | (digits > 11)] = _LENGTH
    first = records[:, 0] if records.shape[1] else np.zeros(n, dtype=np.uint8)
    problem[(digits > 0) & (first != 48)] = _NO_ZERO
    problem[bad_char] = _BAD_CHAR
    problem[(digits == 0) & ~bad_char] = _BLANK
    return keys, problem, digits, groups


def _fixed_view(chunk: bytes) -> npt.NDArray[np.uint8] | None:
    """The chunk as ``(n, 14)`` bytes when every record is 12 characters plus CRLF."""
    if not chunk or len(chunk) % _FIXED_WIDTH:
        return None
    view = np.frombuffer(chunk, dtype=np.uint8).reshape(-1, _FIXED_WIDTH)
    if not (np.all(view[:, RECORD_WIDTH] == 13) and np.all(view[:, RECORD_WIDTH + 1] == 10)):
        return None
    # Short lines can line their CRLFs up with the columns by chance: no LF may sit inside.
    if np.any(view[:, :RECORD_WIDTH] == 10):
        return None
    return view


_ADD_MARKS = {b"A", b"a", b"+"}
_DELETE_MARKS = {b"D", b"d", b"-"}


def _split_marker(record: bytes) -> tuple[bytes, bool | None]:
    """A change-file record without its marker, and True for delete, False for add, None if bad."""
    if record[:1] in (b"+", b"-"):
        return record[1:], record[:1] == b"-"
    head, sep, mark = record.rstrip().rpartition(b" ")
    if sep and mark and not mark.isdigit():
        if mark in _ADD_MARKS or mark in _DELETE_MARKS:
            return head, mark in _DELETE_MARKS
        return record, None
    return record, False


def parse_chunk(chunk: bytes, first_line: int, delta: bool = False) -> ParsedChunk:
    """Parse whole records (``chunk`` ends at a line end, or at the end of the file).

    ``first_line`` is the 1-based number of the chunk's first line, for the bad-line report.
    """
    view = None if delta else _fixed_view(chunk)
    raw_lines: list[bytes] | None = None
    is_delete: npt.NDArray[np.bool_] | None = None
    extra_bad: list[tuple[int, int]] = []  # (index, problem) found before the vectorised pass
    if view is not None:
        records = view[:, :RECORD_WIDTH]
    else:
        raw_lines = chunk.split(b"\n")
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        padded = bytearray()
        deletes = np.zeros(len(raw_lines), dtype=bool)
        for index, raw in enumerate(raw_lines):
            record = raw.rstrip(b"\r")
            if delta:
                record, delete = _split_marker(record)
                if delete is None:
                    extra_bad.append((index, _MARKER))
                    record = b""
                else:
                    deletes[index] = delete
                    if not record.strip() and raw.strip():
                        extra_bad.append((index, _NO_NUMBER))
            record = record.rstrip(b" ")
            if len(record) > RECORD_WIDTH:
                extra_bad.append((index, _TOO_LONG))
                record = b""
            padded += record.ljust(RECORD_WIDTH)
        records = np.frombuffer(bytes(padded), dtype=np.uint8).reshape(-1, RECORD_WIDTH)
        is_delete = deletes
    keys, problem, digits, groups = _records_to_keys(records)
    for index, code in extra_bad:
        problem[index] = code
    good = problem == _OK
    bad_rows = np.flatnonzero((problem != _OK) & (problem != _BLANK))
    bad: list[BadLine] = []
    for index in bad_rows.tolist():
        code = int(problem[index])
        raw = bytes(view[index]) if view is not None else (raw_lines[index] if raw_lines is not None else b"")
        bad.append(BadLine.of(first_line + index, raw, _PROBLEMS[code].format(digits=int(digits[index]))))
    with_spaces = int(np.count_nonzero(good & (groups == 2)))
    good_count = int(np.count_nonzero(good))
    if is_delete is None:
        additions, deletions = keys[good], np.empty(0, dtype=np.int64)
    else:
        additions, deletions = keys[good & ~is_delete], keys[good & is_delete]
    return ParsedChunk(
        additions=additions,
        deletions=deletions,
        bad=bad,
        lines=int(records.shape[0]),
        with_spaces=with_spaces,
        without_spaces=good_count - with_spaces,
    )


def parse_bytes(data: bytes, delta: bool = False) -> ParsedChunk:
    """Parse a whole (small) file held in memory: the tests' and the change files' entry."""
    return parse_chunk(data, 1, delta)


def detected_format(with_spaces: int, without_spaces: int) -> str:
    """Which of the two layouts a file used, by majority of its good records."""
    if with_spaces == 0 and without_spaces == 0:
        return "empty"
    if with_spaces and without_spaces:
        return "mixed" if min(with_spaces, without_spaces) * 100 > max(with_spaces, without_spaces) else (
            "with spaces" if with_spaces > without_spaces else "without spaces"
        )
    return "with spaces" if with_spaces else "without spaces"


def format_record(national: str, with_spaces: bool, code_length: int = 4) -> str:
    """Lay a national number out as a 12-character record (the tests and benchmarks write files)."""
    if not with_spaces:
        return national.ljust(RECORD_WIDTH)
    code, rest = national[: code_length + 1], national[code_length + 1:]
    return code.ljust(5) + rest.rjust(7)


_ISO_DATE = re.compile(r"(?<!\d)(20\d\d)[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])(?!\d)")
_UK_DATE = re.compile(r"(?<!\d)(0[1-9]|[12]\d|3[01])[-_.]?(0[1-9]|1[0-2])[-_.]?(20\d\d)(?!\d)")


def date_in_name(name: str) -> dt.date | None:
    """A snapshot date carried in a file name: ``tps-2024-05-01.txt``, ``tps_20240501``,
    ``ctps01052024.txt`` (day first, as UK files are named). None when there is none."""
    for pattern, order in ((_ISO_DATE, (0, 1, 2)), (_UK_DATE, (2, 1, 0))):
        for match in pattern.finditer(name):
            parts = match.groups()
            try:
                return dt.date(int(parts[order[0]]), int(parts[order[1]]), int(parts[order[2]]))
            except ValueError:
                continue
    return None
