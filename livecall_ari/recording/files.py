"""Where a recording's files are: Asterisk writes them, LiveCall reads them, maybe through the
sandbox's chroot (``[asterisk] root``). Rows keep the path as Asterisk sees it."""

from __future__ import annotations

import shutil
from pathlib import Path

from livecall_ari.config import Settings


def on_host(settings: Settings, asterisk_path: str) -> Path:
    """The host path of a file Asterisk wrote at ``asterisk_path``."""
    root = settings.asterisk_root()
    if str(root) in ("", "/"):
        return Path(asterisk_path)
    return root / asterisk_path.lstrip("/")


def as_asterisk_sees(settings: Settings, host_path: Path) -> str:
    """The inverse of :func:`on_host`, for paths an admin gives on this host."""
    root = settings.asterisk_root().resolve()
    resolved = host_path.resolve()
    if str(root) not in ("", "/") and resolved.is_relative_to(root):
        return "/" + str(resolved.relative_to(root))
    return str(resolved)


def recording_files(path: Path) -> list[Path]:
    """The recording and the files beside it named after it (``<stem>-in.wav``,
    ``<stem>-out.wav``, ``<stem>.json``...), those that exist."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    found = [path] if path.exists() else []
    if path.parent.is_dir():
        found += [p for p in path.parent.iterdir() if p != path and (p.name.startswith(stem + "-") or p.name.startswith(stem + "."))]
    return found


def free_bytes(path: Path) -> int:
    """Free space on the disk holding ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 0


def disk_report(root: Path, free: int, min_free: int) -> str:
    """The alarm for a recordings disk with ``free`` bytes left (``min_free`` is where it starts)."""
    from livecall_ari.recording.core import DISK_FULL_BYTES

    state = "full" if free < DISK_FULL_BYTES else "nearly full"
    return (f"the recordings disk is {state}: {free / 2**20:,.1f} MiB free in {root} (alarm below "
            f"{min_free / 2**20:,.0f} MiB, [recording] min_free_mb); recordings will be cut short")
