"""Compact recordings: after a call, MixMonitor's WAV (16-bit 8 kHz, 128 kbit/s) becomes Opus in
Ogg (``[recording] opus_kbps``, 12 by default: about a tenth of the size), sealed when recordings
are encrypted at rest, verified, and only then is the WAV removed.

:func:`Compactor.finalise` is the one step that turns a recording's WAV into *the stored object*:
the file that is kept, served, exported and erased, whose SHA-256 the row records. Whatever comes
after it (an upload to object storage) starts from its :class:`StoredObject`.

A crash at any point loses nothing: the stored object appears by rename only once it is whole
and verified (its Opus duration matches the WAV's; sealed, it decrypts back to the same bytes),
and the WAV is removed by the service only after the row names the stored object.

The first part of this module is pure (what an Ogg Opus file's bytes say); the rest runs
``opusenc`` and touches files. It never runs on the call path: the service calls it from a
worker after the call has ended.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from livecall_ari.asterisk.checks import Check
from livecall_ari.config import ConfigError, Settings
from livecall_ari.protection.crypto import KeyFileError, KeyRing, encrypt_stream, plaintext_chunks, recording_keys

FORMATS = ("wav", "opus")
# opusenc's complexity and frame length. On 8 kHz call audio at 12 kbit/s, complexity 0 with
# 60 ms frames took a third of the CPU of the defaults (10, 20 ms) for a smaller file and the
# same speech envelope and spectral distance (docs/benchmarks.md, "Compact recordings").
COMPLEXITY = 0
FRAME_MS = 60
NICENESS = 19
CONTENT_TYPES = {".ogg": "audio/ogg", ".wav": "audio/wav"}
OPUS_RATE = 48000  # an Ogg Opus granule position counts 48 kHz samples, whatever the input's rate


class CompactError(Exception):
    """A recording that could not be compacted; the message says which file and why. Its WAV stays."""


# -- pure: what the bytes say ---------------------------------------------------------------


def content_type(name: str) -> str:
    """The media type of a stored recording, by its name (``.ogg``: Opus in Ogg)."""
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def stored_name(wav_name: str, fmt: str) -> str:
    """The name the stored object of ``<stem>.wav`` gets in format ``fmt``."""
    if fmt == "wav" or not wav_name.endswith(".wav"):
        return wav_name
    return wav_name[: -len(".wav")] + ".ogg"


def ogg_opus_duration_ms(data: bytes) -> int | None:
    """Duration of an Ogg Opus file: the last page's granule position less the pre-skip, at
    48 kHz (RFC 7845); None when the bytes are not Ogg Opus or say nothing of their length."""
    if data[:4] != b"OggS":
        return None
    head = data.find(b"OpusHead")
    if head < 0 or head + 12 > len(data):
        return None
    pre_skip: int = struct.unpack("<H", data[head + 10:head + 12])[0]
    last = data.rfind(b"OggS")
    if last < 0 or last + 14 > len(data):
        return None
    granule: int = struct.unpack("<q", data[last + 6:last + 14])[0]
    return max(0, (granule - pre_skip) * 1000 // OPUS_RATE)


def durations_agree(wav_ms: int, encoded_ms: int | None) -> bool:
    """Whether the encoded file holds the whole WAV: within 100 ms or 1 % (opusenc pads the
    last frame, never drops audio)."""
    return encoded_ms is not None and abs(encoded_ms - wav_ms) <= max(100, wav_ms // 100)


# -- the adapter: opusenc, sealing, files ----------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    """A recording's file as kept: where it is on this host and as Asterisk sees it (what rows
    keep), the SHA-256 and size of its bytes as stored (sealed, when encrypted), its media type
    (of the audio, once decrypted) and whether it is sealed."""

    path: Path
    asterisk: str
    sha256: str
    size_bytes: int
    content_type: str
    encrypted: bool


@dataclass(frozen=True)
class OpusEncoder:
    """``opusenc`` (Debian's opus-tools): a WAV file to Opus in Ogg at ``kbps``."""

    kbps: int = 12
    program: str = "opusenc"
    timeout_s: float = 600.0

    def encode(self, wav: Path, out: Path) -> None:
        # At the lowest CPU priority: calls in progress come first, encoding takes what is left.
        cmd = ["nice", "-n", str(NICENESS), self.program, "--quiet", "--bitrate", str(self.kbps), "--comp", str(COMPLEXITY), "--framesize",
               str(FRAME_MS), "--discard-comments", str(wav), str(out)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except FileNotFoundError:
            raise CompactError(f"{self.program} is not installed (Debian: apt-get install opus-tools); "
                               f"{wav} is kept as WAV") from None
        except subprocess.TimeoutExpired:
            raise CompactError(f"{self.program} took over {self.timeout_s:.0f} s on {wav}; it is kept as WAV") from None
        if done.returncode == 127:  # nice found no such program
            raise CompactError(f"{self.program} is not installed (Debian: apt-get install opus-tools); "
                               f"{wav} is kept as WAV")
        if done.returncode != 0:
            raise CompactError(f"{self.program} failed on {wav} (exit {done.returncode}): "
                               f"{done.stderr.strip()[-300:]}; it is kept as WAV")


@dataclass(frozen=True)
class Compactor:
    """Produces stored objects: encoded with ``encoder``, sealed with ``keys`` when given."""

    encoder: OpusEncoder
    keys: KeyRing | None = None

    def finalise(self, wav: Path, asterisk_path: str, wav_ms: int) -> StoredObject:
        """Encode ``wav`` (``wav_ms`` long), seal it when encryption is on, verify it, and put it
        beside the WAV as ``<stem>.ogg`` (by rename: never half written). The WAV is left alone.
        Raises :class:`CompactError` (nothing left behind) when any step fails."""
        out = wav.with_name(stored_name(wav.name, "opus"))
        encoding = out.with_name(out.name + ".encoding")
        sealing = out.with_name(out.name + ".sealing")
        try:
            self.encoder.encode(wav, encoding)
            plain = encoding.read_bytes()
            encoded_ms = ogg_opus_duration_ms(plain)
            if not durations_agree(wav_ms, encoded_ms):
                raise CompactError(f"{encoding}: holds {encoded_ms} ms of Opus for {wav_ms} ms of WAV; {wav} is kept")
            final = encoding
            if self.keys is not None:
                with open(encoding, "rb") as source, open(sealing, "wb") as sealed:
                    encrypt_stream(source, sealed, self.keys)
                    sealed.flush()
                    os.fsync(sealed.fileno())
                if b"".join(plaintext_chunks(sealing, self.keys)) != plain:
                    raise CompactError(f"{sealing}: does not decrypt to what was encoded; {wav} is kept")
                encoding.unlink()
                final = sealing
            else:
                with open(encoding, "rb+") as f:
                    os.fsync(f.fileno())
            os.chmod(final, 0o600)
            os.replace(final, out)
            _sync_dir(out.parent)
        except OSError as exc:
            raise CompactError(f"{out}: could not be written ({exc.strerror or exc}); {wav} is kept") from None
        finally:
            for leftover in (encoding, sealing):
                leftover.unlink(missing_ok=True)
        stored = out.read_bytes()
        return StoredObject(out, stored_name(asterisk_path, "opus"), hashlib.sha256(stored).hexdigest(), len(stored),
                            content_type(out.name), self.keys is not None)


def compactor_for(settings: Settings, create_key: bool = True) -> Compactor | None:
    """The compactor ``[recording] format`` asks for (None: recordings stay WAV); raises
    ConfigError naming the setting when it is not one LiveCall knows."""
    r, where = settings.recording, f"{settings.path}: " if settings.path is not None else ""
    if r.format not in FORMATS:
        raise ConfigError(f"{where}[recording] format: {r.format!r} is not one of {', '.join(FORMATS)}")
    if not 6 <= r.opus_kbps <= 64:
        raise ConfigError(f"{where}[recording] opus_kbps: {r.opus_kbps} is not between 6 and 64")
    if r.format == "wav":
        return None
    keys = recording_keys(settings, create=create_key) if settings.protection.encrypt_recordings else None
    return Compactor(OpusEncoder(r.opus_kbps), keys)


def format_check(settings: Settings) -> Check:
    """``livecall doctor``: how recordings are kept, and whether the encoder that needs is here."""
    try:
        compactor = compactor_for(settings, create_key=False)
    except (ConfigError, KeyFileError) as exc:
        return Check("recording format", False, str(exc))
    if compactor is None:
        return Check("recording format", True, "kept as WAV, as recorded ([recording] format)")
    sealed = ", encrypted at rest" if compactor.keys is not None else ""
    found = shutil.which(compactor.encoder.program)
    if found is None:
        return Check("recording format", False, f"{compactor.encoder.program} not found: recordings are kept as WAV "
                     "until it is installed (Debian: apt-get install opus-tools)")
    return Check("recording format", True, f"Opus in Ogg at {compactor.encoder.kbps} kbit/s{sealed} ({found})")


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
