"""Compact recordings (issue 18): the stored object is Opus in Ogg made by the real opusenc,
sealed when encryption is on, verified before the WAV goes; a crash anywhere loses nothing.
Real files, a real SQLite database and the real encoder; no Asterisk."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import stat
import subprocess
import sys
import time
import tomllib
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from livecall_ari.protection.crypto import MAGIC, KeyRing, plaintext_chunks
from livecall_ari.recording.compact import (
    CompactError, Compactor, OpusEncoder, content_type, durations_agree, ogg_opus_duration_ms, stored_name,
)
from livecall_ari.recording.models import Recording
from tests.unit.test_recording_services import NOW, service

RATE = 8000
DIR = "/var/spool/asterisk/monitor/livecall/2026/11/27"


def speechlike(seconds: float, seed: int = 7) -> np.ndarray:
    """Syllable-like bursts: voiced harmonics under a 4 Hz envelope with pauses, like speech's
    energy contour (what the envelope comparison looks at)."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / RATE) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (rng.random(len(t) // 2000 + 1).repeat(2000)[:len(t)] > 0.3)
    return (6000 * voiced * envelope).astype(np.int16)


def wav_of(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def decoded(ogg: bytes, tmp_path: Path) -> np.ndarray:
    """What a player hears: opusdec's output at 8 kHz."""
    src, out = tmp_path / "decode.ogg", tmp_path / "decoded.wav"
    src.write_bytes(ogg)
    subprocess.run(["opusdec", "--quiet", "--rate", str(RATE), str(src), str(out)], check=True, timeout=60)
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def envelope(x: np.ndarray, window_ms: int = 50) -> np.ndarray:
    n = RATE * window_ms // 1000
    usable = len(x) // n * n
    return np.sqrt(np.mean(x[:usable].astype(np.float64).reshape(-1, n) ** 2, axis=1))


def keys(tmp_path: Path) -> KeyRing:
    return KeyRing.load(tmp_path / "keys" / "recording.key", create=True)


def put_wav(tmp_path: Path, name: str, samples: np.ndarray) -> Path:
    path = tmp_path / "asterisk" / DIR.lstrip("/") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_of(samples))
    return path


