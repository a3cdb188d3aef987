"""Data protection decisions, pure: lawful bases, retention, deadlines and the audit chain.

Nothing here opens a database or a file or reads the clock: the adapters (retention.py,
dsar.py, breaches.py, audit.py) load plain facts, pass in "now", and act on what comes back.

* **Lawful basis**: one of the six of UK GDPR art. 6(1), defaulted from the call's purpose by the
  organisation's policy (``[protection] lawful_bases``), overridable with a recorded reason.
* **Retention**: rules ``KIND/PURPOSE[/BASIS]=DAYS``; the most specific rule that matches wins.
  A record under a legal hold is never due.
* **Deadlines**: a subject access request is answered within one calendar month (the ICO's
  reading: the same day next month, or that month's last day when there is no such day, moved
  to the next working day); a notifiable breach is reported to the ICO within 72 hours of
  becoming aware of it.
* **Audit chain**: each entry commits to its content (subject and details, salted) and to the
  previous entry's hash, with a sequence number; an entry's subject and details may be redacted
  by an erasure (its content hash stays, the chain still verifies) only if a later erasure
  entry names it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

LAWFUL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests")
BASIS_TITLES = {
    "consent": "consent (UK GDPR art. 6(1)(a))",
    "contract": "performance of a contract (art. 6(1)(b))",
    "legal_obligation": "legal obligation (art. 6(1)(c))",
    "vital_interests": "vital interests (art. 6(1)(d))",
    "public_task": "public task (art. 6(1)(e))",
    "legitimate_interests": "legitimate interests (art. 6(1)(f))",
}
RETENTION_KINDS = ("recordings", "calls")
LONDON = ZoneInfo("Europe/London")
UTC = dt.timezone.utc
GENESIS = "0" * 64
ICO_HOURS = 72


class PolicyError(ValueError):
    """A protection setting that cannot be used; the message names it and says why."""


# Lawful basis -------------------------------------------------------------------------------


def check_basis(basis: str) -> str:
    name = basis.strip().lower().replace(" ", "_").replace("-", "_")
    if name not in LAWFUL_BASES:
        raise PolicyError(f"unknown lawful basis {basis!r} (use one of: {', '.join(LAWFUL_BASES)})")
    return name


@dataclass(frozen=True)
class LawfulBasisPolicy:
    """Which basis a call or recording of each purpose rests on unless someone changes it."""

    by_purpose: Mapping[str, str]
    default: str = "legitimate_interests"

    @classmethod
    def parse(cls, entries: Iterable[str], default: str) -> "LawfulBasisPolicy":
        """From ``["marketing=legitimate_interests", ...]`` as written in the settings."""
        found: dict[str, str] = {}
        for entry in entries:
            purpose, sep, basis = entry.partition("=")
            if not sep or not purpose.strip():
                raise PolicyError(f"[protection] lawful_bases: expected PURPOSE=BASIS, got {entry!r}")
            found[purpose.strip().lower()] = check_basis(basis)
        return cls(found, check_basis(default))

    def basis_for(self, purpose: str) -> str:
        return self.by_purpose.get(purpose.strip().lower(), self.default)


# Retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionRule:
    kind: str  # "recordings" or "calls"
    purpose: str  # a purpose or recording tag, or "*"
    basis: str  # a lawful basis, or "*"
    days: int

    @property
    def specificity(self) -> int:
        return (self.purpose != "*") * 2 + (self.basis != "*")

    def matches(self, kind: str, purposes: Sequence[str], basis: str) -> bool:
        return kind == self.kind and (self.purpose == "*" or self.purpose in purposes) and self.basis in ("*", basis)

    def __str__(self) -> str:
        basis = "" if self.basis == "*" else f"/{self.basis}"
        return f"{self.kind}/{self.purpose}{basis}={self.days}"


@dataclass(frozen=True)
class RetentionPolicy:
    rules: tuple[RetentionRule, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "RetentionPolicy":
        """From ``["recordings/training=90", "recordings/*/consent=180", "calls/*=2190"]``."""
        rules = []
        for entry in entries:
            target, sep, days_text = entry.partition("=")
            parts = [p.strip().lower() for p in target.split("/")]
            if not sep or len(parts) not in (2, 3) or not all(parts):
                raise PolicyError(f"[protection] retention: expected KIND/PURPOSE[/BASIS]=DAYS, got {entry!r}")
            if parts[0] not in RETENTION_KINDS:
                raise PolicyError(f"[protection] retention: {entry!r}: kind must be recordings or calls")
            basis = parts[2] if len(parts) == 3 else "*"
            if basis != "*":
                basis = check_basis(basis)
            try:
                days = int(days_text)
            except ValueError:
                raise PolicyError(f"[protection] retention: {entry!r}: days must be a whole number") from None
            if days < 0:
                raise PolicyError(f"[protection] retention: {entry!r}: days must not be negative")
            rules.append(RetentionRule(parts[0], parts[1], basis, days))
        return cls(tuple(rules))

    def rule_for(self, kind: str, purposes: Sequence[str], basis: str) -> RetentionRule | None:
        """The most specific matching rule; among equally specific ones the shortest period."""
        matching = [r for r in self.rules if r.matches(kind, purposes, basis)]
        if not matching:
            return None
        return min(matching, key=lambda r: (-r.specificity, r.days))


def london_date(at: dt.datetime) -> dt.date:
    if at.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return at.astimezone(LONDON).date()


@dataclass(frozen=True)
class RetainedRecord:
    """What retention needs to know about a recording or a call decision."""

    kind: str  # "recordings" or "calls"
    id: int
    call_id: str
    number: str
    purposes: tuple[str, ...]  # the purpose, then any tags
    basis: str
    at: dt.datetime  # when it was made (tz-aware)
    keep_until: dt.date | None = None  # an explicit date (recordings.retention_until) wins


@dataclass(frozen=True)
class LegalHold:
    id: int
    kind: str  # "number", "call" or "recording"
    target: str
    reason: str

    def covers(self, record: RetainedRecord) -> bool:
        if self.kind == "number":
            return record.number == self.target
        if self.kind == "call":
            return record.call_id == self.target
        return record.kind == "recordings" and str(record.id) == self.target


@dataclass(frozen=True)
class RetentionVerdict:
    record: RetainedRecord
    due: bool
    keep_until: dt.date | None
    why: str
    hold: LegalHold | None = None


def retention_until(record: RetainedRecord, policy: RetentionPolicy) -> tuple[dt.date | None, str]:
    """The last day ``record`` may be kept (London dates), and which rule says so."""
    if record.keep_until is not None:
        return record.keep_until, "its own retention date"
    rule = policy.rule_for(record.kind, record.purposes, record.basis)
    if rule is None:
        return None, "no retention rule matches: kept"
    return london_date(record.at) + dt.timedelta(days=rule.days), f"rule {rule}"


def retention_plan(
    records: Iterable[RetainedRecord], policy: RetentionPolicy, holds: Sequence[LegalHold], now: dt.datetime
) -> list[RetentionVerdict]:
    """A verdict for every record: due for deletion (its date has passed, no hold) or kept, and why."""
    today = london_date(now)
    verdicts = []
    for record in records:
        until, why = retention_until(record, policy)
        hold = next((h for h in holds if h.covers(record)), None)
        if until is None or until >= today:
            verdicts.append(RetentionVerdict(record, False, until, why))
        elif hold is not None:
            verdicts.append(RetentionVerdict(record, False, until, f"legal hold {hold.id}: {hold.reason}", hold))
        else:
            verdicts.append(RetentionVerdict(record, True, until, f"{why}: kept until {until}"))
    return verdicts


# Deadlines ----------------------------------------------------------------------------------


def add_calendar_month(day: dt.date) -> dt.date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def dsar_deadline(received: dt.datetime, is_holiday: Callable[[dt.date], bool] = lambda _d: False) -> dt.date:
    """One calendar month from the day of receipt (London), moved past weekends and holidays."""
    due = add_calendar_month(london_date(received))
    while due.weekday() >= 5 or is_holiday(due):
        due += dt.timedelta(days=1)
    return due


@dataclass(frozen=True)
class BreachClock:
    deadline: dt.datetime
    hours_left: float
    status: str  # "reported on time", "reported late", "open", "overdue", "not notifiable"


def breach_clock(aware_at: dt.datetime, now: dt.datetime, reported_at: dt.datetime | None, notifiable: bool) -> BreachClock:
    """The ICO's 72 hours from when the organisation became aware of a breach."""
    deadline = aware_at + dt.timedelta(hours=ICO_HOURS)
    left = (deadline - now).total_seconds() / 3600
    if reported_at is not None:
        status = "reported on time" if reported_at <= deadline else "reported late"
    elif not notifiable:
        status = "not notifiable"
    else:
        status = "open" if left > 0 else "overdue"
    return BreachClock(deadline, round(left, 1), status)


