"""Recording paths confined to the recordings folder (issue 13), with real files and symlinks in
a temp folder: a symlink inside the folder pointing at a file outside, ``..`` segments, absolute
paths elsewhere. Through the real services: recording-start over a real FastAGI socket and then a
declined notice, the catch-up, erasure, retention, the subject access export and the portal's
playback and download; none of them reads, seals or deletes the file outside."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from livecall_ari.app import App
from livecall_ari.protection.crypto import erasure_key
from livecall_ari.protection.erasure import Erasure
from livecall_ari.protection.retention import run_retention
from livecall_ari.recording.models import Recording
from livecall_ari.recording.paths import PathRefused, RecordingsFolder
from livecall_ari.recording.plugin import build_service
from livecall_ari.screening.services import list_files
from tests.unit.protection_data import ALICE, NOW, add_person, livecall, make_app
from tests.unit.test_fastagi_auth import SECRET, header, serve_requests, settings_file
from tests.unit.test_fuzz_portal import PASSWORD, client_for, log_in

SECRET_BYTES = b"the service user's private file"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file the service user can read and delete, outside the recordings folder."""
    path = tmp_path / "private" / "secret.wav"
    path.parent.mkdir()
    path.write_bytes(SECRET_BYTES)
    return path


def hostile_paths(recordings: Path, outside: Path) -> dict[str, str]:
    """Paths (as Asterisk would report them) that all lead to ``outside``."""
    day = recordings / "2025/06/02"
    day.mkdir(parents=True, exist_ok=True)
    (day / "planted.wav").symlink_to(outside)
    (recordings / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    return {
        "symlink inside": str(day / "planted.wav"),
        "symlinked folder": str(recordings / "linkdir" / outside.name),
        "dot-dot": f"{recordings}/2025/../../private/{outside.name}",
        "absolute elsewhere": str(outside),
        "relative": f"private/{outside.name}",
        "the folder itself": str(recordings),
    }


def test_confine_accepts_the_folder_and_refuses_everything_that_leads_out(tmp_path: Path, outside: Path) -> None:
    recordings = tmp_path / "recordings"
    folder = RecordingsFolder(str(recordings))
    for why, path in hostile_paths(recordings, outside).items():
        with pytest.raises(PathRefused):
            folder.confine(path)
        assert folder.locate(path, why) is None
    (recordings / "2025/06/02/ok.wav").write_bytes(b"RIFF")
    inside = folder.confine(f"{recordings}/2025/06/02/../02/ok.wav")
    assert inside.host == (recordings / "2025/06/02/ok.wav").resolve()
    with pytest.raises(PathRefused):
        folder.confine(f"{recordings}/x\x00.wav")


def test_through_a_chroot_the_folder_is_mapped_and_nothing_climbs_out_of_it(tmp_path: Path, outside: Path) -> None:
    chroot = tmp_path / "chroot"
    (chroot / "var/spool/asterisk/monitor/livecall/2025").mkdir(parents=True)
    (chroot / "var/spool/asterisk/monitor/livecall/2025/a.wav").write_bytes(b"RIFF")
    folder = RecordingsFolder("/var/spool/asterisk/monitor/livecall", chroot)
    assert folder.confine("/var/spool/asterisk/monitor/livecall/2025/a.wav").host == (
        chroot / "var/spool/asterisk/monitor/livecall/2025/a.wav").resolve()
    for path in ("/var/spool/asterisk/monitor/livecall/../../../../../private/secret.wav", "/etc/passwd",
                 "/var/spool/asterisk/monitor/other.wav"):
        with pytest.raises(PathRefused):
            folder.confine(path)


@pytest.fixture
def service_app(tmp_path: Path) -> Iterator[App]:
    from livecall_ari import config

    app = App(config.load(settings_file(tmp_path), environ={}))
    yield app
    app.close()


def test_recording_start_with_a_path_outside_books_nothing_and_a_decline_deletes_nothing(
        service_app: App, tmp_path: Path, outside: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = hostile_paths(tmp_path / "recordings", outside)
    requests = []
    for n, path in enumerate(paths.values()):
        call = f"c{n}"
        requests.append(header(f"recording-start?secret={SECRET}", [call, ALICE, "1003", "marketing", path]))
        requests.append(header(f"recording-notice?secret={SECRET}", [call, ALICE, "livecall/notice", "1700000000", "OK", "1"]))
    caplog.set_level(logging.ERROR, logger="livecall.recording")

    serve_requests(service_app, requests)

    assert outside.read_bytes() == SECRET_BYTES
    assert (tmp_path / "recordings/2025/06/02/planted.wav").is_symlink()
    service_app.database()
    assert Recording.select().count() == 0
    refused = [r.getMessage() for r in caplog.records if "recording-start" in r.getMessage()]
    assert len(refused) == len(paths) and all("refused to book the recording of call c" in m for m in refused)


def test_rows_and_files_that_lead_out_are_never_followed(service_app: App, tmp_path: Path, outside: Path) -> None:
    """A row from before the check (or an edited database) and a leg planted beside a real
    recording: the decline, the end of the call and the catch-up leave the outside file alone."""
    recordings = tmp_path / "recordings"
    paths = hostile_paths(recordings, outside)
    service_app.database()
    svc = build_service(service_app)
    for n, path in enumerate(paths.values()):
        Recording.create(call_id=f"old{n}", number=ALICE, agent="1003", purpose="marketing", file=path,
                         state="recording", started_at=NOW.replace(tzinfo=None))
    real = recordings / "2025/06/02/c9.wav"
    real.write_bytes(b"RIFF real recording")
    (recordings / "2025/06/02/c9-in.wav").symlink_to(outside)
    svc.started("c9", ALICE, "1003", "marketing", svc.folder.confine(str(real)))

    svc.declined("c9")
    for n in range(len(paths)):
        assert svc.finish(f"old{n}", settle_seconds=0).state == "missing"  # type: ignore[union-attr]
    svc.declined("old0")
    os.utime(recordings / "2025/06/02/planted.wav", (0, 0), follow_symlinks=False)
    svc.reconcile(older_than=dt.timedelta(0))

    assert outside.read_bytes() == SECRET_BYTES
    assert not real.exists() and (recordings / "2025/06/02/c9-in.wav").is_symlink()
    assert Recording.get(Recording.call_id == "c9").state == "declined"
    assert Recording.get_or_none(Recording.call_id == "planted") is None  # the catch-up booked no symlink


@pytest.fixture
def protected(tmp_path: Path, outside: Path) -> Iterator[tuple[App, Path]]:
    """Alice's recording row pointing (through a symlink planted in the folder) at the outside file."""
    app = make_app(tmp_path)
    alice = add_person(app, tmp_path, ALICE, 1)
    alice.audio.unlink()
    alice.audio.symlink_to(outside)
    yield app, alice.audio
    app.close()


def test_the_subject_access_export_does_not_read_a_file_outside(protected: tuple[App, Path], tmp_path: Path) -> None:
    out = tmp_path / "export.zip"
    result = livecall(tmp_path, "dsar", "export", ALICE, "--out", str(out), "--by", "dpo")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    assert not any(SECRET_BYTES in payload for payload in contents.values())
    assert json.loads(contents["manifest.json"])["recordings_without_audio"] == [1]
    assert "outside the recordings folder" in result.stderr


def test_the_portal_does_not_play_or_download_a_file_outside(protected: tuple[App, Path]) -> None:
    from livecall_ari.portal.auth import Accounts

    app, _ = protected
    Accounts().add("root", "admin", PASSWORD, "")
    with client_for(app) as client:
        log_in(client, "root")
        for url in ("/recordings/1/audio", "/recordings/1/download"):
            response = client.get(url)
            assert response.status_code == 404 and SECRET_BYTES not in response.content
        leg = client.get("/recordings/1/audio?leg=in")  # the real leg beside it still plays
        assert leg.status_code == 200 and leg.content.startswith(b"leg RIFF")


def test_erasure_and_retention_do_not_delete_a_file_outside(protected: tuple[App, Path], tmp_path: Path,
                                                            outside: Path) -> None:
    app, link = protected
    result = Erasure(app.database(), erasure_key(app.settings), tmp_path / "certs", list_files(app).store, "dpo", "Acme",
                     folder=RecordingsFolder.from_settings(app.settings)).run(ALICE, NOW)
    assert result.certificate["erased"]["recordings"]["files_refused"] == 1
    assert outside.read_bytes() == SECRET_BYTES
    # Retention, on a row of another call pointing at it.
    Recording.create(call_id="r1", number="+442079460019", agent="2001", purpose="marketing", file=str(link),
                     state="complete", started_at=dt.datetime(2020, 1, 1), retention_until=dt.date(2020, 2, 1))
    run_retention(app, NOW, dry_run=False, actor="test")
    assert Recording.get(Recording.call_id == "r1").state == "deleted"
    assert outside.read_bytes() == SECRET_BYTES
