"""What recording stores: each recording with its integrity facts, lawful basis and retention
date, the recording notice as the called party heard it, and each pause."""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration, create_tables
from livecall_ari.storage.numbers import NumberField, normalise_columns

LAWFUL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests")


class Recording(peewee.Model):
    call_id = peewee.CharField(index=True)  # the agent channel's Asterisk linkedid
    organisation = peewee.CharField(default="default")
    agent = peewee.CharField(index=True)
    number = NumberField(index=True)  # the other party, E.164 (or the extension, role-play)
    purpose = peewee.CharField()  # marketing, service, claims, internal, training
    tags = peewee.CharField(default="")  # comma-separated, e.g. "training"
    file = peewee.CharField(null=True)  # absolute path on the PBX host; null once deleted
    state = peewee.CharField(default="recording")  # recording, complete, declined, deleted, missing
    started_at = peewee.DateTimeField()  # UTC
    ended_at = peewee.DateTimeField(null=True)
    duration_ms = peewee.IntegerField(null=True)
    size_bytes = peewee.IntegerField(null=True)
    sha256 = peewee.CharField(null=True)
    encrypted = peewee.BooleanField(default=False)
    lawful_basis = peewee.CharField(default="legitimate_interests")  # one of LAWFUL_BASES
    lawful_basis_reason = peewee.TextField(default="")
    retention_until = peewee.DateField(null=True, index=True)
    direction = peewee.CharField(default="outbound")  # outbound (agents' calls, role-play) or inbound

    class Meta:
        table_name = "recordings"


class NoticeEvent(peewee.Model):
    """The recording notice on one call: played or not, which prompt, when, how long, keys."""

    call_id = peewee.CharField(index=True)
    number = NumberField(index=True)  # E.164
    prompt = peewee.CharField()
    played = peewee.BooleanField()
    started_at = peewee.DateTimeField()
    duration_ms = peewee.IntegerField(default=0)
    key_pressed = peewee.CharField(default="")  # "", the decline key, or the objection key
    outcome = peewee.CharField(default="heard")  # heard, declined, objected, hung_up, not_required

    class Meta:
        table_name = "recording_notices"


class RecordingPause(peewee.Model):
    recording = peewee.ForeignKeyField(Recording, backref="pauses", on_delete="CASCADE")
    paused_at = peewee.DateTimeField()
    resumed_at = peewee.DateTimeField(null=True)
    by = peewee.CharField(default="")

    class Meta:
        table_name = "recording_pauses"


MODELS: list[type[peewee.Model]] = [Recording, NoticeEvent, RecordingPause]
def _add_direction(db: peewee.Database) -> None:
    # A database made before inbound calls: every recording in it is of an outbound call.
    if "direction" not in {c.name for c in db.get_columns("recordings")}:
        db.execute_sql("ALTER TABLE recordings ADD COLUMN direction VARCHAR(255) NOT NULL DEFAULT 'outbound'")  # type: ignore[no-untyped-call]


MIGRATIONS = [
    Migration("recording-0001", create_tables(Recording, NoticeEvent, RecordingPause)),
    Migration("recording-0002-direction", _add_direction),
    # The dialplan passed the number as the trunk dials it (national form): E.164 since.
    Migration("recording-0003-numbers-e164",
              lambda db: normalise_columns(db, ("recordings", "number"), ("recording_notices", "number"))),
]
