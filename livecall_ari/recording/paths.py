"""Recording paths proven to lie under the recordings folder.

A recording's path arrives from outside LiveCall's control: from Asterisk over FastAGI
(``recording-start``), from a database row, from a file found in the folder. Before LiveCall
reads, seals, serves, exports or deletes a file, the path is mapped to this host (through
``[asterisk] root``), resolved with every symlink followed, and must then lie inside the
recordings folder (itself resolved the same way), or it is refused. Only a
:class:`RecordingPath` travels on, so a row pointing at ``/etc/shadow``, a ``..`` segment or a
symlink planted in the folder that points outside is never followed.

What it does not cover: a process that can write inside the recordings folder could swap a
folder for a symlink between the check and the use; the folder belongs to Asterisk's user.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from livecall_ari.config import Settings
from livecall_ari.recording.files import recording_files

log = logging.getLogger("livecall.recording")


class PathRefused(ValueError):
    """A recording path outside the recordings folder; the message says which and why."""


@dataclass(frozen=True)
class RecordingPath:
    """A recording file: its path as Asterisk wrote it, and where it really is on this host
    (symlinks resolved), which lies inside the recordings folder."""

    asterisk: str
    host: Path


@dataclass(frozen=True)
class RecordingsFolder:
    """The recordings folder as Asterisk sees it (``asterisk_dir``), and where Asterisk's
    filesystem is seen from this host (``asterisk_root``: ``/``, or the sandbox's chroot)."""

    asterisk_dir: str
    asterisk_root: Path = Path("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> "RecordingsFolder":
        return cls(settings.recordings_dir(), settings.asterisk_root())

    def to_host(self, asterisk_path: str) -> Path:
        """Where a path as Asterisk sees it is on this host (not resolved)."""
        if str(self.asterisk_root) in ("", "/"):
            return Path(asterisk_path)
        return self.asterisk_root / asterisk_path.lstrip("/")

    @property
    def host_dir(self) -> Path:
        """The folder on this host, not resolved (the catch-up walks it)."""
        return self.to_host(self.asterisk_dir)

    def root(self) -> Path:
        """The folder on this host with every symlink resolved, as it is now (it may be
        created, or replaced by a link, after LiveCall starts)."""
        return Path(os.path.realpath(self.host_dir))

    def confine(self, asterisk_path: str) -> RecordingPath:
        """The path as a :class:`RecordingPath`, or :class:`PathRefused` when it is not absolute,
        or resolves (symlinks included) to somewhere outside the recordings folder."""
        if not asterisk_path:
            raise PathRefused("no recording path given")
        if "\x00" in asterisk_path or not asterisk_path.startswith("/"):
            raise PathRefused(f"recording path {asterisk_path[:200]!r} is not an absolute path")
        real = Path(os.path.realpath(self.to_host(asterisk_path)))
        root = self.root()
        if real == root or not real.is_relative_to(root):
            raise PathRefused(f"recording path {asterisk_path[:200]!r} resolves to {str(real)[:200]!r}, "
                              f"outside the recordings folder {root}")
        return RecordingPath(asterisk_path, real)

    def locate(self, asterisk_path: str, why: str) -> RecordingPath | None:
        """:meth:`confine`, or None with an ERROR log line saying ``why`` it was wanted."""
        try:
            return self.confine(asterisk_path)
        except PathRefused as exc:
            log.error("refused to %s: %s", why, exc)
            return None

    def files(self, path: RecordingPath) -> list[Path]:
        """The recording and the files beside it named after it (recording.files.recording_files),
        each resolved; one that leads outside the folder (a planted symlink) is left out, with
        an ERROR log line."""
        root = self.root()
        found: list[Path] = []
        for candidate in recording_files(path.host):
            real = Path(os.path.realpath(candidate))
            if real != root and real.is_relative_to(root):
                found.append(real)
            else:
                log.error("refused to touch %s beside recording %s: it resolves to %s, outside the recordings "
                          "folder %s", candidate, path.asterisk, real, root)
        return list(dict.fromkeys(found))
