"""What the portal stores: its users, their sessions and failed logins, and coaching (time-
stamped comments and scorecards on recordings).

Sessions are kept by the SHA-256 of their cookie's random token, so a copy of the database does
not let anyone in; a disabled user's sessions are deleted with the change. Times are naive UTC.
"""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration, create_tables


class PortalUser(peewee.Model):
    id = peewee.AutoField()
    username = peewee.CharField(unique=True)
    role = peewee.CharField()  # admin, supervisor, agent, auditor
    # The user's phone: an agent sees the calls of this extension; a supervisor's phone is rung
    # to listen, whisper or barge.
    extension = peewee.CharField(default="")
    password_hash = peewee.CharField()  # argon2id, with its parameters
    disabled = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField()
    password_changed_at = peewee.DateTimeField()
    # The organisation whose portal the user logs into (several may share a database); "" for a
    # user made before the column, who belongs to the first organisation they log into.
    organisation = peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "portal_users"


class PortalSession(peewee.Model):
    token_hash = peewee.CharField(primary_key=True)  # sha256 of the cookie's token
    user = peewee.ForeignKeyField(PortalUser, backref="sessions", on_delete="CASCADE")
    csrf = peewee.CharField()  # the token every form of this session carries
    created_at = peewee.DateTimeField()
    last_seen = peewee.DateTimeField()
    expires_at = peewee.DateTimeField(index=True)
    address = peewee.CharField(default="")

    class Meta:
        table_name = "portal_sessions"


class LoginFailure(peewee.Model):
    id = peewee.AutoField()
    username = peewee.CharField(index=True)
    address = peewee.CharField(index=True)
    at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "portal_login_failures"


class CoachingComment(peewee.Model):
    id = peewee.AutoField()
    recording = peewee.IntegerField(index=True)  # recordings.id
    agent = peewee.CharField(index=True)
    author = peewee.CharField()
    offset_ms = peewee.IntegerField(default=0)  # where in the recording
    text = peewee.TextField()
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "portal_coaching_comments"


class Scorecard(peewee.Model):
    id = peewee.AutoField()
    recording = peewee.IntegerField(index=True)
    agent = peewee.CharField()
    author = peewee.CharField()
    scores = peewee.TextField()  # JSON: criterion -> 1..5 (core.SCORECARD)
    note = peewee.TextField(default="")
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "portal_scorecards"
        indexes = ((("agent", "created_at"), False),)


def _search_indexes(db: peewee.Database) -> None:
    # The call search filters gate_decisions by agent, purpose or decision and pages newest
    # first by id; these keep each filter an index walk with a million calls.
    for name, columns in (("portal_gate_agent", "agent, id"), ("portal_gate_purpose", "purpose, id"),
                          ("portal_gate_decision", "decision, id")):
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON gate_decisions ({columns})")  # type: ignore[no-untyped-call]


MODELS: list[type[peewee.Model]] = [PortalUser, PortalSession, LoginFailure, CoachingComment, Scorecard]
def _user_organisations(db: peewee.Database) -> None:
    from livecall_ari.storage.migrations import add_column_once

    add_column_once(db, "portal_users", "organisation", peewee.CharField(default="", constraints=[peewee.SQL("DEFAULT ''")]))


MIGRATIONS: list[Migration] = [
    Migration("portal-0001", create_tables(*MODELS)),
    Migration("portal-0002-call-search-indexes", _search_indexes),
    Migration("portal-0003-user-organisations", _user_organisations),
]
