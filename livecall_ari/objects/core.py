"""Object storage's decisions, kept pure: where a recording's object lives (its key), how a
file is cut into multipart parts, what ETag the store must answer for the bytes sent, when an
upload is tried again, and what the backlog report says.

No I/O and no clock here: the adapters (objects.store, objects.s3) and the uploader
(objects.services) hand in the bytes' fingerprints and the time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

# S3's smallest part (but the last); files up to MULTIPART_THRESHOLD go in one PUT.
MIN_PART = 5 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
MULTIPART_THRESHOLD = 16 * 1024 * 1024
# Leg files beside a mixed recording (recording/services.py names them).
LEG_SUFFIXES = {"in": "-in", "out": "-out"}


class KeyRefused(ValueError):
    """A recording path that cannot become an object key; the message says which and why."""


def object_key(node: str, recordings_dir: str, asterisk_path: str) -> str:
    """The object key of a recording file: the PBX's name, then the file's path under the
    recordings folder (``livecall-b/2026/11/29/1764400000.12.wav``). The node keeps two PBXs'
    files apart even where their call ids could meet."""
    folder = PurePosixPath(recordings_dir.rstrip("/") or "/")
    path = PurePosixPath(asterisk_path)
    if not path.is_relative_to(folder) or ".." in path.parts or path == folder:
        raise KeyRefused(f"recording path {asterisk_path[:200]!r} is not under the recordings folder {folder}")
    name = (node or "pbx").replace("/", "_").strip(".") or "pbx"
    return f"{name}/{path.relative_to(folder).as_posix()}"


def leg_key(mixed_key: str, leg: str) -> str:
    """The key of one leg's file beside the mixed recording's object (``leg`` "in" or "out")."""
    path = PurePosixPath(mixed_key)
    return str(path.with_name(path.stem + LEG_SUFFIXES[leg] + path.suffix))


def part_size(size: int, part: int = PART_SIZE, max_parts: int = 10_000) -> int:
    """The part size for a multipart upload of ``size`` bytes: ``part`` unless that needs more
    than S3's 10,000 parts."""
    need = -(-size // max_parts)
    return max(part, MIN_PART, need)


@dataclass(frozen=True)
class Fingerprint:
    """What a file's bytes are: their size, SHA-256, and the ETag an S3 store computes for
    them when sent whole (MD5) or in parts of ``part_bytes`` (MD5 of the parts' MD5s, "-N")."""

    size: int
    sha256: str
    etag: str
    part_bytes: int  # 0: sent in one PUT


class Fingerprinter:
    """Fingerprints bytes fed in order (one pass over the file, never all of it in memory)."""

    def __init__(self, size: int, threshold: int = MULTIPART_THRESHOLD, part: int = PART_SIZE) -> None:
        self.size = size
        self.part_bytes = part_size(size, part) if size > threshold else 0
        self._sha = hashlib.sha256()
        self._whole = hashlib.md5(usedforsecurity=False)
        self._part = hashlib.md5(usedforsecurity=False)
        self._in_part = 0
        self._part_digests: list[bytes] = []
        self._seen = 0

    def feed(self, data: bytes) -> None:
        self._sha.update(data)
        self._seen += len(data)
        if not self.part_bytes:
            self._whole.update(data)
            return
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_bytes - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self.part_bytes:
                self._part_digests.append(self._part.digest())
                self._part, self._in_part = hashlib.md5(usedforsecurity=False), 0

    def result(self) -> Fingerprint:
        if not self.part_bytes:
            return Fingerprint(self._seen, self._sha.hexdigest(), self._whole.hexdigest(), 0)
        digests = self._part_digests + ([self._part.digest()] if self._in_part else [])
        etag = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest() + f"-{len(digests)}"
        return Fingerprint(self._seen, self._sha.hexdigest(), etag, self.part_bytes)


def upload_problem(sent: Fingerprint, stored_size: int, stored_etag: str, stored_sha256: str) -> str | None:
    """Why the object the store now holds is not the bytes sent, or None when it is: the size,
    the ETag the store computed from what it received, and the SHA-256 kept with the object
    must all match."""
    etag = stored_etag.strip('"')
    if stored_size != sent.size:
        return f"the store holds {stored_size} bytes, {sent.size} were sent"
    if etag and etag != sent.etag:
        return f"the store's checksum (ETag {etag}) differs from the bytes sent ({sent.etag})"
    if stored_sha256 and stored_sha256 != sent.sha256:
        return f"the object's SHA-256 {stored_sha256[:16]}... differs from the file's {sent.sha256[:16]}..."
    return None


@dataclass(frozen=True)
class Retry:
    """When to try an upload again after ``failures`` failures in a row: doubling from ``first``
    seconds, never more than ``most``."""

    first: float = 5.0
    most: float = 300.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.most, self.first * 2.0 ** min(failures - 1, 30)))

    def next_try(self, failures: int, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.delay(failures))


@dataclass(frozen=True)
class Backlog:
    """Recordings whose audio is still only on a PBX's disk, waiting to upload."""

    count: int
    size_bytes: int
    oldest: dt.datetime | None  # when the oldest of them ended

    def describe(self, now: dt.datetime) -> str:
        if self.count == 0:
            return "no recording waiting to upload"
        age = "" if self.oldest is None else f", the oldest ended {_age(now - self.oldest)} ago"
        return f"{self.count} recording(s) waiting to upload ({self.size_bytes / 1e6:.1f} MB{age})"

    def stuck(self, now: dt.datetime, after: dt.timedelta) -> bool:
        """True when the oldest waiting recording ended longer than ``after`` ago."""
        return self.oldest is not None and now - self.oldest > after


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
