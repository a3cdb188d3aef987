"""Where this host finds a file Asterisk names: its path as Asterisk sees it, under ``[asterisk] root``."""

from __future__ import annotations

from pathlib import Path

from livecall_ari.config import Settings


def cdr_file_on_host(settings: Settings) -> Path | None:
    """``[charges] cdr_file`` on this host, or None when it is empty.

    The setting is a path as Asterisk sees it (``/var/log/asterisk/cdr-csv/Master.csv``), so it
    is mapped through ``[asterisk] root`` (a chroot, a container, the demo). A path that already
    lies under the root is plainly a host path (Asterisk cannot see the root's own folder): it
    is taken as it is rather than mapped twice.
    """
    from livecall_ari.recording.files import on_host

    if not settings.charges.cdr_file:
        return None
    given = Path(settings.charges.cdr_file)
    root = settings.asterisk_root()
    if str(root) not in ("", "/") and given.is_relative_to(root):
        return given
    return on_host(settings, settings.charges.cdr_file)
