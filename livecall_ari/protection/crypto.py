"""Encryption at rest for recordings (AES-256-GCM, ``cryptography``), and the keys kept outside
the database.

Key files are small JSON files, created with mode 0600 beside the settings file unless
``[protection] key_file`` / ``erasure_key_file`` say otherwise, and refused when anyone but the
owner may read them. A key never appears in a log, a message or a repr.

An encrypted recording is a header (magic, key id, nonce prefix, chunk size) and the audio in
chunks of 1 MiB, each sealed with its own nonce (prefix + counter) and with the header, its
index and a last-chunk flag as associated data: a chunk moved, dropped or cut off fails to
decrypt. So playback and export decrypt as they stream, never holding the whole file.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import struct
from pathlib import Path
from typing import BinaryIO, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from livecall_ari import config

MAGIC = b"LCREC1\n"
CHUNK = 1 << 20
TAG = 16


class KeyFileError(Exception):
    """A key file that is missing, unreadable or too open; the message says which and what to do."""


class KeyRing:
    """Named keys and the one new data is sealed with. Old keys stay to open old files."""

    def __init__(self, keys: dict[str, bytes], current: str, path: Path) -> None:
        self._keys = keys
        self.current = current
        self.path = path

    def __repr__(self) -> str:
        return f"KeyRing({self.path}, current={self.current!r}, {len(self._keys)} keys)"

    def key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyFileError(f"{self.path}: has no key {key_id!r}; restore the key file that sealed this recording") from None

    @property
    def current_key(self) -> bytes:
        return self.key(self.current)

    @classmethod
    def load(cls, path: Path, create: bool = False) -> "KeyRing":
        if not path.exists():
            if not create:
                raise KeyFileError(f"{path}: no key file (run `livecall encryption init`, or restore it from backup)")
            _write_new(path, {"version": 1, "current": "k1", "keys": {"k1": _b64(secrets.token_bytes(32))}})
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path}: readable by others (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}")
        try:
            data = json.loads(path.read_text())
            keys = {str(k): base64.b64decode(v) for k, v in data["keys"].items()}
            current = str(data["current"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyFileError(f"{path}: not a LiveCall key file ({type(exc).__name__})") from None
        if current not in keys or any(len(k) != 32 for k in keys.values()):
            raise KeyFileError(f"{path}: the current key is missing or a key is not 256 bits")
        return cls(keys, current, path)

    def rotate(self) -> str:
        """Add a new current key (old files keep opening with their own key id)."""
        key_id = f"k{len(self._keys) + 1}"
        self._keys[key_id] = secrets.token_bytes(32)
        self.current = key_id
        data = {"version": 1, "current": key_id, "keys": {k: _b64(v) for k, v in self._keys.items()}}
        tmp = self.path.with_name(self.path.name + ".new")
        _write_new(tmp, data)
        os.replace(tmp, self.path)
        return key_id


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _write_new(path: Path, data: object) -> None:
    from livecall_ari.storage.private import private_dir

    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _config_dir(settings: config.Settings) -> Path:
    return (settings.path or config.default_config_path()).parent


def recording_key_path(settings: config.Settings) -> Path:
    return Path(settings.protection.key_file) if settings.protection.key_file else _config_dir(settings) / "recording.key"


def erasure_key_path(settings: config.Settings) -> Path:
    path = settings.protection.erasure_key_file
    return Path(path) if path else _config_dir(settings) / "erasure.key"


def audit_key_path(settings: config.Settings) -> Path:
    path = settings.protection.audit_key_file
    return Path(path) if path else _config_dir(settings) / "audit.key"


def audit_anchor_path(settings: config.Settings) -> Path:
    path = settings.protection.audit_anchor_file
    return Path(path) if path else settings.data_path() / "audit-anchors.jsonl"


def audit_key(settings: config.Settings) -> bytes:
    """The key of the audit trail's MACs and anchors; created on first use, never rotated (a
    new key would leave every MAC before it unverifiable)."""
    return KeyRing.load(audit_key_path(settings), create=True).current_key


def recording_keys(settings: config.Settings, create: bool = False) -> KeyRing:
    return KeyRing.load(recording_key_path(settings), create)


def erasure_key(settings: config.Settings) -> bytes:
    """The key of the suppression hashes and pseudonyms; created on first use, never rotated."""
    return KeyRing.load(erasure_key_path(settings), create=True).current_key


# Sealed files -------------------------------------------------------------------------------


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def is_encrypted(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def encrypt_stream(source: BinaryIO, out: BinaryIO, keys: KeyRing, chunk: int = CHUNK) -> None:
    key_id = keys.current.encode()
    header = MAGIC + bytes([len(key_id)]) + key_id + secrets.token_bytes(8) + struct.pack(">I", chunk)
    prefix = header[len(MAGIC) + 1 + len(key_id):][:8]
    aes = AESGCM(keys.current_key)
    out.write(header)
    index = 0
    block = source.read(chunk)
    while True:
        following = source.read(chunk)
        last = not following
        out.write(aes.encrypt(_nonce(prefix, index), block, _aad(header, index, last)))
        if last:
            return
        block, index = following, index + 1


def encrypt_file(path: Path, keys: KeyRing, chunk: int = CHUNK) -> None:
    """Seal ``path`` in place (a temporary file, fsync, rename): never half encrypted."""
    tmp = path.with_name(path.name + ".sealing")
    try:
        with open(path, "rb") as source, open(tmp, "wb") as out:
            encrypt_stream(source, out, keys, chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
    except BaseException:
        tmp.unlink(missing_ok=True)  # a disk that filled up keeps no half-sealed copy
        raise
    os.replace(tmp, path)


def plaintext_chunks(path: Path, keys: KeyRing | None) -> Iterator[bytes]:
    """The recording's audio as it was recorded, decrypted on the fly when it is sealed."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            f.seek(0)
            while block := f.read(CHUNK):
                yield block
            return
        if keys is None:
            raise KeyFileError(f"{path}: is encrypted and no recording key is configured")
        size = f.read(1)[0]
        key_id = f.read(size)
        prefix = f.read(8)
        chunk = struct.unpack(">I", f.read(4))[0]
        header = MAGIC + bytes([size]) + key_id + prefix + struct.pack(">I", chunk)
        aes = AESGCM(keys.key(key_id.decode()))
        index = 0
        sealed = f.read(chunk + TAG)
        while True:
            following = f.read(chunk + TAG)
            last = not following
            try:
                yield aes.decrypt(_nonce(prefix, index), sealed, _aad(header, index, last))
            except InvalidTag:
                raise KeyFileError(f"{path}: chunk {index} does not decrypt (damaged, cut short, or another key)") from None
            if last:
                return
            sealed, index = following, index + 1
