"""Subject access exports on real data for two people: every kind of record of one, nothing of
the other; encrypted audio comes out decrypted; requests are listed with their deadline."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import peewee
import pytest

from livecall_ari.app import App
from livecall_ari.protection import audit
from livecall_ari.protection.crypto import encrypt_file, is_encrypted, recording_keys
from livecall_ari.protection.models import DsarRequest
from livecall_ari.protection.registry import number_forms
from livecall_ari.protection.services import set_call_basis
from livecall_ari.recording.models import Recording
from tests.unit.protection_data import ALICE, BOB, NOW, add_person, livecall, make_app


class MonitoringSession(peewee.Model):
    """A stand-in for supervision's table (not written yet): linked to calls by call_id only."""

    call_id = peewee.CharField()
    supervisor = peewee.CharField()
    mode = peewee.CharField()
    recording = peewee.CharField(null=True)

    class Meta:
        table_name = "supervision_sessions_test"


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path, "encrypt_recordings = true\ndpo_email = \"dpo@acme.example\"")
    yield application  # type: ignore[misc]
    application.close()


def test_an_export_holds_every_kind_of_record_and_nothing_about_anyone_else(app: App, tmp_path: Path) -> None:
    alice = add_person(app, tmp_path, ALICE, 1)
    bob = add_person(app, tmp_path, BOB, 2)
    db = app.database()
    db.bind([MonitoringSession])
    db.create_tables([MonitoringSession])
    monitor_alice, monitor_bob = tmp_path / "recordings/monitor-alice.wav", tmp_path / "recordings/monitor-bob.wav"
    monitor_alice.write_bytes(b"alice monitored")
    monitor_bob.write_bytes(b"bob monitored")
    MonitoringSession.create(call_id=alice.call_id, supervisor="sue", mode="listen", recording=str(monitor_alice))
    MonitoringSession.create(call_id=bob.call_id, supervisor="sam", mode="whisper", recording=str(monitor_bob))
    # What supervision appends for a session: subject the agent, the call in the details.
    audit.append("sue", "supervision.started", "agent:2001", {"call_id": alice.call_id, "mode": "listen"}, at=NOW)
    audit.append("sam", "supervision.started", "agent:2001", {"call_id": bob.call_id, "mode": "whisper"}, at=NOW)
    encrypt_file(alice.audio, recording_keys(app.settings, create=True))
    Recording.update(encrypted=True).where(Recording.call_id == alice.call_id).execute()
    assert is_encrypted(alice.audio)
    set_call_basis(app.settings, alice.call_id, "marketing", "consent", "consent given on the call", "dpo", NOW)
    audit.append("agent-ann", "recording.download", audit.subject_for_recording(bob.recording_id), {}, at=NOW)

    out = tmp_path / "export" / "alice.zip"
    result = livecall(tmp_path, "dsar", "export", "020 7946 0018", "--out", str(out), "--by", "dpo")
    assert result.returncode == 0, result.stderr

    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        contents = {name: zf.read(name) for name in names}
    assert manifest["subject_access_export"] == ALICE
    counts = manifest["counts"]
    for table in ("gate_decisions", "recordings", "recording_notices", "screening_objections", "screening_consents",
                  "cdr_records", "protection_dsar_requests"):
        assert counts[table] >= 1, table
    assert counts["linked/supervision_sessions_test"] == 1
    sessions = json.loads(contents["data/linked/supervision_sessions_test.json"])["rows"]
    assert [s["supervisor"] for s in sessions] == ["sue"]
    # What supervisors wrote about her recording (and only hers) comes with it.
    for table in ("portal_coaching_comments", "portal_scorecards"):
        linked = json.loads(contents[f"data/linked/{table}.json"])
        assert linked["linked_by"] == "recording" and [r["recording"] for r in linked["rows"]] == [alice.recording_id]
    calls = json.loads(contents["data/gate_decisions.json"])["rows"]
    assert calls[0]["lawful_basis"] == "consent" and "consent given on the call" in calls[0]["lawful_basis_source"]
    # The audio, decrypted, exactly as recorded; the manifest's hash is of the plaintext.
    audio_name = f"recordings/{alice.recording_id}-{alice.audio.name}"
    assert contents[audio_name] == alice.audio_bytes
    listed = {f["path"]: f for f in manifest["files"]}
    assert listed[audio_name]["sha256"] == hashlib.sha256(alice.audio_bytes).hexdigest()
    assert all(listed[n]["sha256"] == hashlib.sha256(contents[n]).hexdigest() for n in listed)
    # Who accessed her recording: Sue's playback, and the list changes about her number.
    log = json.loads(contents["access-log.json"])
    actions = [(e["actor"], e["action"]) for e in log]
    assert ("supervisor-sue", "recording.play") in actions and ("2001", "objection.add") in actions
    assert ("sue", "supervision.started") in actions and ("sam", "supervision.started") not in actions
    assert contents["recordings/linked/monitor-alice.wav"] == b"alice monitored"
    assert not any(b"bob monitored" in payload for payload in contents.values())
    assert all(e["subject"] != audit.subject_for_recording(bob.recording_id) for e in log)
    summary = contents["summary.html"].decode()
    assert "Acme Windows Ltd" in summary and "dpo@acme.example" in summary and "consent (UK GDPR art. 6(1)(a))" in summary
    # Nothing about Bob, in any form, anywhere in the zip.
    for name, payload in contents.items():
        assert not any(form.encode() in payload for form in number_forms(BOB)), name
        if not name.startswith("recordings/"):  # random audio bytes could spell anything
            assert b'"sam"' not in payload and b"agent-ann" not in payload, name
    # The export is logged and audited.
    request = DsarRequest.get()
    assert request.status == "exported" and request.export_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert audit.entries()[-1].action == "dsar.export"


