"""Organisations sharing one database (each its own `[organisation] id`) are separate
controllers: a subject access export for one holds none of the other's rows about the same
number, an erasure or a retention run for one leaves the other's rows and audio alone, and
doctor says so. Real SQLite (or PostgreSQL), real files; the other organisation's rows are
written as its service writes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterator

import pytest

from livecall_ari.app import App
from livecall_ari.asterisk.checks import Check
from livecall_ari.charges.models import CdrRow
from livecall_ari.gate.models import GateDecision
from livecall_ari.portal.models import CoachingComment
from livecall_ari.protection import audit
from livecall_ari.protection.crypto import erasure_key
from livecall_ari.protection.dsar import gather
from livecall_ari.protection.models import AuditEntry
from livecall_ari.protection.erasure import Erasure
from livecall_ari.protection.retention import add_hold, organisations_check, run_retention
from livecall_ari.recording.models import NoticeEvent, Recording
from livecall_ari.recording.paths import RecordingsFolder
from livecall_ari.screening.models import ObjectionRecord
from livecall_ari.screening.services import list_files
from tests.unit.protection_data import ALICE, NOW, Person, add_person, make_app

OTHER = "other-org"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = make_app(tmp_path)
    yield application
    application.close()


def theirs(app: App, tmp_path: Path) -> Person:
    """A call of ALICE's made by the other organisation's service on the same database."""
    person = add_person(app, tmp_path, ALICE, 2, started=NOW + dt.timedelta(hours=1))
    GateDecision.update(organisation=OTHER).where(GateDecision.call_id == person.call_id).execute()
    Recording.update(organisation=OTHER).where(Recording.call_id == person.call_id).execute()
    list_files(app).store.add_objection(OTHER, int(ALICE[1:]), NOW, "3001", "asked the other organisation")
    audit.append("their-dpo", "dsar.log", audit.subject_for_number(ALICE), {"note": "their request"}, at=NOW)
    AuditEntry.update(organisation=OTHER).where(AuditEntry.actor.in_(["their-dpo", "3001"])).execute()
    return person


def unscreened_cdr(n: int) -> None:
    """A CDR of a call that never passed the gate: nothing says whose it is."""
    start = int(NOW.timestamp()) + n
    CdrRow.create(account="default", start_utc=start, record_key=100 + n, end_utc=start + 30, duration=30, billsec=25,
                  number=ALICE, number_class="uk_geographic", country="GB", uniqueid=f"u{n}", call_id="",
                  cdr_line="", source="Master.csv", line_no=100 + n)


def basis(call_id: str, purpose: str) -> tuple[str, str]:
    return "legitimate_interests", "test"


def test_a_subject_access_export_holds_only_this_organisations_rows(app: App, tmp_path: Path) -> None:
    ours = add_person(app, tmp_path, ALICE, 1)
    other = theirs(app, tmp_path)
    unscreened_cdr(1)
    data = gather(app.database(), ALICE, basis, "default")

    def column(table: str, name: str) -> list[object]:
        return sorted(str(r[name]) for r in data.tables[table][1])

    assert column("gate_decisions", "call_id") == [ours.call_id]
    assert [r["id"] for r in data.recordings] == [ours.recording_id]
    assert column("recording_notices", "call_id") == [ours.call_id]
    assert column("cdr_records", "call_id") == ["", ours.call_id]  # the unscreened call's CDR has no owner: kept
    assert column("screening_objections", "organisation") == ["default"]
    assert data.call_ids == [ours.call_id]
    assert [r["recording"] for r in data.linked["portal_coaching_comments"]] == [ours.recording_id]
    assert all(other.call_id not in str(entry) for entry in data.access_log)
    # This organisation's entries only: not "their-dpo"'s or "3001"'s, from the other's trail.
    assert {e["actor"] for e in data.access_log} == {"supervisor-sue", "2001"}

    # Without an organisation (one organisation's database, as before): everything about the number.
    everyone = gather(app.database(), ALICE, basis)
    assert sorted(str(r["call_id"]) for r in everyone.tables["gate_decisions"][1]) == sorted([ours.call_id, other.call_id])
    assert len(everyone.recordings) == 2


def test_an_erasure_leaves_the_other_organisations_rows_and_audio(app: App, tmp_path: Path) -> None:
    ours = add_person(app, tmp_path, ALICE, 1)
    other = theirs(app, tmp_path)
    # The other organisation's legal hold on the number does not stop this organisation's erasure.
    add_hold("number", ALICE, "their litigation", "their-dpo", NOW, OTHER)
    Erasure(app.database(), erasure_key(app.settings), tmp_path / "certs", list_files(app).store, "dpo", "Acme Windows Ltd",
            folder=RecordingsFolder.from_settings(app.settings), organisation_id="default").run(ALICE, NOW)

    assert not ours.audio.exists() and other.audio.read_bytes() == other.audio_bytes
    assert [r.call_id for r in Recording.select()] == [other.call_id]
    numbers = {r.call_id: r.number for r in GateDecision.select()}
    assert numbers[other.call_id] == ALICE and numbers[ours.call_id] != ALICE  # pseudonymised
    cdrs = {r.call_id: r.number for r in CdrRow.select()}
    assert cdrs[other.call_id] == ALICE and cdrs[ours.call_id] != ALICE
    assert [n.call_id for n in NoticeEvent.select()] == [other.call_id]
    assert [o.organisation for o in ObjectionRecord.select()] == [OTHER]
    [their_entry] = AuditEntry.select().where((AuditEntry.actor == "their-dpo") & (AuditEntry.action == "dsar.log"))
    assert not their_entry.redacted and ALICE in their_entry.subject
    comments = {c.recording: c.text for c in CoachingComment.select()}
    assert comments == {other.recording_id: "caller on 02079460018 asked for a callback"}


def test_retention_deletes_only_this_organisations_rows_by_its_rules(tmp_path: Path) -> None:
    app = make_app(tmp_path, 'retention = ["recordings/*=30", "calls/*=30"]')
    try:
        now = dt.datetime.now(dt.timezone.utc)
        ours = add_person(app, tmp_path, ALICE, 1, started=now - dt.timedelta(days=100))
        other = add_person(app, tmp_path, ALICE, 2, started=now - dt.timedelta(days=100))
        GateDecision.update(organisation=OTHER).where(GateDecision.call_id == other.call_id).execute()
        Recording.update(organisation=OTHER).where(Recording.call_id == other.call_id).execute()

        assert run_retention(app, now, dry_run=False, actor="test").deleted_counts() == {"recordings": 1, "calls": 1}
        assert not ours.audio.exists() and other.audio.read_bytes() == other.audio_bytes
        assert [r.call_id for r in GateDecision.select()] == [other.call_id]
        assert [(r.call_id, r.state) for r in Recording.select()] == [(other.call_id, "complete")]
    finally:
        app.close()


def test_doctor_says_whose_rows_these_tools_reach_and_warns_of_an_abandoned_organisation_id(app: App, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    assert organisations_check(app, now) == Check("organisations", True, "every call in the database is this organisation's ('default')")
    add_person(app, tmp_path, ALICE, 1, started=now)
    other = add_person(app, tmp_path, ALICE, 2, started=now - dt.timedelta(days=3))
    GateDecision.update(organisation=OTHER).where(GateDecision.call_id == other.call_id).execute()
    shared = organisations_check(app, now)
    assert shared.ok and not shared.warning
    assert shared.detail == ("the database also holds calls of 'other-org' (1 calls): retention, subject access and "
                             "erasure here reach only 'default''s")
    # Forty days later with no call of the other id: perhaps this installation's own old id.
    later = organisations_check(app, now + dt.timedelta(days=40))
    assert not later.ok and later.warning and "'other-org' had no call for 30 days" in later.detail
