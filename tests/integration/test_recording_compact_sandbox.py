"""Compact recordings through the sandbox (issue 18): a real call's recording is kept as Opus in
Ogg, sealed at rest (as `livecall init` sets up a new install), at least 8x smaller than the WAV
MixMonitor wrote, with no WAV left, and the recording notice in it still the notice."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from livecall_ari import config
from livecall_ari.protection.crypto import MAGIC, plaintext_chunks, recording_keys
from livecall_ari.recording.compact import ogg_opus_duration_ms
from tests.integration import audio
from tests.integration.harness import SandboxInfo, Service, call, livecall
from tests.integration.test_recording_calls import TALKATIVE, finished, host, prompt

pytestmark = pytest.mark.sandbox

WAV_BYTES_PER_MS = 16  # MixMonitor's WAV: 16-bit samples at 8 kHz


@pytest.fixture
def compacting(make_service: Any) -> Service:
    return make_service(  # type: ignore[no-any-return]
        LIVECALL_GATE_DECIDER="static", LIVECALL_RECORDING_FORMAT="opus", LIVECALL_PROTECTION_ENCRYPT_RECORDINGS="true")


def decoded(ogg: bytes, tmp_path: Path, name: str) -> audio.Samples:
    """What a player hears from the stored object: opusdec's output at 8 kHz."""
    src, out = tmp_path / f"{name}.ogg", tmp_path / f"{name}.wav"
    src.write_bytes(ogg)
    subprocess.run(["opusdec", "--quiet", "--rate", str(audio.RATE), str(src), str(out)], check=True, timeout=60)
    return audio.read_wav(out)


def test_a_call_is_kept_as_sealed_opus_8x_smaller_and_the_notice_in_it_is_still_the_notice(
    sandbox: SandboxInfo, compacting: Service, tmp_path: Path
) -> None:
    hold_s = 4
    result = call(sandbox, TALKATIVE, agent="1002", hold_ms=hold_s * 1000)
    assert result.answered, result.errors

    [row] = finished(compacting)
    assert (row["state"], row["encrypted"]) == ("complete", 1) and row["file"].endswith(".ogg"), row
    stored = host(sandbox, row["file"])
    data = stored.read_bytes()
    # The checksum and size recorded are the stored object's, as it lies on disk (sealed).
    assert data.startswith(MAGIC)
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (row["sha256"], row["size_bytes"])
    # Its legs are compacted beside it, and no WAV is left.
    stem = stored.stem
    assert sorted(p.name for p in stored.parent.glob(f"{stem}*")) == [f"{stem}-in.ogg", f"{stem}-out.ogg", f"{stem}.ogg"]
    # At least 8x smaller than the WAV of the same length.
    notice = prompt(sandbox, "livecall/notice")
    notice_s = len(notice) / audio.RATE
    assert row["duration_ms"] / 1000 == pytest.approx(notice_s + 1 + hold_s, abs=1.5)
    ratio = (44 + row["duration_ms"] * WAV_BYTES_PER_MS) / row["size_bytes"]
    assert ratio >= 8, ratio

    keys = recording_keys(config.load(environ={**os.environ, **compacting.env}))
    plain = b"".join(plaintext_chunks(stored, keys))
    assert ogg_opus_duration_ms(plain) == pytest.approx(row["duration_ms"], abs=150)
    # Intelligible: the notice prompt before (the file Asterisk plays) and after (decoded from the
    # called party's leg as stored) have the same speech envelope, as closely as the WAV test asks.
    outbound = decoded(b"".join(plaintext_chunks(stored.with_name(f"{stem}-out.ogg"), keys)), tmp_path, "out")
    r, lag = audio.best_match(outbound, notice)
    assert r > 0.8 and lag < 0.5, (r, lag)
    mixed = decoded(plain, tmp_path, "mixed")
    # In the mix the called party's greeting overlaps the notice: the WAV test's bar there too.
    assert audio.best_match(mixed, notice)[0] > 0.45
    after = slice(int((notice_s + 1.5) * audio.RATE), None)
    assert audio.rms(mixed[after]) > 300  # the far end's speech after the notice is there too
    out = livecall("recordings", "verify", env=compacting.env).stdout
    assert ", 0 missing or changed" in out, out
