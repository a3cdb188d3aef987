"""The seam between LiveCall and an object store: a small typed :class:`Store` interface, and
:class:`FolderStore`, an adapter that keeps objects as files in a folder (the recordings'
own disk, a mount shared by the PBXs, or a unit test's temporary folder).

The S3 adapter is objects.s3. Every adapter raises :class:`StoreUnavailable` when the store
cannot be reached (the uploader then keeps the file and tries later) and :class:`StoreError`
for anything else, each with a message that says which store and what went wrong.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator, Protocol

from livecall_ari.objects.core import Fingerprint, Fingerprinter

BLOCK = 1 << 20


class StoreError(Exception):
    """The store refused or failed an operation; the message says which store and why."""


class StoreUnavailable(StoreError):
    """The store cannot be reached now (down, refusing connections, timing out): try later."""


@dataclass(frozen=True)
class StoredObject:
    """An object as the store reports it: its size, the ETag it computed, the SHA-256 kept
    with it (empty when none was) and, in a versioned bucket, its version."""

    key: str
    size: int
    etag: str
    sha256: str
    version_id: str = ""


class Store(Protocol):
    """Where recordings' objects are kept, read back and deleted."""

    @property
    def name(self) -> str:
        """Which store this is, for messages (never a secret)."""
        ...

    def ensure_bucket(self) -> None:
        """Create the bucket (or folder) when missing."""
        ...

    def put(self, key: str, path: Path, sent: Fingerprint) -> StoredObject:
        """Upload the file (in parts of ``sent.part_bytes`` when set) with its SHA-256, and
        return the object as the store then reports it."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """The object, or None when there is none by that key."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The object's bytes ``start``..``end`` (inclusive; to the end when None), in blocks."""
        ...

    def delete(self, key: str) -> int:
        """Delete the object and, in a versioned bucket, every version of it; how many went."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The keys under ``prefix``."""
        ...


def fingerprint_file(path: Path) -> Fingerprint:
    """The file's :class:`~livecall_ari.objects.core.Fingerprint`, read once in blocks."""
    size = path.stat().st_size
    printer = Fingerprinter(size)
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            printer.feed(block)
    return printer.result()


def file_blocks(path: Path, start: int, end: int | None, block: int = BLOCK) -> Iterator[bytes]:
    """A local file's bytes ``start``..``end`` (inclusive), in blocks."""
    with open(path, "rb") as f:
        f.seek(start)
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            data = f.read(block if left is None else min(block, left))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data


@dataclass(frozen=True)
class FolderStore:
    """Objects as files under ``root`` (keys are relative paths; ``..`` is refused)."""

    root: Path

    @property
    def name(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not key or key.startswith("/") or ".." in parts or "\x00" in key:
            raise StoreError(f"{self.name}: refused object key {key[:200]!r}")
        return self.root.joinpath(*parts)

    def ensure_bucket(self) -> None:
        if not self.root.parent.is_dir():
            raise StoreUnavailable(f"{self.name}: its parent folder is missing (not mounted?)")
        self.root.mkdir(mode=0o700, exist_ok=True)

    def put(self, key: str, path: Path, sent: Fingerprint) -> StoredObject:
        target = self._path(key)
        if not self.root.is_dir():
            raise StoreUnavailable(f"{self.name}: the folder is missing (not mounted?)")
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            for block in file_blocks(path, 0, None):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(target)
        stored = self.head(key)
        if stored is None:
            raise StoreError(f"{self.name}: {key} vanished as it was written")
        return stored

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        sha = hashlib.sha256()
        for block in file_blocks(path, 0, None):
            sha.update(block)
        return StoredObject(key, path.stat().st_size, "", sha.hexdigest())

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise StoreError(f"{self.name}: no object {key}")
        return file_blocks(path, start, end)

    def delete(self, key: str) -> int:
        path = self._path(key)
        if path.is_file():
            path.unlink()
            return 1
        return 0

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not key.endswith(".part") and key.startswith(prefix):
                yield key