def test_the_stored_object_is_opus_at_least_8x_smaller_and_sounds_like_the_wav(tmp_path: Path) -> None:
    speech = speechlike(30)
    wav = put_wav(tmp_path, "c1.wav", speech)

    stored = Compactor(OpusEncoder(12)).finalise(wav, f"{DIR}/c1.wav", 30_000)

    data = stored.path.read_bytes()
    assert stored.path == wav.with_name("c1.ogg") and stored.asterisk == f"{DIR}/c1.ogg"
    assert (stored.sha256, stored.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert stored.content_type == "audio/ogg" and not stored.encrypted and data[:4] == b"OggS"
    assert wav.stat().st_size / stored.size_bytes >= 8, (wav.stat().st_size, stored.size_bytes)
    assert ogg_opus_duration_ms(data) == pytest.approx(30_000, abs=30)
    assert wav.exists() and sorted(p.name for p in wav.parent.iterdir()) == ["c1.ogg", "c1.wav"]
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600
    # Intelligible: as long as the WAV, the same energy, and the same speech envelope over time.
    heard = decoded(data, tmp_path)
    assert abs(len(heard) - len(speech)) <= RATE // 50
    n = min(len(heard), len(speech))
    before, after = envelope(speech[:n]), envelope(heard[:n])
    assert float(np.corrcoef(before, after)[0, 1]) > 0.97
    energy_db = 10 * np.log10(np.mean(heard[:n].astype(np.float64) ** 2) / np.mean(speech[:n].astype(np.float64) ** 2))
    assert abs(energy_db) < 1.5, energy_db


def test_a_sealed_stored_object_is_encrypted_and_decrypts_to_the_opus_file(tmp_path: Path) -> None:
    wav = put_wav(tmp_path, "c2.wav", speechlike(5))
    ring = keys(tmp_path)

    stored = Compactor(OpusEncoder(), ring).finalise(wav, f"{DIR}/c2.wav", 5_000)

    data = stored.path.read_bytes()
    assert data.startswith(MAGIC) and stored.encrypted and stored.content_type == "audio/ogg"
    assert stored.sha256 == hashlib.sha256(data).hexdigest()  # of the bytes as stored
    plain = b"".join(plaintext_chunks(stored.path, ring))
    assert plain[:4] == b"OggS" and ogg_opus_duration_ms(plain) == pytest.approx(5_000, abs=30)
    assert sorted(p.name for p in wav.parent.iterdir()) == ["c2.ogg", "c2.wav"]  # no temporary file left


def test_a_missing_encoder_leaves_the_wav_and_nothing_else(tmp_path: Path) -> None:
    wav = put_wav(tmp_path, "c3.wav", speechlike(1))
    with pytest.raises(CompactError, match="not installed .*apt-get install opus-tools"):
        Compactor(OpusEncoder(program="no-such-opusenc")).finalise(wav, f"{DIR}/c3.wav", 1_000)
    assert [p.name for p in wav.parent.iterdir()] == ["c3.wav"]


def test_an_encoding_that_does_not_hold_the_whole_wav_is_refused(tmp_path: Path) -> None:
    wav = put_wav(tmp_path, "c4.wav", speechlike(2))
    with pytest.raises(CompactError, match="holds 2000 ms of Opus for 9000 ms of WAV"):
        Compactor(OpusEncoder()).finalise(wav, f"{DIR}/c4.wav", 9_000)
    assert [p.name for p in wav.parent.iterdir()] == ["c4.wav"]


def test_what_the_bytes_say() -> None:
    assert ogg_opus_duration_ms(b"RIFF....WAVE") is None and ogg_opus_duration_ms(b"OggS" + bytes(40)) is None
    assert durations_agree(60_000, 60_400) and not durations_agree(60_000, 59_000) and not durations_agree(0, None)
    assert stored_name("/r/2026/11/27/1.2.wav", "opus") == "/r/2026/11/27/1.2.ogg"
    assert stored_name("/r/1.2.wav", "wav") == "/r/1.2.wav"
    assert (content_type("a.ogg"), content_type("a.WAV"), content_type("a")) == ("audio/ogg", "audio/wav",
                                                                                "application/octet-stream")


# -- the service: finish, fall back, catch up --------------------------------------------------


def compacting(tmp_path: Path, ring: KeyRing | None = None, program: str = "opusenc") -> Any:
    svc = service(tmp_path, [])
    svc.compactor = Compactor(OpusEncoder(program=program), ring)
    return svc


def start(svc: Any, call_id: str) -> None:
    svc.started(call_id, "02079460018", "1002", "service", svc.folder.confine(f"{DIR}/{call_id}.wav"))


def test_finish_stores_the_call_and_its_legs_compacted_and_removes_the_wavs(tmp_path: Path) -> None:
    ring = keys(tmp_path)
    svc = compacting(tmp_path, ring)
    mixed = put_wav(tmp_path, "c5.wav", speechlike(4))
    for leg in ("in", "out"):
        put_wav(tmp_path, f"c5-{leg}.wav", speechlike(4, seed=3))
    start(svc, "c5")

    row = svc.finish("c5", settle_seconds=1, at_hangup=False)

    assert row is not None and (row.state, row.file, row.encrypted, row.duration_ms) == (
        "complete", f"{DIR}/c5.ogg", True, 4000)
    stored = mixed.with_name("c5.ogg")
    assert (row.sha256, row.size_bytes) == (hashlib.sha256(stored.read_bytes()).hexdigest(), stored.stat().st_size)
    assert sorted(p.name for p in mixed.parent.iterdir()) == ["c5-in.ogg", "c5-out.ogg", "c5.ogg"]
    for part in mixed.parent.iterdir():
        assert b"".join(plaintext_chunks(part, ring))[:4] == b"OggS", part
    assert [verdict for _, verdict in svc.verify()] == ["ok"]


def test_when_encoding_fails_the_recording_stays_wav_sealed_as_before(tmp_path: Path, caplog: Any) -> None:
    svc = compacting(tmp_path, program="no-such-opusenc")
    sealed: list[str] = []
    svc.seal = lambda path: sealed.append(path.name)
    mixed = put_wav(tmp_path, "c6.wav", speechlike(1))
    start(svc, "c6")

    with caplog.at_level(logging.ERROR, logger="livecall.recording"):
        row = svc.finish("c6", settle_seconds=1, at_hangup=False)

    assert row is not None and (row.state, row.file) == ("complete", f"{DIR}/c6.wav") and sealed == ["c6.wav"]
    assert mixed.exists() and f"recording {DIR}/c6.wav is kept as WAV: no-such-opusenc is not installed" in caplog.text


def test_finish_runs_in_the_services_own_bounded_pool(tmp_path: Path) -> None:
    svc = compacting(tmp_path)
    svc.workers = 1
    for n in range(3):
        put_wav(tmp_path, f"p{n}.wav", speechlike(1))
        start(svc, f"p{n}")
    futures = [svc.finish_later(f"p{n}", NOW) for n in range(3)]
    assert svc.backlog() >= 2  # one at a time: the others wait their turn
    rows = [f.result(timeout=60) for f in futures]
    assert [r.state for r in rows] == ["complete"] * 3 and svc.backlog() == 0
    assert {t.name.split("_")[0] for t in svc._pool._threads} == {"recording-finish"}  # type: ignore[union-attr]


def test_a_crash_before_the_row_names_the_stored_object_is_finished_by_the_catch_up(tmp_path: Path) -> None:
    svc = compacting(tmp_path)
    mixed = put_wav(tmp_path, "c7.wav", speechlike(2))
    start(svc, "c7")
    Recording.update(started_at=NOW.replace(tzinfo=None) - dt.timedelta(hours=1)).execute()
    mixed.with_name("c7.ogg.encoding").write_bytes(b"OggS half")  # serve died while encoding
    old = time.time() - 3600
    os.utime(mixed, (old, old))

    counts = svc.reconcile()

    row = Recording.get(Recording.call_id == "c7")
    assert counts["finished"] == 1 and (row.state, row.file) == ("complete", f"{DIR}/c7.ogg")
    assert sorted(p.name for p in mixed.parent.iterdir()) == ["c7.ogg"]


def test_a_crash_after_the_row_names_the_stored_object_leaves_no_second_recording(tmp_path: Path) -> None:
    svc = compacting(tmp_path)
    mixed = put_wav(tmp_path, "c8.wav", speechlike(2))
    start(svc, "c8")
    wav_bytes = mixed.read_bytes()
    svc.finish("c8", settle_seconds=1, at_hangup=False)
    mixed.write_bytes(wav_bytes)  # serve died before it removed the WAV
    old = time.time() - 3600
    os.utime(mixed, (old, old))

    counts = svc.reconcile()

    assert counts.get("leftovers") == 1 and counts["registered"] == 0
    assert [r.file for r in Recording.select()] == [f"{DIR}/c8.ogg"] and not mixed.exists()


# -- `livecall init`: a new install records compact and encrypted ------------------------------


def init(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECALL_") or k == "LIVECALL_DATABASE_URL"}
    env.update(LIVECALL_CONFIG=str(tmp_path / "livecall.toml"), LIVECALL_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-m", "livecall_ari.cli", "init", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_init_makes_a_new_install_encrypt_and_compact_its_recordings_and_leaves_an_old_one_be(tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    result = init(new)
    assert result.returncode == 0, result.stderr
    written = tomllib.loads((new / "livecall.toml").read_text())
    assert written["protection"]["encrypt_recordings"] is True and written["recording"]["format"] == "opus"
    key = new / "recording.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and KeyRing.load(key).current == "k1"
    assert f"encrypted at rest with the key in {key}" in result.stdout

    old = tmp_path / "old"
    old.mkdir()
    (old / "livecall.toml").write_text("[protection]\nencrypt_recordings = false\n")
    (old / "livecall.toml").chmod(0o600)
    for args in ((), ("--force",)):
        result = init(old, *args)
        assert result.returncode == 0, result.stderr
        kept = tomllib.loads((old / "livecall.toml").read_text())
        assert kept["protection"]["encrypt_recordings"] is False and kept["recording"]["format"] == "wav", args
    assert not (old / "recording.key").exists()


# -- the portal plays the stored object ---------------------------------------------------------


def test_the_portal_plays_a_sealed_opus_recording_as_ogg_with_ranges_and_its_legs(tmp_path: Path) -> None:
    import re

    import httpx

    from livecall_ari.portal.auth import Accounts
    from livecall_ari.protection.crypto import recording_keys
    from livecall_ari.recording.paths import RecordingsFolder
    from livecall_ari.recording.services import RecordingService
    from livecall_ari.web.app import WebDependencies, build_asgi
    from tests.unit.protection_data import ALICE, add_person, make_app

    app = make_app(tmp_path)
    Accounts().add("sue", "supervisor", "a long enough password", "2101")
    alice = add_person(app, tmp_path, ALICE, 1)
    for name in (alice.audio.name, alice.audio.name.replace(".wav", "-in.wav")):
        alice.audio.with_name(name).write_bytes(wav_of(speechlike(3)))
    ring = recording_keys(app.settings, create=True)
    svc = RecordingService(RecordingsFolder.from_settings(app.settings), "default", lambda *a: None,
                           lambda purpose: "legitimate_interests", lambda *a: None, compactor=Compactor(OpusEncoder(), ring))
    mixed = svc.folder.confine(str(alice.audio))
    stored = svc._compact(mixed, 3_000)
    assert stored is not None
    Recording.update(file=stored.asterisk, sha256=stored.sha256, size_bytes=stored.size_bytes,
                     encrypted=True).execute()
    svc._discard_wavs(mixed)
    plain = b"".join(plaintext_chunks(stored.path, ring))
    leg = b"".join(plaintext_chunks(stored.path.with_name(stored.path.stem + "-in.ogg"), ring))

    async def steps(c: httpx.AsyncClient) -> list[httpx.Response]:
        form = await c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        await c.post("/login", data={"username": "sue", "password": "a long enough password", "csrf": token.group(1),
                                     "next": "/calls"})
        base = f"/recordings/{alice.recording_id}"
        return [await c.get(f"{base}/audio", headers={"range": "bytes=100-1099"}),
                await c.get(f"{base}/audio?leg=in", headers={"range": "bytes=0-"}),
                await c.get(f"{base}/download")]

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8099") as client:
            return await steps(client)

    import asyncio

    ranged, in_leg, whole = asyncio.run(go())
    assert ranged.status_code == 206 and ranged.headers["content-type"] == "audio/ogg"
    assert ranged.content == plain[100:1100] and ranged.headers["content-range"] == f"bytes 100-1099/{len(plain)}"
    assert in_leg.status_code == 206 and in_leg.content == leg
    assert whole.status_code == 200 and whole.content == plain
    assert whole.headers["content-disposition"].endswith(f'recording-{alice.recording_id}.ogg"')
    # What erasure and retention remove with the row: the stored object and its legs.
    assert sorted(p.name for p in svc.folder.files(svc.folder.confine(stored.asterisk))) == [
        stored.path.stem + "-in.ogg", stored.path.name]


def test_doctor_says_how_recordings_are_kept_and_fails_without_the_encoder(tmp_path: Path, monkeypatch: Any) -> None:
    from livecall_ari import config
    from livecall_ari.recording.compact import format_check

    settings = config.load(tmp_path / "livecall.toml", environ={"LIVECALL_RECORDING_FORMAT": "opus"})
    found = format_check(settings)
    assert found.ok and found.detail.startswith("Opus in Ogg at 12 kbit/s (") and found.detail.endswith("opusenc)")
    settings.protection.encrypt_recordings = True
    missing_key = format_check(settings)  # doctor never makes the key: it says how to
    assert not missing_key.ok and "no key file (run `livecall encryption init`" in missing_key.detail
    assert not (tmp_path / "recording.key").exists()
    settings.protection.encrypt_recordings = False
    monkeypatch.setenv("PATH", str(tmp_path))
    absent = format_check(settings)
    assert not absent.ok and not absent.warning and "recordings are kept as WAV until it is installed" in absent.detail
    settings.recording.format = "mp3"
    assert "[recording] format: 'mp3' is not one of wav, opus" in format_check(settings).detail


def test_a_call_is_finished_by_one_thread_at_a_time(tmp_path: Path) -> None:
    svc = compacting(tmp_path)
    put_wav(tmp_path, "c9.wav", speechlike(2))
    start(svc, "c9")
    svc._busy.add("c9")  # the pool is finishing it: the catch-up must not compact it a second time
    assert svc.finish("c9", settle_seconds=0, at_hangup=False) is None
    assert Recording.get(Recording.call_id == "c9").state == "recording"
    svc._busy.clear()
    assert svc.finish("c9", settle_seconds=0, at_hangup=False).file == f"{DIR}/c9.ogg"


def test_closing_drops_the_recordings_still_waiting_and_they_are_finished_later(tmp_path: Path) -> None:
    svc = compacting(tmp_path)
    svc.workers = 1
    for n in range(4):
        put_wav(tmp_path, f"q{n}.wav", speechlike(2))
        start(svc, f"q{n}")
    futures = [svc.finish_later(f"q{n}", NOW) for n in range(4)]
    svc.close()  # serve stops: it does not wait for the backlog to drain
    assert any(f.cancelled() for f in futures)
    waiting = [f"q{n}" for n, f in enumerate(futures) if f.cancelled()]
    for f in futures:
        if not f.cancelled():
            f.result(timeout=60)
    for call_id in waiting:  # kept as they were: the row open, the WAV there
        assert Recording.get(Recording.call_id == call_id).state == "recording"
        assert (tmp_path / "asterisk" / DIR.lstrip("/") / f"{call_id}.wav").exists()
    assert all(svc.finish(c, settle_seconds=0, at_hangup=False).state == "complete" for c in waiting)
