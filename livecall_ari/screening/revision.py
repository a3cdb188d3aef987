"""A tiny shared file that tells long-running deciders "screening data changed".

Asking SQLite (``PRAGMA data_version``) costs several microseconds per call in WAL mode (it
takes file locks). Instead, each writer, after committing, writes the new revision number
(8 bytes) into ``<lists dir>/revision``; each decider maps that file and compares 8 bytes per
call (well under a microsecond). The database stays the truth: the file only says when to
look, and the decider also looks on its own at least once a second in case a writer died
between its commit and the write below.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

_FORMAT = struct.Struct("<q")


class RevisionFile:
    """Publish (writers) and read (deciders) the latest screening revision."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    def _ensure(self) -> None:
        from livecall_ari.storage.private import FILE_MODE, private_dir

        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            if os.fstat(fd).st_size < _FORMAT.size:
                os.pwrite(fd, _FORMAT.pack(0), 0)
        finally:
            os.close(fd)

    def publish(self, revision: int) -> None:
        self._ensure()
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.pwrite(fd, _FORMAT.pack(revision), 0)
        finally:
            os.close(fd)

    def read(self) -> int:
        """The last published revision (0 if none); one 8-byte read from a shared mapping."""
        if self._map is None:
            self._ensure()
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), _FORMAT.size, prot=mmap.PROT_READ)
        return int(_FORMAT.unpack_from(self._map)[0])

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