def test_an_export_for_someone_unknown_is_empty_but_complete(app: App, tmp_path: Path) -> None:
    add_person(app, tmp_path, BOB, 2)
    out = tmp_path / "nobody.zip"
    assert livecall(tmp_path, "dsar", "export", "02079460055", "--out", str(out)).returncode == 0
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert "summary.html" in zf.namelist()
        assert not any(form.encode() in zf.read(n) for n in zf.namelist() for form in number_forms(BOB))
    assert manifest["counts"]["gate_decisions"] == 0 and manifest["counts"]["protection_dsar_requests"] == 1


def test_requests_are_listed_with_their_one_month_deadline(app: App, tmp_path: Path) -> None:
    logged = livecall(tmp_path, "dsar", "log", "02079460018", "--received", "2025-01-31T09:00")
    assert logged.returncode == 0 and "due 2025-02-28" in logged.stdout
    assert livecall(tmp_path, "dsar", "log", "02079460019", "--received", "2099-05-02T09:00").returncode == 0
    items = json.loads(livecall(tmp_path, "dsar", "list", "--json").stdout)
    assert [(i["number"], i["due_on"]) for i in items] == [(ALICE, "2025-02-28"), (BOB, "2099-06-02")]
    assert items[0]["status"] == "overdue" and items[1]["status"].startswith("open, ")
    text = livecall(tmp_path, "dsar", "list").stdout
    assert "overdue" in text and "due 2099-06-02" in text


def test_dsar_deadline_uses_the_london_day_of_receipt(app: App) -> None:
    from livecall_ari.protection.dsar import log_request

    late_evening_bst = dt.datetime(2025, 4, 30, 23, 30, tzinfo=dt.timezone.utc)  # 00:30 on 1 May in London
    row = log_request(app.settings, ALICE, late_evening_bst, "dpo")
    assert str(row.due_on) == "2025-06-02"  # 1 June is a Sunday


def test_erasure_removes_monitoring_recordings_of_the_calls(app: App, tmp_path: Path) -> None:
    from livecall_ari.protection.crypto import erasure_key
    from livecall_ari.protection.erasure import Erasure
    from livecall_ari.recording.paths import RecordingsFolder
    from livecall_ari.screening.services import list_files

    alice = add_person(app, tmp_path, ALICE, 1)
    db = app.database()
    db.bind([MonitoringSession])
    db.create_tables([MonitoringSession])
    monitor = tmp_path / "recordings/monitor-alice.wav"
    monitor.write_bytes(b"alice monitored")
    MonitoringSession.create(call_id=alice.call_id, supervisor="sue", mode="listen", recording=str(monitor))
    Erasure(db, erasure_key(app.settings), tmp_path / "certs", list_files(app).store, "dpo", "Acme",
            folder=RecordingsFolder.from_settings(app.settings)).run(ALICE, NOW)
    assert not monitor.exists()
    assert MonitoringSession.get().recording is None and MonitoringSession.get().supervisor == "sue"
