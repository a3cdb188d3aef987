"""Database models of this capability (filled in by its issue)."""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration

MODELS: list[type[peewee.Model]] = []
MIGRATIONS: list[Migration] = []
