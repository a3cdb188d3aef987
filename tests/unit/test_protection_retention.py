"""Retention on real rows and files: exactly what is due goes, nothing under a legal hold does,
a dry run changes nothing, and the loop inside `livecall serve` runs it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from livecall_ari.app import App
from livecall_ari.gate.models import GateDecision
from livecall_ari.protection import audit
from livecall_ari.protection.models import RetentionRun
from livecall_ari.protection.retention import add_hold, run_retention
from livecall_ari.protection.services import retention_loop
from livecall_ari.recording.models import NoticeEvent, Recording
from livecall_ari.portal.models import CoachingComment, Scorecard
from tests.unit.protection_data import NOW, Person, add_person, livecall, make_app

DAY = dt.timedelta(days=1)


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path, 'retention = ["recordings/training=90", "recordings/*=365", '
                                     '"recordings/*/consent=30", "calls/*=400"]')
    yield application  # type: ignore[misc]
    application.close()


def people(app: App, tmp_path: Path) -> dict[str, Person]:
    """Relative to the real clock, since the commands run now."""
    NOW = dt.datetime.now(dt.timezone.utc)
    return {
        "training_old": add_person(app, tmp_path, "+442079460001", 1, started=NOW - 100 * DAY, tags="training"),
        "training_new": add_person(app, tmp_path, "+442079460002", 2, started=NOW - 80 * DAY, tags="training"),
        "marketing_old": add_person(app, tmp_path, "+442079460003", 3, started=NOW - 100 * DAY),
        "training_held": add_person(app, tmp_path, "+442079460004", 4, started=NOW - 100 * DAY, tags="training"),
        "ancient": add_person(app, tmp_path, "+442079460005", 5, started=NOW - 500 * DAY),
        "ancient_held": add_person(app, tmp_path, "+442079460006", 6, started=NOW - 500 * DAY),
    }


def state(person: Person) -> str:
    row = Recording.get_or_none(Recording.call_id == person.call_id)
    return "gone" if row is None else str(row.state)


def test_retention_deletes_exactly_what_is_due_and_nothing_held(app: App, tmp_path: Path) -> None:
    p = people(app, tmp_path)
    add_hold("number", "+442079460004", "complaint 7", "dpo", NOW)
    add_hold("call", p["ancient_held"].call_id, "claim 9", "dpo", NOW)

    dry = json.loads(livecall(tmp_path, "retention", "run", "--dry-run", "--json").stdout)
    assert dry["deleted"] == {"recordings": 2, "calls": 1} and dry["held"] == 3
    assert all(person.audio.exists() for person in p.values())
    assert RetentionRun.get().dry_run

    now = dt.datetime.now(dt.timezone.utc)
    result = run_retention(app, now, dry_run=False, actor="test")
    assert result.deleted_counts() == {"recordings": 2, "calls": 1}
    assert not p["training_old"].audio.exists() and state(p["training_old"]) == "deleted"
    assert not p["training_old"].audio.with_name(p["training_old"].audio.stem + "-in.wav").exists()
    assert p["training_new"].audio.exists() and state(p["training_new"]) == "complete"
    assert p["marketing_old"].audio.exists() and state(p["marketing_old"]) == "complete"  # 365 days
    assert p["training_held"].audio.exists() and state(p["training_held"]) == "complete"
    # The 500-day-old call: audio, decision, notice and recording row all gone.
    ancient = p["ancient"]
    assert state(ancient) == "gone" and not ancient.audio.exists()
    assert not GateDecision.select().where(GateDecision.call_id == ancient.call_id).exists()
    assert not NoticeEvent.select().where(NoticeEvent.call_id == ancient.call_id).exists()
    # Coaching comments and scorecards go with the call's recording row, not with its audio.
    for model in (CoachingComment, Scorecard):
        kept = {row.recording for row in model.select()}
        assert ancient.recording_id not in kept and p["training_old"].recording_id in kept and len(kept) == 5
    held = p["ancient_held"]
    assert held.audio.exists() and GateDecision.select().where(GateDecision.call_id == held.call_id).exists()
    # Every deletion is in the audit trail, and the trail still verifies.
    deletions = [e.subject for e in audit.entries() if e.action == "retention.delete"]
    assert sorted(deletions) == sorted([audit.subject_for_recording(p["training_old"].recording_id),
                                        audit.subject_for_recording(ancient.recording_id), audit.subject_for_call(ancient.call_id)])
    assert audit.verify().ok
    # A second run finds nothing more to do.
    assert run_retention(app, now, dry_run=False, actor="test").deleted_counts() == {"recordings": 0, "calls": 0}


def test_an_explicit_retention_date_and_a_lawful_basis_rule_apply(app: App, tmp_path: Path) -> None:
    keep = add_person(app, tmp_path, "+442079460007", 7, started=NOW - 100 * DAY, tags="training")
    consent = add_person(app, tmp_path, "+442079460008", 8, started=NOW - 40 * DAY)
    Recording.update(retention_until=(NOW + 10 * DAY).date()).where(Recording.call_id == keep.call_id).execute()
    Recording.update(lawful_basis="consent").where(Recording.call_id == consent.call_id).execute()
    run_retention(app, NOW, dry_run=False, actor="test")
    assert keep.audio.exists()  # its own date wins over the 90-day training rule
    assert not consent.audio.exists()  # recordings/*/consent=30 is more specific than recordings/*=365


def test_the_hold_commands(app: App, tmp_path: Path) -> None:
    added = livecall(tmp_path, "retention", "hold", "add", "number", "020 7946 0009", "--reason", "claim 3")
    assert added.returncode == 0 and "+442079460009" in added.stdout
    assert "claim 3" in livecall(tmp_path, "retention", "hold", "list").stdout
    assert livecall(tmp_path, "retention", "hold", "remove", "1").returncode == 0
    assert "claim 3" not in livecall(tmp_path, "retention", "hold", "list").stdout
    again = livecall(tmp_path, "retention", "hold", "remove", "1")
    assert again.returncode == 1 and "no legal hold 1 in force" in again.stderr
    assert livecall(tmp_path, "retention", "hold", "add", "call", "x", "--reason", " ").returncode == 1


def test_the_loop_runs_soon_after_start_and_stops(app: App, tmp_path: Path) -> None:
    old = add_person(app, tmp_path, "+442079460001", 1, started=dt.datetime.now(dt.timezone.utc) - 100 * DAY, tags="training")

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(retention_loop(app, stop, first_delay=0.01, interval=3600))
        for _ in range(200):
            if RetentionRun.select().count():
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    run = RetentionRun.get()
    assert not run.dry_run and run.actor == "livecall serve" and json.loads(run.deleted)["recordings"] == 1
    assert not old.audio.exists()
