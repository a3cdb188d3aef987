"""What supervision stores: one row per session (or refused attempt) and one per event in it.

A session row says who monitored whom, on which call, how it started and ended; its events are
the audit of what happened in order: ``requested``, ``refused``, ``started`` (with the mode),
``switched`` (each mode change) and ``ended``.
"""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration, create_tables


class SupervisionSession(peewee.Model):
    id = peewee.CharField(primary_key=True)
    supervisor = peewee.CharField(index=True)
    agent = peewee.CharField(index=True)
    origin = peewee.CharField()  # "phone" (feature code) or "api"
    requested_mode = peewee.CharField()
    mode = peewee.CharField()  # the current (or last) mode
    # refused, ringing, waiting (authorised, the agent not on a call yet), active, ended
    status = peewee.CharField()
    reasons = peewee.TextField(default="")  # comma-separated, for refusals
    call_id = peewee.CharField(null=True, index=True)  # the agent's channel uniqueid
    agent_channel = peewee.CharField(null=True)
    supervisor_channel = peewee.CharField(null=True)
    requested_at = peewee.DateTimeField(index=True)  # UTC
    started_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    end_reason = peewee.CharField(null=True)
    recording = peewee.CharField(null=True)  # the file (as Asterisk sees it), when recorded
    # [organisation] id; "" for sessions from before the column
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "supervision_sessions"


class SupervisionEvent(peewee.Model):
    id = peewee.AutoField()
    session = peewee.CharField(index=True)
    at = peewee.DateTimeField()
    event = peewee.CharField()
    mode = peewee.CharField(default="")
    detail = peewee.TextField(default="")

    class Meta:
        table_name = "supervision_events"


MODELS: list[type[peewee.Model]] = [SupervisionSession, SupervisionEvent]
def _organisations(db: peewee.Database) -> None:
    from livecall_ari.storage.migrations import add_column_once

    add_column_once(db, "supervision_sessions", "organisation", peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")]))


MIGRATIONS: list[Migration] = [
    Migration("supervision-0001-sessions", create_tables(SupervisionSession, SupervisionEvent)),
    Migration("supervision-0002-organisations", _organisations),
]
