"""Data protection adapters shared by the commands and ``livecall serve``: policies from the
settings, lawful-basis changes, the suppression screening consults, and the daily retention run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import peewee

from livecall_ari import config
from livecall_ari.storage.times import from_db, to_db
from livecall_ari.protection import audit
from livecall_ari.protection.core import (
    LAWFUL_BASES, LawfulBasisPolicy, PolicyError, RetentionPolicy, check_basis, key_fingerprint, keyed_hash,
)
from livecall_ari.protection.crypto import KeyFileError, erasure_key
from livecall_ari.protection.models import CallLawfulBasis, LawfulBasisChange, Suppression
from livecall_ari.screening.core import Objection, PermissionRecords, Consent, ScreeningLists

if TYPE_CHECKING:
    from livecall_ari.app import App

log = logging.getLogger("livecall.protection")
UTC = dt.timezone.utc


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _where(settings: config.Settings) -> str:
    return f"{settings.path}: " if settings.path is not None else ""


def basis_policy(settings: config.Settings) -> LawfulBasisPolicy:
    p = settings.protection
    try:
        return LawfulBasisPolicy.parse(p.lawful_bases, p.default_lawful_basis)
    except PolicyError as exc:
        raise config.ConfigError(f"{_where(settings)}{exc}") from None


def retention_policy(settings: config.Settings) -> RetentionPolicy:
    try:
        return RetentionPolicy.parse(settings.protection.retention)
    except PolicyError as exc:
        raise config.ConfigError(f"{_where(settings)}{exc}") from None


def number_key(settings: config.Settings) -> bytes:
    try:
        return erasure_key(settings)
    except KeyFileError as exc:
        raise config.ConfigError(str(exc)) from None


# Lawful basis -------------------------------------------------------------------------------


def call_basis(settings: config.Settings, call_id: str, purpose: str) -> tuple[str, str]:
    """A call's lawful basis and where it comes from (a recorded change, or the policy)."""
    row = CallLawfulBasis.get_or_none(CallLawfulBasis.call_id == call_id)
    if row is not None:
        return str(row.basis), f"changed by {row.set_by}: {row.reason}"
    return basis_policy(settings).basis_for(purpose), f"default for {purpose} calls"


def set_call_basis(settings: config.Settings, call_id: str, purpose: str, basis: str, reason: str, by: str, at: dt.datetime) -> str:
    """Change a call's lawful basis, keeping the old one, the reason and who, in history and audit."""
    new = check_basis(basis)
    if not reason.strip():
        raise PolicyError("a change of lawful basis needs a reason")
    old, _source = call_basis(settings, call_id, purpose)
    db = CallLawfulBasis._meta.database
    with db.atomic():
        CallLawfulBasis.insert(call_id=call_id, basis=new, reason=reason, set_by=by, set_at=to_db(at)).on_conflict(
            conflict_target=[CallLawfulBasis.call_id],
            update={CallLawfulBasis.basis: new, CallLawfulBasis.reason: reason, CallLawfulBasis.set_by: by,
                    CallLawfulBasis.set_at: to_db(at)},
        ).execute()
        LawfulBasisChange.create(kind="call", target=call_id, old_basis=old, new_basis=new, reason=reason,
                                 changed_by=by, changed_at=to_db(at))
        audit.append(by, "lawful_basis.change", audit.subject_for_call(call_id), {"from": old, "to": new, "reason": reason}, at=at)
    return old


def set_recording_basis(recording_id: int, basis: str, reason: str, by: str, at: dt.datetime) -> str:
    from livecall_ari.protection.registry import pk
    from livecall_ari.recording.models import Recording

    new = check_basis(basis)
    if not reason.strip():
        raise PolicyError("a change of lawful basis needs a reason")
    row = Recording.get_or_none(pk(Recording) == recording_id)
    if row is None:
        raise PolicyError(f"no recording {recording_id}")
    old = str(row.lawful_basis)
    with Recording._meta.database.atomic():
        Recording.update(lawful_basis=new, lawful_basis_reason=reason).where(pk(Recording) == recording_id).execute()
        LawfulBasisChange.create(kind="recording", target=str(recording_id), old_basis=old, new_basis=new,
                                 reason=reason, changed_by=by, changed_at=to_db(at))
        audit.append(by, "lawful_basis.change", audit.subject_for_recording(recording_id),
                     {"from": old, "to": new, "reason": reason}, at=at)
    return old


