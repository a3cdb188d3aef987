"""RecordingService against a real SQLite database and real files (no Asterisk)."""

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Any

from livecall_ari.gate.models import GateDecision
from livecall_ari.recording.models import NoticeEvent, Recording
from livecall_ari.recording.paths import RecordingsFolder
from livecall_ari.recording.services import PENDING_OBJECTIONS, RecordingService
from livecall_ari.storage import open_database
from tests.unit.test_recording_core import wav_bytes

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)


def service(tmp_path: Path, objections: list[tuple[str, str]]) -> RecordingService:
    open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    root = tmp_path / "asterisk"
    return RecordingService(
        folder=RecordingsFolder("/var/spool/asterisk/monitor/livecall", root),
        organisation="default",
        record_objection=lambda number, call_id, at: objections.append((number, call_id)),
        basis_for=lambda purpose: {"service": "contract"}.get(purpose, "legitimate_interests"),
        keep_until=lambda purpose, tags, basis, at: at.date() + dt.timedelta(days=90 if "training" in tags else 365),
        clock=lambda: NOW,
    )


def put(tmp_path: Path, call_id: str, seconds: float, age_s: float = 0) -> Path:
    path = tmp_path / "asterisk/var/spool/asterisk/monitor/livecall/2026/11/27" / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(seconds))
    if age_s:
        old = time.time() - age_s
        os.utime(path, (old, old))
    return path


def test_a_call_is_booked_from_start_to_finish(tmp_path: Path) -> None:
    svc = service(tmp_path, [])
    path = put(tmp_path, "c1", 2.5)
    svc.started("c1", "02079460018", "1002", "service", svc.folder.confine("/var/spool/asterisk/monitor/livecall/2026/11/27/c1.wav"))
    row = svc.finish("c1", settle_seconds=1)
    assert row is not None
    assert (row.state, row.duration_ms, row.size_bytes, row.lawful_basis) == ("complete", 2500, path.stat().st_size, "contract")
    assert str(row.retention_until) == "2027-11-27"
    assert [verdict for _, verdict in svc.verify()] == ["ok"]
    path.write_bytes(path.read_bytes()[:-2] + b"\x01\x02")
    assert [verdict for _, verdict in svc.verify()] == ["changed"]
    path.unlink()
    assert [verdict for _, verdict in svc.verify()] == ["missing"]


def test_the_decline_key_removes_every_file_of_the_call(tmp_path: Path) -> None:
    svc = service(tmp_path, [])
    mixed = put(tmp_path, "c2", 1)
    legs = [mixed.with_name("c2-in.wav"), mixed.with_name("c2-out.wav")]
    for leg in legs:
        leg.write_bytes(b"x")
    svc.started("c2", "02079460901", "1002", "service", svc.folder.confine("/var/spool/asterisk/monitor/livecall/2026/11/27/c2.wav"))
    svc.notice("c2", "02079460901", "livecall/notice", str(NOW.timestamp() - 3), "OK", "1", "1", "2")
    row = Recording.get(Recording.call_id == "c2")
    assert (row.state, row.file) == ("declined", None)
    assert not mixed.exists() and not any(leg.exists() for leg in legs)
    [notice] = NoticeEvent.select()
    assert (notice.outcome, notice.key_pressed, notice.duration_ms) == ("declined", "1", 3000)


def test_the_objection_key_lists_the_number(tmp_path: Path) -> None:
    listed: list[tuple[str, str]] = []
    svc = service(tmp_path, listed)
    svc.notice("c3", "02079460902", "livecall/notice", "", "OK", "2", "1", "2")
    assert listed == [("02079460902", "c3")]


