"""The audit trail's entry point for every capability (implemented by the data-protection issue).

Call ``append(actor, action, subject, details)`` after the database is open (models bound):
for every playback or download of a recording, list change, monitoring session, export,
erasure and retention deletion.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping


def append(
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    *,
    at: dt.datetime | None = None,
) -> None:
    """Append one entry to the tamper-evident audit trail (stub until issue 7 lands)."""
    return None
