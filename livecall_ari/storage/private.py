"""Private files: every file LiveCall writes is readable by its owner only, whatever the umask.

Personal data lives in the database (and its WAL), subject access exports (decrypted recordings),
erasure certificates, list files and the audit anchors. A umask of 022 would leave each of them
readable by every local user, so they are created with their mode from the first byte. The files
Asterisk must read (its configuration, the prompts) are given their modes explicitly where they
are written, so a strict umask does not hide them from Asterisk either.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` as a folder; every folder made here (missing parents too) is 0700, whatever the
    umask; folders already there keep their modes."""
    missing = []
    for folder in [path, *path.parents]:
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        folder.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty, 0600 from the first byte (truncating what was there), so whatever
    opens it next writes into a private file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path