# Suppression: erased numbers stay blocked ---------------------------------------------------


@dataclass
class SuppressedRecords:
    """The organisation's records, with every erased number answering as an objection."""

    inner: PermissionRecords
    key: bytes
    hashes: dict[str, Suppression]

    def objection(self, organisation: str, number: int) -> Objection | None:
        found = self.inner.objection(organisation, number)
        if found is not None or not self.hashes:
            return found
        row = self.hashes.get(keyed_hash(self.key, f"+{number}"))
        if row is None:
            return None
        at = from_db(row.created_at)
        assert at is not None
        # A negative id says "suppressed by erasure job N" in the decision's evidence.
        return Objection(-int(row.job), organisation, number, at, "erasure", "number erased; kept suppressed")

    def consent(self, organisation: str, number: int) -> Consent | None:
        return self.inner.consent(organisation, number)


class SuppressionView:
    """Wraps screening's live view; re-reads the suppressions whenever that view is renewed
    (an erasure bumps screening's revision in the transaction that suppresses the number)."""

    def __init__(self, db: peewee.Database, key: bytes) -> None:
        self._db = db
        self._key = key
        self._source: ScreeningLists | None = None
        self._wrapped: ScreeningLists | None = None

    def apply(self, view: ScreeningLists) -> ScreeningLists:
        if view is not self._source or self._wrapped is None:
            rows = {str(r.number_hash): r for r in Suppression.select()}
            fingerprint = key_fingerprint(self._key)
            stale = sum(1 for r in rows.values() if r.key_fingerprint != fingerprint)
            if stale:
                raise config.ConfigError(
                    f"{stale} erased numbers were suppressed with another erasure key; restore the erasure key file "
                    "(marketing calls are refused until then)"
                )
            self._wrapped = ScreeningLists(view.tps, view.ctps, SuppressedRecords(view.records, self._key, rows))
            self._source = view
        return self._wrapped


def suppression_view(app: "App") -> SuppressionView:
    return SuppressionView(app.database(), number_key(app.settings))


# The daily retention run inside `livecall serve` --------------------------------------------


async def retention_loop(
    app: "App", stop: asyncio.Event, *, first_delay: float = 300.0, interval: float = 86400.0
) -> None:
    """Run retention ``first_delay`` seconds after start, then every ``interval`` seconds, until
    ``stop`` is set. A failed run is logged and tried again at the next interval."""
    from livecall_ari.protection.retention import run_retention

    delay = first_delay
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        except asyncio.TimeoutError:
            pass
        try:
            app.database()
            result = await asyncio.to_thread(run_retention, app, now(), dry_run=False, actor="livecall serve")
            log.info("retention run: %s deleted, %s held", result.deleted_counts(), result.held)
            # The daily report carries the audit trail's anchor, so a copy lives in the logs too.
            await asyncio.to_thread(audit_anchor_now)
        except Exception:
            log.exception("retention run failed; trying again in %s s", interval)
        delay = interval


def audit_anchor_now(only_if_grown: bool = False) -> None:
    """Append the audit trail's head to its anchor file (logged at INFO by the audit module)."""
    from livecall_ari.protection import audit

    audit.anchor(now(), only_if_grown=only_if_grown)


async def audit_anchor_loop(app: "App", stop: asyncio.Event) -> None:
    """Anchor the audit trail every ``[protection] audit_anchor_minutes`` while it grows."""
    interval = max(60, app.settings.protection.audit_anchor_minutes * 60)
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
            return
        except asyncio.TimeoutError:
            pass
        try:
            app.database()
            await asyncio.to_thread(audit_anchor_now, True)
        except Exception:
            log.exception("audit anchor failed; trying again in %s s", interval)


__all__ = ["LAWFUL_BASES", "audit_anchor_loop", "retention_loop", "SuppressionView", "suppression_view"]