def test_reconcile_books_what_nobody_reported(tmp_path: Path) -> None:
    listed: list[tuple[str, str]] = []
    svc = service(tmp_path, listed)
    GateDecision.create(call_id="c4", agent="1001", dialled="02079460018", number="+442079460018",
                        purpose="marketing", decision="allow", entry="stasis", decided_at=NOW)
    put(tmp_path, "c4", 1.5, age_s=3600)  # recorded while serve was down
    put(tmp_path, "c5", 1.0, age_s=10)  # still being written, perhaps: left for later
    spool = tmp_path / "asterisk/var/spool/asterisk/monitor/livecall" / PENDING_OBJECTIONS
    spool.write_text("c6 02079460902 1795000000\n")

    counts = svc.reconcile()

    assert counts == {"finished": 0, "registered": 1, "objections": 1}
    row = Recording.get(Recording.call_id == "c4")
    # The number as the gate decided it, E.164 (as any recording's), not as dialled.
    assert (row.agent, row.number, row.purpose, row.state, row.duration_ms) == ("1001", "+442079460018", "marketing", "complete", 1500)
    assert listed == [("02079460902", "c6")] and not spool.exists()
    assert svc.reconcile() == {"finished": 0, "registered": 0, "objections": 0}


def test_a_file_cut_short_by_a_full_disk_is_kept_as_incomplete_with_an_error(tmp_path: Path, caplog: Any) -> None:
    svc = service(tmp_path, [])
    put(tmp_path, "c7", 4.0)  # MixMonitor's writes failed after 4 s
    svc.started("c7", "02079460711", "1002", "service", svc.folder.confine("/var/spool/asterisk/monitor/livecall/2026/11/27/c7.wav"))
    svc.clock = lambda: NOW + dt.timedelta(seconds=19)  # the call ended 19 s after the recording began

    with caplog.at_level(logging.ERROR, logger="livecall.recording"):
        row = svc.finish("c7", settle_seconds=0.3)

    assert row is not None and (row.state, row.duration_ms) == ("incomplete", 4000)
    [line] = [r.getMessage() for r in caplog.records]
    assert "call c7 is cut short" in line and "4.0 s of audio for 19.0 s of recording" in line
    # The file is still there and its facts are true: verify leaves it alone, the portal plays it.
    assert row.sha256 and row.size_bytes == (tmp_path / "asterisk" / str(row.file).lstrip("/")).stat().st_size


def test_a_whole_file_booked_late_under_load_is_complete(tmp_path: Path) -> None:
    """The hangup's time is taken when Asterisk reports it, not when a busy worker gets to the
    books: a 4 s recording of a 4 s call booked 15 s later is whole."""
    svc = service(tmp_path, [])
    put(tmp_path, "c9", 4.0)
    svc.started("c9", "02079460711", "1002", "service", svc.folder.confine("/var/spool/asterisk/monitor/livecall/2026/11/27/c9.wav"))
    svc.clock = lambda: NOW + dt.timedelta(seconds=19)  # the worker runs the job late

    row = svc.finish("c9", settle_seconds=0.3, hung_up=NOW + dt.timedelta(seconds=4))

    assert row is not None and (row.state, row.duration_ms) == ("complete", 4000)


def test_reconcile_leaves_a_long_call_that_is_still_recording(tmp_path: Path) -> None:
    svc = service(tmp_path, [])
    path = put(tmp_path, "c8", 2.0)  # written just now
    svc.started("c8", "02079460018", "1001", "marketing", svc.folder.confine("/var/spool/asterisk/monitor/livecall/2026/11/27/c8.wav"))
    svc.clock = lambda: NOW + dt.timedelta(hours=1)  # the row is an hour old: a long call

    assert svc.reconcile()["finished"] == 0
    assert Recording.get(Recording.call_id == "c8").state == "recording"

    old = time.time() - 600  # the file has not been written for ten minutes: the call is over
    os.utime(path, (old, old))
    assert svc.reconcile()["finished"] == 1
    assert Recording.get(Recording.call_id == "c8").state == "complete"


def test_the_disk_alarm_names_the_free_space_and_the_setting(tmp_path: Path) -> None:
    svc = service(tmp_path, [])
    svc.min_free_bytes = 0
    assert svc.disk_alarm() is None
    svc.min_free_bytes = 2**62
    alarm = svc.disk_alarm()
    assert alarm is not None and "recordings disk is nearly full" in alarm and "[recording] min_free_mb" in alarm
