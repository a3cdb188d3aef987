"""The audit trail: append-only, each entry chained to the one before by hash (see core.py).

Every capability calls ``append(actor, action, subject, details)`` once the database is open
(``App.database()`` binds the models): for every playback or download of a recording, list
change, monitoring session, export, erasure and retention deletion. Subjects follow one
convention so a subject access export can find them: ``recording:<id>``, ``call:<call id>``,
``number:<E.164>`` (see the ``subject_*`` helpers). ``livecall audit verify`` re-walks the chain.

Appends are serialised by a write lock on SQLite (``BEGIN IMMEDIATE``) and by the unique
sequence number everywhere else, so two processes never fork the chain.

Once :func:`configure` has been given the audit key (``App.database()`` does it), every entry and
the head carry a keyed MAC, and :func:`anchor` appends the head to the anchor file outside the
database (anchors.py says why); :func:`verify` checks both.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import peewee

from livecall_ari.protection.core import (
    GENESIS, ChainEntry, ChainReport, canonical, content_hash, entry_hash, verify_chain,
)
from livecall_ari.protection.anchors import Anchor, check_anchors, check_macs, entry_mac, head_mac, keyed_from, parse_anchors
from livecall_ari.protection.models import AuditEntry, AuditHead
from livecall_ari.protection.registry import of_organisation

UTC = dt.timezone.utc
REDACTED = "[erased]"
log = logging.getLogger("livecall.audit")


@dataclass(frozen=True)
class AuditSeal:
    """The audit key (from its key file, never in the database) and the anchor file."""

    key: bytes
    anchor_file: Path

    def __repr__(self) -> str:
        return f"AuditSeal(anchor_file={self.anchor_file})"


# The seal of the database the models are bound to (App.database() binds both, once).
_seal: AuditSeal | None = None
_sealed_db: object = None
# The organisation new entries are written for (the portal shows each organisation its own).
_organisation = ""


def configure(seal: AuditSeal | None, db: object = None, *, new_key: bool = False, organisation: str = "") -> None:
    """Seal new entries with ``seal``'s key from now on, marked as ``organisation``'s. When the key
    was just made, a "keyed" anchor records the head, so verify knows which entries predate it
    (only then: a missing record later is a sign of tampering, never quietly written again)."""
    global _seal, _sealed_db, _organisation
    _seal, _sealed_db, _organisation = seal, db, organisation
    if seal is not None and new_key:
        _append_anchor(seal, "keyed", dt.datetime.now(UTC))


def release(db: object) -> None:
    """Forget the seal set for ``db`` (its App is closing)."""
    if _sealed_db is db:
        configure(None)


def subject_for_recording(recording_id: int | str) -> str:
    return f"recording:{recording_id}"


def subject_for_call(call_id: str) -> str:
    return f"call:{call_id}"


def subject_for_number(e164: str) -> str:
    return f"number:{e164}"


def _database() -> peewee.Database:
    db: peewee.Database | None = AuditEntry._meta.database
    if db is None:
        raise RuntimeError("the audit trail needs the database opened first (App.database())")
    return db


def _write_lock(db: peewee.Database) -> Any:
    if isinstance(db, peewee.SqliteDatabase) and not db.in_transaction():
        return db.atomic(lock_type="IMMEDIATE")
    return db.atomic()


def append(
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    *,
    at: dt.datetime | None = None,
) -> None:
    """Append one entry to the tamper-evident audit trail."""
    append_entry(actor, action, subject, details, at=at)


def append_entry(
    actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None, *, at: dt.datetime | None = None
) -> ChainEntry:
    """As :func:`append`, returning the entry written (its sequence number and hashes)."""
    when = at or dt.datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("audit times must carry a time zone")
    stamp = when.astimezone(UTC).isoformat(timespec="microseconds")
    details_json = canonical(dict(details or {}))
    salt = secrets.token_hex(16)
    content = content_hash(salt, subject, details_json)
    seal = _seal
    db = _database()
    for attempt in range(5):
        try:
            with _write_lock(db):
                head = AuditHead.get_or_none(AuditHead.id == 1)
                seq, prev = (int(head.seq) + 1, str(head.entry_hash)) if head else (1, GENESIS)
                digest = entry_hash(seq, stamp, actor, action, content, prev)
                mac = entry_mac(seal.key, digest) if seal else ""
                top = head_mac(seal.key, seq, digest) if seal else ""
                AuditEntry.create(
                    seq=seq, at=stamp, actor=actor, action=action, subject=subject, details=details_json,
                    salt=salt, content_hash=content, prev_hash=prev, entry_hash=digest, mac=mac, organisation=_organisation,
                )
                AuditHead.insert(id=1, seq=seq, entry_hash=digest, mac=top).on_conflict(
                    conflict_target=[AuditHead.id],
                    update={AuditHead.seq: seq, AuditHead.entry_hash: digest, AuditHead.mac: top},
                ).execute()
                return ChainEntry(seq, stamp, actor, action, subject, details_json, salt, content, prev, digest, False, mac)
        except peewee.IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _entry(row: AuditEntry) -> ChainEntry:
    return ChainEntry(
        int(row.seq), str(row.at), str(row.actor), str(row.action), str(row.subject), str(row.details),
        str(row.salt), str(row.content_hash), str(row.prev_hash), str(row.entry_hash), bool(row.redacted),
        str(row.mac or ""),
    )


def entries(after: int = 0, limit: int | None = None) -> list[ChainEntry]:
    query = AuditEntry.select().where(AuditEntry.seq > after).order_by(AuditEntry.seq)
    if limit is not None:
        query = query.limit(limit)
    return [_entry(r) for r in query]


def verify() -> ChainReport:
    """Walk the whole trail; the report lists every problem found: the hash chain always, and
    with the audit key configured, every MAC and the newest anchor too."""
    head = AuditHead.get_or_none(AuditHead.id == 1)
    found = entries()
    report = verify_chain(found, (int(head.seq), str(head.entry_hash)) if head else None)
    seal = _seal
    if seal is None:
        return report
    anchors, problems = _read_anchors(seal)
    first = keyed_from(anchors)
    if first is None:
        problems.append(f"{seal.anchor_file}: no record of when the audit key was first used (the anchor file was "
                        "removed or cut); every MAC present is checked")
        first = min((e.seq for e in found if e.mac), default=1)
    problems += check_macs(found, {e.seq: e.mac for e in found}, (int(head.seq), str(head.entry_hash), str(head.mac or ""))
                           if head else None, seal.key, first)
    problems += check_anchors(found, anchors)
    report.problems.extend(problems)
    report.anchors = len(anchors)
    return report


def _read_anchors(seal: AuditSeal) -> tuple[list[Anchor], list[str]]:
    try:
        lines = seal.anchor_file.read_text().splitlines()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{seal.anchor_file}: cannot read it ({exc.strerror})"]
    return parse_anchors(lines, seal.key, str(seal.anchor_file))


def _append_anchor(seal: AuditSeal, kind: str, now: dt.datetime) -> Anchor:
    head = AuditHead.get_or_none(AuditHead.id == 1)
    seq, digest = (int(head.seq), str(head.entry_hash)) if head else (0, GENESIS)
    made = Anchor(kind, now.astimezone(UTC).isoformat(timespec="seconds"), seq, digest).sealed(seal.key)
    from livecall_ari.storage.private import private_dir

    private_dir(seal.anchor_file.parent)
    # Appended, never rewritten; private like every file LiveCall writes.
    fd = os.open(seal.anchor_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (made.line() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("audit anchor: %s", made.line())
    return made


def anchor(now: dt.datetime | None = None, *, only_if_grown: bool = False) -> Anchor | None:
    """Append the head to the anchor file (None when no key is configured, or when
    ``only_if_grown`` and the trail has not grown since the newest anchor)."""
    seal = _seal
    if seal is None:
        return None
    if only_if_grown:
        head = AuditHead.get_or_none(AuditHead.id == 1)
        anchors, _ = _read_anchors(seal)
        if anchors and max(a.seq for a in anchors) >= (int(head.seq) if head else 0):
            return None
    return _append_anchor(seal, "anchor", now or dt.datetime.now(UTC))


def _mentions(texts: Iterable[str]) -> peewee.Expression | None:
    condition: peewee.Expression | None = None
    for text in texts:
        clause = AuditEntry.subject.contains(text) | AuditEntry.details.contains(text)
        condition = clause if condition is None else (condition | clause)
    return condition


def entries_about(subjects: Iterable[str], texts: Iterable[str], organisation: str | None = None) -> list[ChainEntry]:
    """Entries whose subject is one of ``subjects`` or that mention one of ``texts``; with
    ``organisation``, only those its services wrote (or from before the column, ``""``)."""
    subject_list = list(subjects)
    condition = _mentions(texts)
    if subject_list:
        by_subject = AuditEntry.subject.in_(subject_list)
        condition = by_subject if condition is None else (condition | by_subject)
    if condition is None:
        return []
    condition = condition & of_organisation(AuditEntry.organisation, organisation)
    query = AuditEntry.select().where(condition & (AuditEntry.redacted == False)).order_by(AuditEntry.seq)  # noqa: E712
    return [_entry(r) for r in query]


def redact_mentions(texts: Iterable[str], actor: str, details: Mapping[str, Any],
                    organisation: str | None = None) -> list[int]:
    """Blank the subject and details (and the salt) of entries that mention any of ``texts``
    (with ``organisation``, only entries its services wrote or from before the column).

    The content hash stays, so the chain still verifies; in the same transaction an
    ``erasure.redact`` entry names the sequence numbers blanked, which is what verify accepts.
    """
    condition = _mentions(texts)
    if condition is None:
        return []
    condition = condition & of_organisation(AuditEntry.organisation, organisation)
    db = _database()
    with _write_lock(db):
        seqs = [int(r.seq) for r in AuditEntry.select(AuditEntry.seq).where(condition & (AuditEntry.redacted == False))]  # noqa: E712
        if seqs:
            AuditEntry.update(subject=REDACTED, details=json.dumps(REDACTED), salt="", redacted=True).where(
                AuditEntry.seq.in_(seqs)
            ).execute()
            append_entry(actor, "erasure.redact", "audit", {**details, "redacted_seqs": seqs})
    return seqs


def as_dict(entry: ChainEntry) -> dict[str, Any]:
    details: Any = json.loads(entry.details_json)
    return {"seq": entry.seq, "at": entry.at, "actor": entry.actor, "action": entry.action,
            "subject": entry.subject, "details": details, "entry_hash": entry.entry_hash}
