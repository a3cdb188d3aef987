"""Database access: one peewee database opened from a URL, and ordered migrations."""

from livecall_ari.storage.database import open_database
from livecall_ari.storage.migrations import Migration, migrate

__all__ = ["Migration", "migrate", "open_database"]
