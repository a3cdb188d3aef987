"""Screening's database adapter: objections, consents and list versions, read and written.

Times are stored as naive UTC (SQLite has no time zone type) and handed back tz-aware. Every
write bumps the revision counter in its own transaction (see models.py) so the decider in
``livecall serve`` notices it on the next call.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Iterable, Iterator

import peewee

from livecall_ari.storage.times import from_db, to_db
from livecall_ari.protection import audit
from livecall_ari.screening.core import CONSENT, CONSENT_BASES, Consent, ListSnapshot, Objection
from livecall_ari.screening.models import ConsentRecord, ListVersion, ObjectionRecord, ScreeningState
from livecall_ari.screening.revision import RevisionFile

UTC = dt.timezone.utc


def _date(value: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


class ScreeningStore:
    """Reads and writes screening's tables through one peewee database."""

    def __init__(self, db: peewee.Database, signal: RevisionFile | None = None) -> None:
        self.db = db
        self.signal = signal

    @contextmanager
    def change(self) -> Iterator[int]:
        """A write transaction with a new revision; announced to deciders once committed."""
        with self.db.atomic():
            revision = self.bump()
            yield revision
        if self.signal is not None:
            self.signal.publish(revision)

    def bump(self) -> int:
        """Advance the revision counter (call inside a transaction) and return the new value."""
        ScreeningState.insert(id=1, revision=0).on_conflict_ignore().execute()
        ScreeningState.update(revision=ScreeningState.revision + 1).where(ScreeningState.id == 1).execute()
        return int(ScreeningState.get_by_id(1).revision)

    def revision(self) -> int:
        row = ScreeningState.get_or_none(ScreeningState.id == 1)
        return int(row.revision) if row else 0

    # Objections ---------------------------------------------------------------------------

    def add_objection(self, organisation: str, number: int, at: dt.datetime, by: str, reason: str) -> Objection:
        """Record an objection; it withdraws any consent in force for the number (given earlier)."""
        with self.change() as revision:
            existing = self._active_objection(organisation, number)
            if existing is not None:
                return _objection(existing)
            row = ObjectionRecord.create(
                organisation=organisation, number=number, recorded_at=to_db(at), recorded_by=by,
                reason=reason, revision=revision,
            )
            # Data protection hook (issue 7): every list change goes into the audit trail.
            audit.append(by, "objection.add", audit.subject_for_number(f"+{number}"),
                         {"organisation": organisation, "objection": row.id, "reason": reason}, at=at)
            ConsentRecord.update(
                withdrawn_at=to_db(at), withdrawn_by=by, withdrawal_reason=f"objection {row.id}", revision=revision
            ).where(
                (ConsentRecord.organisation == organisation)
                & (ConsentRecord.number == number)
                & ConsentRecord.withdrawn_at.is_null()
            ).execute()
            return _objection(row)

    def remove_objection(self, organisation: str, number: int, at: dt.datetime, by: str) -> int:
        """Take the number off the objection list (the row is kept, marked removed)."""
        with self.change() as revision:
            removed = int(
                ObjectionRecord.update(removed_at=to_db(at), removed_by=by, revision=revision)
                .where(
                    (ObjectionRecord.organisation == organisation)
                    & (ObjectionRecord.number == number)
                    & ObjectionRecord.removed_at.is_null()
                )
                .execute()
            )
            if removed:  # data protection hook (issue 7)
                audit.append(by, "objection.remove", audit.subject_for_number(f"+{number}"),
                             {"organisation": organisation}, at=at)
            return removed

    def _active_objection(self, organisation: str, number: int) -> ObjectionRecord | None:
        row: ObjectionRecord | None = (
            ObjectionRecord.select()
            .where(
                (ObjectionRecord.organisation == organisation)
                & (ObjectionRecord.number == number)
                & ObjectionRecord.removed_at.is_null()
            )
            .first()
        )
        return row

    def objections(self, organisation: str, number: int | None = None, include_removed: bool = False) -> list[ObjectionRecord]:
        query = ObjectionRecord.select().where(ObjectionRecord.organisation == organisation)
        if number is not None:
            query = query.where(ObjectionRecord.number == number)
        if not include_removed:
            query = query.where(ObjectionRecord.removed_at.is_null())
        return list(query.order_by(ObjectionRecord.id))

    def add_objections_bulk(self, organisation: str, numbers: Iterable[int], at: dt.datetime, by: str, reason: str) -> int:
        """Load many objections in one transaction (benchmarks, migrations from other systems)."""
        with self.change() as revision:
            rows = [
                {"organisation": organisation, "number": n, "recorded_at": to_db(at), "recorded_by": by,
                 "reason": reason, "revision": revision}
                for n in numbers
            ]
            for start in range(0, len(rows), 5000):
                ObjectionRecord.insert_many(rows[start:start + 5000]).execute()
            # Data protection hook (issue 7): one entry for the bulk load.
            audit.append(by, "objection.bulk_add", f"objections:{organisation}", {"count": len(rows), "reason": reason}, at=at)
            return len(rows)

    # Consents -----------------------------------------------------------------------------

    def add_consent(self, organisation: str, number: int, at: dt.datetime, by: str, evidence: str, scope: str,
                    basis: str = CONSENT) -> Consent:
        """Record a consent (or, with basis ``relationship``, an existing client relationship)."""
        if basis not in CONSENT_BASES:
            raise ValueError(f"consent basis {basis!r} is not one of {', '.join(CONSENT_BASES)}")
        with self.change() as revision:
            row = ConsentRecord.create(
                organisation=organisation, number=number, given_at=to_db(at), recorded_by=by,
                evidence=evidence, scope=scope, basis=basis, revision=revision,
            )
            # Data protection hook (issue 7).
            audit.append(by, "consent.add", audit.subject_for_number(f"+{number}"),
                         {"organisation": organisation, "consent": row.id, "scope": scope, "basis": basis,
                          "evidence": evidence}, at=at)
            return _consent(row)

    def withdraw_consent(self, organisation: str, number: int, at: dt.datetime, by: str, reason: str) -> int:
        with self.change() as revision:
            withdrawn = int(
                ConsentRecord.update(withdrawn_at=to_db(at), withdrawn_by=by, withdrawal_reason=reason, revision=revision)
                .where(
                    (ConsentRecord.organisation == organisation)
                    & (ConsentRecord.number == number)
                    & ConsentRecord.withdrawn_at.is_null()
                )
                .execute()
            )
            if withdrawn:  # data protection hook (issue 7)
                audit.append(by, "consent.withdraw", audit.subject_for_number(f"+{number}"),
                             {"organisation": organisation, "count": withdrawn, "reason": reason}, at=at)
            return withdrawn

    def consents(self, organisation: str, number: int | None = None) -> list[ConsentRecord]:
        query = ConsentRecord.select().where(ConsentRecord.organisation == organisation)
        if number is not None:
            query = query.where(ConsentRecord.number == number)
        return list(query.order_by(ConsentRecord.id))

    # Changes since a revision (the decider's incremental refresh) -------------------------

    def objections_since(self, revision: int) -> list[tuple[Objection, bool]]:
        """Objections changed after ``revision``, each with True when it is still in force."""
        rows = ObjectionRecord.select().where(ObjectionRecord.revision > revision).order_by(ObjectionRecord.id)
        return [(_objection(r), r.removed_at is None) for r in rows]

    def consents_since(self, revision: int) -> list[Consent]:
        rows = ConsentRecord.select().where(ConsentRecord.revision > revision).order_by(ConsentRecord.id)
        return [_consent(r) for r in rows]

    # List versions ------------------------------------------------------------------------

    def current_versions(self) -> dict[str, ListVersion]:
        """The newest version of each list, by name."""
        found: dict[str, ListVersion] = {}
        for name in ("tps", "ctps"):
            row = ListVersion.select().where(ListVersion.list_name == name).order_by(ListVersion.id.desc()).first()
            if row is not None:
                found[name] = row
        return found

    def versions(self, name: str) -> list[ListVersion]:
        return list(ListVersion.select().where(ListVersion.list_name == name).order_by(ListVersion.id))


def snapshot_of(row: ListVersion) -> ListSnapshot:
    return ListSnapshot(str(row.list_name), int(row.id), _date(row.snapshot_date), int(row.count), str(row.file_name))


def _objection(row: ObjectionRecord) -> Objection:
    at = from_db(row.recorded_at)
    assert at is not None
    return Objection(int(row.id), str(row.organisation), int(row.number), at, str(row.recorded_by), str(row.reason or ""))


def _consent(row: ConsentRecord) -> Consent:
    given = from_db(row.given_at)
    assert given is not None
    return Consent(
        int(row.id), str(row.organisation), int(row.number), given, str(row.recorded_by), str(row.evidence),
        str(row.scope), from_db(row.withdrawn_at), str(row.basis or CONSENT),
    )
