"""What the gate stores: one row per decision, with its reasons and evidence."""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration, create_tables
from livecall_ari.storage.numbers import NumberField, normalise_columns


class GateDecision(peewee.Model):
    call_id = peewee.CharField(index=True)
    agent = peewee.CharField()
    dialled = peewee.CharField()  # as the agent dialled it
    number = NumberField(index=True)  # E.164, or the dialled digits when not a valid number
    purpose = peewee.CharField()
    caller_id = peewee.CharField(null=True)
    organisation = peewee.CharField(default="default")
    decision = peewee.CharField()  # "allow" or "block"
    reasons = peewee.TextField(default="")  # comma-separated reason codes
    evidence = peewee.TextField(default="{}")  # JSON object: lists and versions used
    entry = peewee.CharField()  # "stasis", "agi" or "cli"
    decided_at = peewee.DateTimeField(index=True)  # UTC
    elapsed_us = peewee.IntegerField(default=0)

    class Meta:
        table_name = "gate_decisions"


MODELS: list[type[peewee.Model]] = [GateDecision]
MIGRATIONS = [
    Migration("gate-0001-decisions", create_tables(GateDecision)),
    Migration("gate-0002-numbers-e164", lambda db: normalise_columns(db, ("gate_decisions", "number"))),
]
