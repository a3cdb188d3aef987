"""Wiring: the one place that builds LiveCall's objects from the settings and hands them down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import peewee

from livecall_ari import config
from livecall_ari.gate.core import Decider, StaticDecider


@dataclass
class App:
    """What a command needs: the settings, and the database opened on first use."""

    settings: config.Settings
    _db: peewee.Database | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, path: Path | str | None = None) -> "App":
        return cls(config.load(path))

    def database(self) -> peewee.Database:
        if self._db is None:
            from livecall_ari.storage import open_database

            self._db = open_database(self.settings.database_url())
            self._seal_audit_trail()
        return self._db

    def _seal_audit_trail(self) -> None:
        """Give the audit trail its key and anchor file (kept outside the database)."""
        import logging

        from livecall_ari.protection import audit
        from livecall_ari.protection.crypto import KeyFileError, audit_anchor_path, audit_key, audit_key_path

        new_key = not audit_key_path(self.settings).exists()
        try:
            seal = audit.AuditSeal(audit_key(self.settings), audit_anchor_path(self.settings))
        except (KeyFileError, OSError) as exc:
            # The hash chain still holds; `livecall doctor` and `audit verify` say what is missing.
            logging.getLogger("livecall.audit").warning("audit trail not sealed: %s", exc)
            seal = None
        audit.configure(seal, self._db, new_key=new_key, organisation=self.settings.organisation.id)

    def close(self) -> None:
        if self._db is not None:
            from livecall_ari.protection import audit

            audit.release(self._db)
            self._db.close()
            self._db = None

    def decider(self) -> Decider:
        """The decision the gate applies, as the settings choose it."""
        gate = self.settings.gate
        if gate.decider == "static":
            return StaticDecider(frozenset(gate.block_numbers), gate.outside_line_prefix)
        if gate.decider == "screening":
            from livecall_ari.screening.services import build_decider

            return build_decider(self)
        raise config.ConfigError(f"[gate] decider: unknown decider {gate.decider!r} (use screening or static)")
