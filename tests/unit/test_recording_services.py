"""RecordingService against a real SQLite database and real files (no Asterisk)."""

import datetime as dt
import os
import time
from pathlib import Path

from livecall_ari.gate.models import GateDecision
from livecall_ari.recording.models import NoticeEvent, Recording
from livecall_ari.recording.services import PENDING_OBJECTIONS, RecordingService
from livecall_ari.storage import open_database
from tests.unit.test_recording_core import wav_bytes

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)


def service(tmp_path: Path, objections: list[tuple[str, str]]) -> RecordingService:
    open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    root = tmp_path / "asterisk"
    return RecordingService(
        host_path=lambda p: root / p.lstrip("/"),
        recordings_dir="/var/spool/asterisk/monitor/livecall",
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
    svc.started("c1", "02079460018", "1002", "service", "/var/spool/asterisk/monitor/livecall/2026/11/27/c1.wav")
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
    svc.started("c2", "02079460901", "1002", "service", "/var/spool/asterisk/monitor/livecall/2026/11/27/c2.wav")
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
    assert (row.agent, row.number, row.purpose, row.state, row.duration_ms) == ("1001", "02079460018", "marketing", "complete", 1500)
    assert listed == [("02079460902", "c6")] and not spool.exists()
    assert svc.reconcile() == {"finished": 0, "registered": 0, "objections": 0}
