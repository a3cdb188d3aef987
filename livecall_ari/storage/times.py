"""Times in the database: stored as naive UTC (the same in SQLite and PostgreSQL), read back
as timezone-aware UTC."""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def to_db(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("times stored must carry a time zone")
    return at.astimezone(UTC).replace(tzinfo=None)


def from_db(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
