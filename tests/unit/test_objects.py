"""Object storage's pure core and the uploader against the folder store, a real SQLite database
and real files (the S3 adapter against a real server: tests/integration/test_object_storage.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecall_ari.objects.core import Backlog, Fingerprinter, KeyRefused, Retry, object_key, upload_problem
from livecall_ari.objects.models import RecordingObject
from livecall_ari.objects.services import Uploader, backlog, delete_objects, object_of
from livecall_ari.objects.store import FolderStore, StoreError, StoreUnavailable, fingerprint_file
from livecall_ari.recording.models import Recording
from livecall_ari.recording.paths import RecordingsFolder
from livecall_ari.storage import open_database

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
DIR = "/var/spool/asterisk/monitor/livecall"


def s3_etag(data: bytes, part: int) -> str:
    """The ETag S3 answers for ``data`` sent in parts of ``part`` bytes (0: one PUT)."""
    if not part:
        return hashlib.md5(data).hexdigest()
    digests = [hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part)]
    return hashlib.md5(b"".join(digests)).hexdigest() + f"-{len(digests)}"


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 300), feed=st.integers(1, 97), threshold=st.integers(0, 200), part=st.integers(1, 64))
def test_the_fingerprint_is_the_etag_s3_computes_however_the_bytes_are_fed(size: int, feed: int, threshold: int, part: int) -> None:
    data = os.urandom(size)
    printer = Fingerprinter(size, threshold=threshold, part=part)
    # part_size never goes below S3's 5 MiB minimum: scale down for the property by feeding raw.
    printer.part_bytes = part if size > threshold else 0
    for i in range(0, size, feed):
        printer.feed(data[i:i + feed])
    result = printer.result()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == size
    assert result.etag == s3_etag(data, result.part_bytes)


def test_keys_carry_the_pbx_and_refuse_paths_outside_the_folder() -> None:
    assert object_key("pbx-b", DIR, f"{DIR}/2026/11/29/c1.wav") == "pbx-b/2026/11/29/c1.wav"
    for bad in ("/etc/shadow", f"{DIR}/../x.wav", DIR):
        with pytest.raises(KeyRefused, match="not under the recordings folder"):
            object_key("pbx-b", DIR, bad)


def test_a_stored_object_must_match_size_etag_and_checksum() -> None:
    printer = Fingerprinter(3)
    printer.feed(b"abc")
    sent = printer.result()
    assert upload_problem(sent, 3, f'"{sent.etag}"', sent.sha256) is None
    assert "holds 2 bytes" in str(upload_problem(sent, 2, sent.etag, sent.sha256))
    assert "ETag" in str(upload_problem(sent, 3, "0" * 32, sent.sha256))
    assert "SHA-256" in str(upload_problem(sent, 3, "", "f" * 64))


def test_retries_wait_longer_each_time_up_to_a_limit() -> None:
    retry = Retry(first=5, most=60)
    assert [retry.delay(n) for n in range(6)] == [0, 5, 10, 20, 40, 60]
    assert retry.next_try(2, NOW) == NOW + dt.timedelta(seconds=10)


def test_the_backlog_says_how_many_how_big_and_how_old() -> None:
    assert Backlog(0, 0, None).describe(NOW) == "no recording waiting to upload"
    waiting = Backlog(3, 4_500_000, NOW - dt.timedelta(minutes=45))
    assert waiting.describe(NOW) == "3 recording(s) waiting to upload (4.5 MB, the oldest ended 45 min ago)"
    assert waiting.stuck(NOW, dt.timedelta(minutes=30)) and not waiting.stuck(NOW, dt.timedelta(hours=1))


# -- the uploader ---------------------------------------------------------------------------

def recording(tmp_path: Path, call_id: str, data: bytes, legs: bool = False) -> Recording:
    path = tmp_path / f"asterisk{DIR}/2026/11/29/{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if legs:
        path.with_name(f"{call_id}-in.wav").write_bytes(data[:10])
        path.with_name(f"{call_id}-out.wav").write_bytes(data[10:])
    return Recording.create(call_id=call_id, agent="1001", number="+442079460018", purpose="service",
                            file=f"{DIR}/2026/11/29/{call_id}.wav", state="complete", started_at=NOW, ended_at=NOW,
                            size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def uploader(tmp_path: Path, store: Any = None) -> Uploader:
    open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    return Uploader(store or FolderStore(tmp_path / "bucket"), RecordingsFolder(DIR, tmp_path / "asterisk"), "pbx-a",
                    "folder", "bucket", clock=lambda: NOW)


def test_a_recording_and_its_legs_are_uploaded_verified_recorded_and_only_then_removed(tmp_path: Path) -> None:
    up = uploader(tmp_path)
    data = os.urandom(5000)
    row = recording(tmp_path, "c1", data, legs=True)
    assert backlog(up.folder).count == 1
    assert up.run_once() == {"uploaded": 1, "failed": 0, "refused": 0}
    assert not list((tmp_path / f"asterisk{DIR}/2026/11/29").iterdir())  # nothing left locally
    mixed = object_of(row.id)
    assert mixed is not None and (mixed.key, mixed.sha256, mixed.node) == ("pbx-a/2026/11/29/c1.wav", row.sha256, "pbx-a")
    assert b"".join(up.store.read(mixed.key)) == data
    assert b"".join(up.store.read(mixed.key, 100, 199)) == data[100:200]
    leg = object_of(row.id, "-in.wav")
    assert leg is not None and b"".join(up.store.read(leg.key)) == data[:10]
    assert backlog(up.folder).count == 0 and up.run_once()["uploaded"] == 0


def test_a_file_changed_since_it_was_finished_stays_local_with_an_error(tmp_path: Path, caplog: Any) -> None:
    up = uploader(tmp_path)
    row = recording(tmp_path, "c2", b"x" * 100)
    path = tmp_path / f"asterisk{row.file}"
    path.write_bytes(b"y" * 100)
    with caplog.at_level(logging.ERROR, "livecall.objects"):
        assert up.run_once()["refused"] == 1
    assert path.exists() and object_of(row.id) is None
    assert "no longer has the SHA-256" in caplog.text
    assert backlog(up.folder).count == 1  # still shown as waiting: it needs a person


def test_a_store_that_is_down_keeps_every_file_and_a_later_run_uploads_each_once(tmp_path: Path) -> None:
    mount = tmp_path / "mnt"
    up = uploader(tmp_path, FolderStore(mount / "bucket"))  # not mounted yet
    rows = [recording(tmp_path, f"c{i}", os.urandom(300)) for i in range(3)]
    with pytest.raises(StoreUnavailable):
        up.run_once()
    assert backlog(up.folder).count == 3
    assert all((tmp_path / f"asterisk{r.file}").exists() for r in rows)
    mount.mkdir()
    assert up.run_once()["uploaded"] == 3
    assert sorted(up.store.keys()) == [f"pbx-a/2026/11/29/c{i}.wav" for i in range(3)]
    assert RecordingObject.select().count() == 3


def test_an_object_already_in_the_store_is_recorded_not_sent_again(tmp_path: Path) -> None:
    sent: list[str] = []

    class Counting(FolderStore):
        def put(self, key: str, path: Path, fingerprint: Any) -> Any:
            sent.append(key)
            return super().put(key, path, fingerprint)

    up = uploader(tmp_path, Counting(tmp_path / "bucket"))
    (tmp_path / "bucket").mkdir()
    row = recording(tmp_path, "c3", os.urandom(400))
    local = tmp_path / f"asterisk{row.file}"
    # A previous run uploaded it and stopped before recording where it went.
    up.store.put("pbx-a/2026/11/29/c3.wav", local, fingerprint_file(local))
    sent.clear()
    assert up.run_once()["uploaded"] == 1
    assert sent == [] and object_of(row.id) is not None and not local.exists()


def test_a_recording_erased_while_it_uploads_leaves_no_object(tmp_path: Path) -> None:
    class Erasing(FolderStore):
        def put(self, key: str, path: Path, fingerprint: Any) -> Any:
            stored = super().put(key, path, fingerprint)
            Recording.delete().execute()  # erasure ran meanwhile (it deletes the local file too)
            return stored

    up = uploader(tmp_path, Erasing(tmp_path / "bucket"))
    (tmp_path / "bucket").mkdir()
    recording(tmp_path, "c4", os.urandom(50))
    assert up.run_once()["uploaded"] == 1  # counted as done: nothing left to upload
    assert list(up.store.keys()) == [] and RecordingObject.select().count() == 0


def test_deleting_a_recordings_objects_deletes_them_from_the_store_and_forgets_them(tmp_path: Path) -> None:
    up = uploader(tmp_path)
    row = recording(tmp_path, "c5", os.urandom(50), legs=True)
    up.run_once()
    assert len(list(up.store.keys())) == 3
    assert delete_objects(up.store, [row.id]) == 3
    assert list(up.store.keys()) == [] and RecordingObject.select().count() == 0
    other = recording(tmp_path, "c6", b"z" * 20)
    up.run_once()
    with pytest.raises(StoreError, match='backend is not "s3"'):  # fail closed: the object stays recorded
        delete_objects(None, [other.id])
    assert object_of(other.id) is not None


def test_another_pbxs_recordings_are_not_this_pbxs_backlog(tmp_path: Path) -> None:
    up = uploader(tmp_path)
    Recording.create(call_id="b1", agent="1001", number="+442079460018", purpose="service", file=f"{DIR}/2026/11/29/b1.wav",
                     state="complete", started_at=NOW, ended_at=NOW, size_bytes=10, sha256="0" * 64)
    assert backlog(up.folder).count == 0 and backlog().count == 1
    assert up.run_once() == {"uploaded": 0, "failed": 0, "refused": 0}


def test_files_of_another_format_beside_the_stored_object_are_never_uploaded(tmp_path: Path) -> None:
    up = uploader(tmp_path)
    data = os.urandom(300)
    folder = tmp_path / f"asterisk{DIR}/2026/11/29"
    folder.mkdir(parents=True)
    (folder / "c7.ogg").write_bytes(data)
    (folder / "c7-in.ogg").write_bytes(data[:100])
    (folder / "c7.wav").write_bytes(b"RIFF plain audio the pipeline has not removed yet")
    Recording.create(call_id="c7", agent="1001", number="+442079460018", purpose="service", file=f"{DIR}/2026/11/29/c7.ogg",
                     state="complete", started_at=NOW, ended_at=NOW, size_bytes=300, sha256=hashlib.sha256(data).hexdigest())
    assert up.run_once()["uploaded"] == 1
    assert sorted(up.store.keys()) == ["pbx-a/2026/11/29/c7-in.ogg", "pbx-a/2026/11/29/c7.ogg"]
    assert [p.name for p in folder.iterdir()] == ["c7.wav"]  # the pipeline's to remove


def test_a_store_that_goes_down_mid_upload_costs_no_recording_its_turn(tmp_path: Path) -> None:
    class Flaky(FolderStore):
        down = False

        def put(self, key: str, path: Path, fingerprint: Any) -> Any:
            if self.down:
                raise StoreUnavailable("the store went away")
            return super().put(key, path, fingerprint)

    store = Flaky(tmp_path / "bucket")
    up = uploader(tmp_path, store)
    rows = [recording(tmp_path, f"c{i}", os.urandom(100)) for i in range(2)]
    store.down = True
    for _ in range(5):
        with pytest.raises(StoreUnavailable):
            up.run_once()
    store.down = False
    assert up.run_once()["uploaded"] == 2  # at once: the clock has not moved
    assert [object_of(r.id) is not None for r in rows] == [True, True]


def test_the_upload_loop_says_once_that_the_store_is_down_and_once_that_it_is_back(tmp_path: Path, caplog: Any) -> None:
    import asyncio

    from livecall_ari.objects.plugin import upload_loop

    mount = tmp_path / "mnt"
    up = uploader(tmp_path, FolderStore(mount / "bucket"))
    row = recording(tmp_path, "c8", os.urandom(64))

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(upload_loop(up, stop, every=0.01, batch=5, retry=Retry(first=0.01, most=0.02)))
        for _ in range(300):
            await asyncio.sleep(0.01)
            if "unavailable" in caplog.text:
                break
        mount.mkdir()
        for _ in range(300):
            await asyncio.sleep(0.01)
            if object_of(row.id) is not None:
                break
        stop.set()
        await task

    with caplog.at_level(logging.INFO, "livecall.objects"):
        asyncio.run(run())
    assert object_of(row.id) is not None
    assert caplog.text.count("object store unavailable") == 1
    assert caplog.text.count("is reachable again") == 1


def test_admins_see_the_upload_backlog_on_every_page_and_agents_do_not(tmp_path: Path) -> None:
    import re

    import httpx

    from livecall_ari.portal.auth import Accounts
    from tests.unit.protection_data import make_app
    from tests.unit.test_portal_web import PASSWORD, login, run

    app = make_app(tmp_path)
    for name, role, ext in (("root", "admin", ""), ("bob", "agent", "1001")):
        Accounts().add(name, role, PASSWORD, ext)
    ended = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    Recording.create(call_id="w1", agent="1001", number="+442079460018", purpose="service", file=f"{DIR}/w1.ogg",
                     state="complete", started_at=ended, ended_at=ended, size_bytes=2_000_000, sha256="0" * 64)

    def page(user: str) -> str:
        async def steps(c: httpx.AsyncClient) -> str:
            await login(c, user)
            return (await c.get("/calls")).text

        return re.sub(r"\s+", " ", str(run(app, steps)))

    assert "Object storage" not in page("root")  # recordings kept locally: nothing to say
    app.settings.storage.backend = "s3"
    shown = page("root")
    assert "Object storage: 1 recording(s) waiting to upload (2.0 MB, the oldest ended 2 h ago)" in shown
    assert "backlog_alarm_minutes" in shown and 'class="notice error banner"' in shown  # waited over 30 min
    assert "Object storage" not in page("bob")