# Number pseudonyms --------------------------------------------------------------------------


def keyed_hash(key: bytes, e164: str) -> str:
    """HMAC-SHA256 of the E.164 digits: how an erased number is remembered without keeping it."""
    return hmac.new(key, e164.lstrip("+").encode(), hashlib.sha256).hexdigest()


def pseudonym(key: bytes, e164: str) -> str:
    """What replaces an erased number in records that must stay (accounts): stable, not reversible."""
    return "erased:" + keyed_hash(key, e164)[:16]


def key_fingerprint(key: bytes) -> str:
    return hmac.new(key, b"livecall key fingerprint", hashlib.sha256).hexdigest()[:16]


# Audit chain --------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(salt: str, subject: str, details_json: str) -> str:
    return hashlib.sha256(f"{salt}\n{subject}\n{details_json}".encode()).hexdigest()


def entry_hash(seq: int, at: str, actor: str, action: str, content: str, prev: str) -> str:
    return hashlib.sha256(canonical([seq, at, actor, action, content, prev]).encode()).hexdigest()


@dataclass(frozen=True)
class ChainEntry:
    """One audit entry as stored."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details_json: str
    salt: str
    content_hash: str
    prev_hash: str
    entry_hash: str
    redacted: bool = False
    mac: str = ""


@dataclass
class ChainReport:
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)
    anchors: int = 0  # anchors of the file outside the database that were checked

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(entries: Sequence[ChainEntry], head: tuple[int, str] | None) -> ChainReport:
    """Check every link: sequence without gaps, content and entry hashes, the recorded head.

    ``entries`` must be ordered by ``seq``. An edited entry fails its hashes, a removed one
    leaves a gap (or, at the end, disagrees with the head), a reordered one fails its link.
    """
    report = ChainReport(entries=len(entries))
    prev = GENESIS
    redactions: set[int] = set()
    for entry in entries:
        if entry.action == "erasure.redact" and not entry.redacted:
            try:
                redactions.update(int(s) for s in json.loads(entry.details_json).get("redacted_seqs", []))
            except (ValueError, AttributeError, TypeError):
                report.problems.append(f"entry {entry.seq}: unreadable list of redacted entries")
    expected = 1
    for entry in entries:
        if entry.seq != expected:
            missing = f"{expected}" if entry.seq == expected + 1 else f"{expected} to {entry.seq - 1}"
            report.problems.append(f"entry {missing} missing (next is {entry.seq})")
        expected = entry.seq + 1
        if entry.prev_hash != prev:
            report.problems.append(f"entry {entry.seq}: does not follow the entry before it (removed or reordered)")
        if entry.redacted:
            if entry.seq not in redactions:
                report.problems.append(f"entry {entry.seq}: marked redacted but no erasure entry redacted it")
        elif content_hash(entry.salt, entry.subject, entry.details_json) != entry.content_hash:
            report.problems.append(f"entry {entry.seq}: subject or details changed")
        if entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.content_hash, entry.prev_hash) != entry.entry_hash:
            report.problems.append(f"entry {entry.seq}: time, actor, action or sequence changed")
        prev = entry.entry_hash
    if entries:
        report.head_seq, report.head_hash = entries[-1].seq, entries[-1].entry_hash
    if head is not None and head != (report.head_seq, report.head_hash):
        report.problems.append(f"the last entry is {report.head_seq} but the trail's head says {head[0]}: entries removed at the end")
    if head is None and entries:
        report.problems.append("the trail's head record is missing")
    return report
