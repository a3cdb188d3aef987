"""Asterisk CDR lines, parsed: the pure part of ingesting CDRs (no files, no database).

Three layouts are recognised by their number of columns:

* 18: the stock ``cdr_csv`` ``Master.csv`` (accountcode, src, dst, dcontext, clid, channel,
  dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition, amaflags,
  uniqueid, userfield);
* 21: the same with ``newcdrcolumns=yes`` in cdr.conf (+ peeraccount, linkedid, sequence);
* 24: LiveCall's ``cdr_custom`` record (the 21 + LiveCall's call id, purpose and decision).

``cdr_csv`` writes start/answer/end in the server's local time ("2024-10-27 01:30:00") unless
cdr.conf says ``usegmtime=yes``; the zone is therefore a setting, applied explicitly here. In the
hour the clocks go back the same local time happens twice: the record's own duration (end -
start) and billsec (end - answer) decide which one was meant. A local time that never happened
(the hour the clocks go forward) is an error, not a guess. A call wholly inside the repeated hour
reads the same either way; Asterisk's uniqueid (its creation time in epoch seconds) settles it. LiveCall's own record writes epoch
seconds (``${CDR(start,u)}``), which need no zone at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import NamedTuple, Sequence

MASTER_FIELDS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield",
)  # fmt: skip
NEWCDR_FIELDS = MASTER_FIELDS + ("peeraccount", "linkedid", "sequence")
LIVECALL_FIELDS = NEWCDR_FIELDS + ("call_id", "purpose", "decision")


class CdrRecord(NamedTuple):
    """One CDR as Asterisk wrote it, with its times as UTC epoch seconds (``answer`` None when
    the call was not answered)."""

    accountcode: str
    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    start: int
    answer: int | None
    end: int
    duration: int
    billsec: int
    disposition: str
    amaflags: str
    uniqueid: str
    userfield: str
    linkedid: str = ""
    call_id: str = ""
    purpose: str = ""
    decision: str = ""

    def key(self) -> int:
        """The record's identity, the same whichever file or layout it was read from.

        Several CDRs can share a uniqueid (one per party B of a call), so the channels, the
        number and the times are part of the key; re-reading a line always gives the same key.
        """
        raw = f"{self.uniqueid}\x1f{self.channel}\x1f{self.dstchannel}\x1f{self.dst}\x1f{self.start}\x1f{self.end}"
        digest = hashlib.blake2b(raw.encode("utf-8", "surrogateescape"), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def start_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start, dt.timezone.utc)


class CdrFieldError(ValueError):
    """A CDR line that cannot be used; the message names the field and what is wrong with it."""


class LocalTimes:
    """Turns CDR time text into UTC epoch seconds, for local times written in ``zone``.

    Conversions are cached per hour of wall time (per minute within an hour that holds a change
    of offset): a million records cover few distinct hours.
    """

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        self._hours: dict[str, tuple[int, int] | None] = {}
        self._minutes: dict[str, tuple[int, int]] = {}
        self._steady: dict[str, int] = {}  # hours with a single reading: epoch of HH:00:00

    @property
    def hour_starts(self) -> dict[str, int]:
        """The hours seen so far that keep one offset and one reading ("YYYY-MM-DD HH" to the
        epoch of HH:00:00), for callers that convert times in bulk; filled by :meth:`candidates`."""
        return self._steady

    def _readings(self, naive: dt.datetime) -> tuple[int, int, bool]:
        """Both epoch readings of a wall time, and whether the wall time exists at all."""
        first = naive.replace(tzinfo=self.zone)
        e0 = int(first.timestamp())
        e1 = int(first.replace(fold=1).timestamp())
        # A wall time in the gap when clocks go forward converts to an instant that does not
        # read back as the same wall time.
        exists = dt.datetime.fromtimestamp(e0, self.zone).replace(tzinfo=None) == naive
        return e0, e1, exists

    def _hour(self, key: str) -> tuple[int, int] | None:
        """The readings of HH:00:00 when the whole hour keeps one offset (or one pair), else None."""
        if key in self._hours:
            return self._hours[key]
        start = dt.datetime.fromisoformat(key + ":00")
        e0, e1, ok0 = self._readings(start)
        f0, f1, ok1 = self._readings(start + dt.timedelta(minutes=59, seconds=59))
        steady = ok0 and ok1 and f0 - e0 == 3599 and f1 - e1 == 3599
        if len(self._hours) > 100_000:
            self._hours.clear()
            self._steady.clear()
        self._hours[key] = (e0, e1) if steady else None
        if steady and e0 == e1:
            self._steady[key] = e0
        return self._hours[key]

    def _minute(self, key: str) -> tuple[int, int]:
        cached = self._minutes.get(key)
        if cached is not None:
            return cached
        e0, e1, exists = self._readings(dt.datetime.fromisoformat(key))
        if not exists:
            raise CdrFieldError(f"{key} never happened in {self.zone} (the clocks went forward)")
        if len(self._minutes) > 100_000:
            self._minutes.clear()
        self._minutes[key] = (e0, e1)
        return e0, e1

    def candidates(self, text: str, field: str) -> tuple[int, int] | None:
        """Both readings of a time (equal unless the wall time happened twice); None if empty."""
        if not text:
            return None
        if len(text) == 19:
            # The common case, kept short: an hour already seen, with one reading.
            base = self._steady.get(text[:13])
            if base is not None and text[16] == ":":
                tail = text[14:16] + text[17:19]
                if tail.isdigit() and tail.isascii() and tail[0] < "6" and tail[2] < "6":
                    mmss = int(tail)
                    at = base + (mmss // 100) * 60 + mmss % 100
                    return at, at
        if len(text) == 19 and text[4] == "-" and text[13] == ":" and text[16] == ":":
            mm, ss = text[14:16], text[17:19]
            if not _digits(mm + ss) or mm > "59" or ss > "59":
                raise CdrFieldError(f"{field}: bad minutes or seconds in {text!r}")
            try:
                hour = self._hour(text[:13])
                if hour is None:
                    e0, e1 = self._minute(text[:16])
                    offset = int(ss)
                else:
                    e0, e1 = hour
                    offset = int(mm) * 60 + int(ss)
            except CdrFieldError as exc:
                raise CdrFieldError(f"{field}: {exc}") from None
            except ValueError:
                raise CdrFieldError(f"{field}: not a date and time: {text!r}") from None
            return e0 + offset, e1 + offset
        # ${CDR(start,u)}: "1718000000.123456", epoch seconds (UTC); "0.000000" when unset.
        whole, dot, frac = text.partition(".")
        if not _digits(whole) or (dot and not _digits(frac)):
            raise CdrFieldError(f"{field}: expected 'YYYY-MM-DD HH:MM:SS' or epoch seconds, got {text!r}")
        seconds = int(whole)
        if seconds == 0:
            return None
        return seconds, seconds


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _closest(a: tuple[int, int], b: tuple[int, int], seconds: int) -> tuple[int, int]:
    """The readings (x of a, y of b) whose difference y - x is closest to ``seconds``."""
    best = (a[0], b[0])
    best_gap = abs(b[0] - a[0] - seconds)
    for x in a:
        for y in b:
            gap = abs(y - x - seconds)
            if gap < best_gap:
                best, best_gap = (x, y), gap
    return best


def _uniqueid_epoch(uniqueid: str) -> int | None:
    """The creation time in an Asterisk uniqueid ("[systemname-]1730000000.42"), if it has one."""
    whole = uniqueid.rpartition("-")[2].partition(".")[0]
    return int(whole) if _digits(whole) and len(whole) == 10 else None


def _count(text: str, field: str) -> int:
    if _digits(text):
        return int(text)
    # High-resolution mappings (${CDR(billsec,f)}) write "12.345000": billing uses whole seconds.
    whole, dot, frac = text.partition(".")
    if dot and _digits(whole) and (_digits(frac) or not frac):
        return int(whole)
    raise CdrFieldError(f"{field}: expected a number of seconds, got {text!r}")


def parse_fields(row: Sequence[str], times: LocalTimes) -> CdrRecord:
    """A CDR from the columns of one CSV line; :class:`CdrFieldError` says what is wrong."""
    n = len(row)
    if n != 18 and n != 21 and n != 24:
        raise CdrFieldError(
            f"expected 18 columns (Master.csv), 21 (newcdrcolumns) or 24 (LiveCall's cdr_custom), got {n}"
        )
    duration = _count(row[12], "duration")
    billsec = _count(row[13], "billsec")
    start = times.candidates(row[9], "start")
    end = times.candidates(row[11], "end")
    if start is None:
        raise CdrFieldError("start: empty")
    if end is None:
        raise CdrFieldError("end: empty")
    answer = times.candidates(row[10], "answer")
    if start[0] == start[1] and end[0] == end[1]:
        start_at, end_at = start[0], end[0]
    else:
        start_at, end_at = _closest(start, end, duration)
        created = _uniqueid_epoch(row[16])
        if start[0] != start[1] and created is not None:
            # The duration cannot tell a call wholly within the repeated hour from one an hour
            # earlier; Asterisk's uniqueid ("1730000000.42") holds the channel's creation time.
            start_at = min(start, key=lambda s: abs(s - created))
            end_at = _closest((start_at, start_at), end, duration)[1]
    answer_at: int | None = None
    if answer is not None:
        answer_at = answer[0] if answer[0] == answer[1] else _closest(answer, (end_at, end_at), billsec)[0]
    if end_at < start_at:
        raise CdrFieldError(f"end: {row[11]} is before start {row[9]}")
    return CdrRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        start_at, answer_at, end_at, duration, billsec,
        row[14], row[15], row[16], row[17],
        row[19] if n >= 21 else "",
        row[21] if n == 24 else "",
        row[22] if n == 24 else "",
        row[23] if n == 24 else "",
    )  # fmt: skip


def format_local(epoch: int, zone: dt.tzinfo) -> str:
    """Epoch seconds as ``cdr_csv`` writes them in ``zone`` (for fixtures and round trips)."""
    return dt.datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M:%S")


def master_fields(record: CdrRecord, zone: dt.tzinfo) -> list[str]:
    """The 18 Master.csv columns ``cdr_csv`` would write for ``record`` (times local to
    ``zone``): the inverse of :func:`parse_fields`, for fixtures, benchmarks and exports."""
    return [
        record.accountcode, record.src, record.dst, record.dcontext, record.clid, record.channel,
        record.dstchannel, record.lastapp, record.lastdata, format_local(record.start, zone),
        "" if record.answer is None else format_local(record.answer, zone), format_local(record.end, zone),
        str(record.duration), str(record.billsec), record.disposition, record.amaflags, record.uniqueid,
        record.userfield,
    ]  # fmt: skip
