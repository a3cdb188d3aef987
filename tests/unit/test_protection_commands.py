"""Encryption at rest with real key files, the breach register, the privacy notice and the
lawful-basis change command."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from livecall_ari.app import App
from livecall_ari.protection import audit
from livecall_ari.protection.crypto import KeyFileError, KeyRing, encrypt_file, encrypt_stream, plaintext_chunks
from livecall_ari.protection.models import LawfulBasisChange
from livecall_ari.recording.models import Recording
from tests.unit.protection_data import ALICE, add_person, livecall, make_app


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path, 'dpo_name = "Dana Privacy"\ndpo_email = "dpo@acme.example"\nico_registration = "ZA123456"')
    yield application  # type: ignore[misc]
    application.close()


@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 4097, 3 * 4096 + 5])
def test_sealed_files_round_trip_in_chunks(tmp_path: Path, size: int) -> None:
    keys = KeyRing.load(tmp_path / "k.key", create=True)
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    path = tmp_path / "a.wav"
    data = os.urandom(size)
    path.write_bytes(data)
    encrypt_file(path, keys, chunk=4096)
    sealed = path.read_bytes()
    # A short plaintext can occur in random ciphertext by chance; from 16 bytes it cannot.
    assert data not in sealed or size < 16
    assert b"".join(plaintext_chunks(path, keys)) == data


def test_tampered_truncated_or_unkeyed_files_do_not_open(tmp_path: Path) -> None:
    keys = KeyRing.load(tmp_path / "k.key", create=True)
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(os.urandom(10000)), out, keys, chunk=4096)
    sealed = out.getvalue()
    flipped = bytearray(sealed)
    flipped[-100] ^= 1
    for name, payload in [("flipped", bytes(flipped)), ("cut", sealed[: len(sealed) - (10000 - 8192) - 16])]:
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(KeyFileError, match="does not decrypt"):
            b"".join(plaintext_chunks(tmp_path / name, keys))
    (tmp_path / "ok").write_bytes(sealed)
    with pytest.raises(KeyFileError, match="no recording key"):
        b"".join(plaintext_chunks(tmp_path / "ok", None))
    other = KeyRing.load(tmp_path / "other.key", create=True)
    with pytest.raises(KeyFileError, match="does not decrypt"):
        b"".join(plaintext_chunks(tmp_path / "ok", other))


def test_rotation_keeps_old_files_readable_and_open_key_files_are_refused(tmp_path: Path) -> None:
    keys = KeyRing.load(tmp_path / "k.key", create=True)
    old = tmp_path / "old.wav"
    old.write_bytes(b"old audio")
    encrypt_file(old, keys)
    assert keys.rotate() == "k2"
    reloaded = KeyRing.load(tmp_path / "k.key")
    assert reloaded.current == "k2" and b"".join(plaintext_chunks(old, reloaded)) == b"old audio"
    assert "k1" not in repr(reloaded) or "=" not in repr(reloaded).split("current=")[0]
    os.chmod(tmp_path / "k.key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        KeyRing.load(tmp_path / "k.key")
    with pytest.raises(KeyFileError, match="no key file"):
        KeyRing.load(tmp_path / "missing.key")


def test_encryption_commands_seal_recordings_and_never_print_keys(app: App, tmp_path: Path) -> None:
    person = add_person(app, tmp_path, ALICE, 1)
    init = livecall(tmp_path, "encryption", "init")
    assert init.returncode == 0 and "created" in init.stdout
    key_text = (tmp_path / "recording.key").read_text()
    secret = json.loads(key_text)["keys"]["k1"]
    sealed = livecall(tmp_path, "encryption", "seal", str(person.audio))
    assert sealed.returncode == 0 and "encrypted" in sealed.stdout
    assert secret not in init.stdout + init.stderr + sealed.stdout + sealed.stderr
    assert person.audio_bytes not in person.audio.read_bytes()
    assert Recording.get(Recording.call_id == person.call_id).encrypted
    assert "already encrypted" in livecall(tmp_path, "encryption", "seal", str(person.audio)).stdout


def test_breach_register_clock_and_report_draft(app: App, tmp_path: Path) -> None:
    added = livecall(tmp_path, "breach", "add", "--title", "Laptop stolen", "--nature", "An agent's laptop with 40 recordings",
                     "--aware-at", "2025-06-02T09:00", "--subjects", "40", "--records", "40", "--categories", "call recordings")
    assert added.returncode == 0 and "report to the ICO by 2025-06-05 08:00 UTC" in added.stdout
    listed = json.loads(livecall(tmp_path, "breach", "list", "--json").stdout)
    assert listed[0]["status"] == "overdue" and listed[0]["ico_deadline"].startswith("2025-06-05T08:00")
    draft = livecall(tmp_path, "breach", "show", "1").stdout
    for text in ("Laptop stolen", "Acme Windows Ltd", "ZA123456", "Dana Privacy", "Approximate number of people: 40",
                 "Reasons for reporting after 72 hours"):
        assert text in draft
    assert livecall(tmp_path, "breach", "reported", "1", "--at", "2025-06-04T10:00", "--reference", "ICO/1").returncode == 0
    assert json.loads(livecall(tmp_path, "breach", "list", "--json").stdout)[0]["status"] == "reported on time"
    missing = livecall(tmp_path, "breach", "show", "9")
    assert missing.returncode == 1 and "no breach 9" in missing.stderr
    assert [e.action for e in audit.entries()] == ["breach.add", "breach.reported"]


def test_privacy_notice_from_settings(app: App, tmp_path: Path) -> None:
    notice = livecall(tmp_path, "privacy-notice")
    assert notice.returncode == 0
    for text in ("Acme Windows Ltd", "We record calls from time to time for training and monitoring purposes",
                 "marketing calls: legitimate interests", "claims calls: consent", "recordings (training): 90 days",
                 "subject access", "dpo@acme.example", "ZA123456", "ico.org.uk"):
        assert text in notice.stdout, text
    (tmp_path / "livecall.toml").write_text('[protection]\nretention = ["recordings/x"]\n')
    bad = livecall(tmp_path, "privacy-notice")
    assert bad.returncode == 1 and "[protection] retention" in bad.stderr and "recordings/x" in bad.stderr


def test_lawful_basis_changes_are_recorded_with_a_reason(app: App, tmp_path: Path) -> None:
    person = add_person(app, tmp_path, ALICE, 1, purpose="service")
    assert f"call {person.call_id}: contract (default for service calls)" in livecall(tmp_path, "lawful-basis", "show", person.call_id).stdout
    changed = livecall(tmp_path, "lawful-basis", "set", person.call_id, "legal_obligation", "--reason", "FCA record keeping", "--by", "dpo")
    assert changed.returncode == 0 and "contract -> legal_obligation" in changed.stdout
    shown = livecall(tmp_path, "lawful-basis", "show", person.call_id).stdout
    assert "legal_obligation (changed by dpo: FCA record keeping)" in shown
    recording = livecall(tmp_path, "lawful-basis", "set", "--recording", str(person.recording_id), "consent", "--reason", "asked")
    assert recording.returncode == 0 and Recording.get(Recording.call_id == person.call_id).lawful_basis == "consent"
    assert [(c.kind, c.old_basis, c.new_basis) for c in LawfulBasisChange.select()] == [
        ("call", "contract", "legal_obligation"), ("recording", "legitimate_interests", "consent")]
    assert livecall(tmp_path, "lawful-basis", "set", person.call_id, "consent", "--reason", "").returncode == 1
    assert livecall(tmp_path, "lawful-basis", "set", person.call_id, "whim", "--reason", "x").returncode == 2
    assert livecall(tmp_path, "lawful-basis", "set", "nope", "consent", "--reason", "x").returncode == 1
    assert [e.action for e in audit.entries()][-2:] == ["lawful_basis.change", "lawful_basis.change"]
