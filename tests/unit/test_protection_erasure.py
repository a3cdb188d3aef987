"""Erasure on a real database and real recording files: nothing of the number is left in any
row or file, the other person's data is untouched, the number stays blocked for marketing, and
a run killed halfway is finished by the next one."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from livecall_ari.app import App
from livecall_ari.charges.models import CdrRow
from livecall_ari.gate.core import CallAttempt
from livecall_ari.gate.models import GateDecision
from livecall_ari.portal.models import CoachingComment, Scorecard
from livecall_ari.protection import audit
from livecall_ari.protection.crypto import erasure_key
from livecall_ari.protection.erasure import Erasure, ErasureRefused
from livecall_ari.protection.models import ErasureJob
from livecall_ari.protection.registry import number_forms
from livecall_ari.protection.retention import add_hold, release_hold
from livecall_ari.recording.models import Recording
from livecall_ari.recording.paths import RecordingsFolder
from livecall_ari.screening.lists import ListFiles
from livecall_ari.screening.services import build_decider, list_files
from tests.conftest import kill_when_paused
from tests.unit.protection_data import ALICE, BOB, NOW, add_person, cli_env, everything_mentioning, livecall, make_app

MONDAY_10 = dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path)
    yield application  # type: ignore[misc]
    application.close()


def fresh_lists(app: App, tmp_path: Path) -> None:
    files: ListFiles = list_files(app)
    for name in ("tps", "ctps"):
        path = tmp_path / f"{name}.txt"
        path.write_bytes(b"02079469999\r\n")
        files.import_file(name, path, delta=False, list_date=MONDAY_10.date(), now=MONDAY_10)


def marketing_call(number: str) -> CallAttempt:
    return CallAttempt("c9", "2001", number, "marketing", MONDAY_10, "+442079460000")


def eraser(app: App, tmp_path: Path) -> Erasure:
    return Erasure(app.database(), erasure_key(app.settings), tmp_path / "erasure-certificates",
                   list_files(app).store, "dpo", "Acme Windows Ltd", folder=RecordingsFolder.from_settings(app.settings))


def test_after_erasure_nothing_holds_the_number_and_it_stays_blocked(app: App, tmp_path: Path) -> None:
    fresh_lists(app, tmp_path)
    alice = add_person(app, tmp_path, ALICE, 1)
    bob = add_person(app, tmp_path, BOB, 2)
    decider = build_decider(app)  # a long-running decider, built before the erasure
    assert decider.decide(marketing_call("02079460018")).reasons == ("objection",)
    assert everything_mentioning(app, ALICE)  # the data is really there to start with

    result = eraser(app, tmp_path).run(ALICE, NOW)

    assert everything_mentioning(app, ALICE) == []
    assert not alice.audio.exists() and not alice.audio.with_name(alice.audio.stem + "-in.wav").exists()
    # Bob keeps everything: his audio, his rows, his objection.
    assert bob.audio.read_bytes() == bob.audio_bytes
    assert len(everything_mentioning(app, BOB)) >= 10
    # Accounts keep the charge, pseudonymised: class, duration and seconds billed unchanged.
    kept = CdrRow.get(CdrRow.call_id == alice.call_id)
    assert kept.number.startswith("erased:") and (kept.number_class, kept.duration, kept.billsec) == ("uk_geographic", 60, 55)
    assert kept.number in kept.cdr_line
    assert GateDecision.get(GateDecision.call_id == alice.call_id).number == kept.number
    assert Recording.select().where(Recording.call_id == alice.call_id).count() == 0
    # Coaching comments and scorecards about her recording went with it; Bob's stay.
    for model in (CoachingComment, Scorecard):
        assert [row.recording for row in model.select()] == [bob.recording_id]
    assert result.certificate["erased"]["recordings"].get("portal_coaching_comments_deleted") == 1
    # Still blocked, by the old decider and a new one, as an objection; Bob's objection is his own.
    for d in (decider, build_decider(app)):
        decision = d.decide(marketing_call("020 7946 0018"))
        assert not decision.allowed and decision.reasons == ("objection",)
    assert int(decision.evidence["objection_id"]) < 0  # the new decider: suppressed by the erasure job
    assert build_decider(app).decide(CallAttempt("c", "2001", ALICE, "service", MONDAY_10)).allowed
    # The certificate says what, when and how much, and never the number.
    certificate = result.certificate
    text = result.certificate_file.read_text()
    assert not any(form in text for form in number_forms(ALICE))
    assert certificate["erased"]["recordings"] == {"recordings": 1, "files_deleted": 2, "bytes_deleted": 2 * len(alice.audio_bytes) + 4,
                                                   "files_already_gone": 0, "portal_coaching_comments_deleted": 1,
                                                   "portal_scorecards_deleted": 1}
    assert certificate["erased"]["rows"]["screening_objections_deleted"] == 1
    assert certificate["erased"]["rows"]["cdr_records_pseudonymised"] == 1
    assert certificate["erased"]["audit"]["audit_entries_redacted"] >= 2
    assert len(certificate["request_sha256"]) == 64 and certificate["completed_at"].startswith("2025-06-02")
    # The audit trail still verifies with Alice's entries redacted, and records the erasure.
    report = audit.verify()
    assert report.ok, report.problems
    assert [e.action for e in audit.entries()][-2:] == ["erasure.redact", "erasure.complete"]


def test_the_database_file_itself_keeps_no_copy(app: App, tmp_path: Path) -> None:
    add_person(app, tmp_path, ALICE, 1)
    add_person(app, tmp_path, BOB, 2)
    eraser(app, tmp_path).run(ALICE, NOW)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("livecall.db*"))
    assert b"+442079460019" in raw  # Bob is still there, so the search can find numbers
    assert not any(form.encode() in raw for form in number_forms(ALICE))


def test_erasure_is_idempotent_and_a_second_pass_sweeps_new_records(app: App, tmp_path: Path) -> None:
    add_person(app, tmp_path, ALICE, 1)
    first = eraser(app, tmp_path).run(ALICE, NOW)
    # A blocked attempt after the erasure is recorded by the gate; erasing again sweeps it.
    GateDecision.create(call_id="later", agent="2001", dialled="02079460018", number=ALICE, purpose="marketing",
                        decision="block", reasons="objection", entry="stasis", decided_at=NOW.replace(tzinfo=None))
    second = eraser(app, tmp_path).run(ALICE, NOW + dt.timedelta(days=1))
    assert second.job == first.job and ErasureJob.select().count() == 1
    assert second.certificate["erased"]["rows"]["gate_decisions_pseudonymised"] == 2
    assert second.certificate["erased"]["recordings"]["recordings"] == 1  # cumulative; nothing new
    assert everything_mentioning(app, ALICE) == []
    assert audit.verify().ok


def test_a_legal_hold_refuses_erasure_until_released(app: App, tmp_path: Path) -> None:
    alice = add_person(app, tmp_path, ALICE, 1)
    hold = add_hold("call", alice.call_id, "claim 42", "dpo", NOW)
    with pytest.raises(ErasureRefused, match="claim 42"):
        eraser(app, tmp_path).run(ALICE, NOW)
    assert alice.audio.exists() and ErasureJob.select().count() == 0
    release_hold(int(hold.id), "dpo", NOW)
    eraser(app, tmp_path).run(ALICE, NOW)
    assert not alice.audio.exists()


@pytest.mark.parametrize("stage", ["recordings:files-deleted", "rows:before", "audit:before"])
def test_an_erasure_killed_halfway_is_finished_by_the_next_run(app: App, tmp_path: Path, stage: str) -> None:
    fresh_lists(app, tmp_path)
    alice = add_person(app, tmp_path, ALICE, 1)
    add_person(app, tmp_path, BOB, 2)
    kill_when_paused(["erase", "--yes", "--by", "dpo", ALICE], cli_env(tmp_path, LIVECALL_ERASURE_PAUSE_AT=stage), stage)
    job = ErasureJob.get()
    assert job.state == "running"
    # Killed after the suppression committed: the number is blocked already.
    assert build_decider(app).decide(marketing_call("02079460018")).reasons == ("objection",)
    if stage == "recordings:files-deleted":
        assert not alice.audio.exists()  # the files went, the transaction with the rows did not
        assert Recording.select().where(Recording.number == ALICE).count() == 1
    assert everything_mentioning(app, ALICE)  # half done

    rerun = livecall(tmp_path, "erase", "--yes", "--by", "dpo", "020 7946 0018")
    assert rerun.returncode == 0, rerun.stderr
    assert "(resumed)" in rerun.stdout and "certificate:" in rerun.stdout
    assert everything_mentioning(app, ALICE) == []
    assert ErasureJob.get().state == "done"
    certificate = json.loads(Path(ErasureJob.get().certificate).read_text())
    if stage == "recordings:files-deleted":
        assert certificate["erased"]["recordings"]["files_already_gone"] == 1
    assert certificate["erased"]["rows"]["screening_consents_deleted"] == 1
    assert audit.verify().ok
    assert len(everything_mentioning(app, BOB)) >= 10
    assert livecall(tmp_path, "audit", "verify").returncode == 0


def test_erase_command_reports_an_invalid_number(tmp_path: Path) -> None:
    make_app(tmp_path).close()
    result = livecall(tmp_path, "erase", "--yes", "not-a-number")
    assert result.returncode == 2 and "not a valid telephone number" in result.stderr


def test_a_lost_erasure_key_refuses_marketing_calls_instead_of_forgetting(app: App, tmp_path: Path) -> None:
    from livecall_ari import config

    fresh_lists(app, tmp_path)
    add_person(app, tmp_path, ALICE, 1)
    eraser(app, tmp_path).run(ALICE, NOW)
    (tmp_path / "erasure.key").unlink()  # lost: a new key would hash the number differently
    decider = build_decider(app)
    with pytest.raises(config.ConfigError, match="restore the erasure key file"):
        decider.decide(marketing_call("02079460018"))
