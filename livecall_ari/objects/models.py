"""Where each recording file's object lives once uploaded: one row per file (the mixed recording,
and each file named after it, such as a leg), so any PBX's portal, retention, erasure and
subject access export can find the audio another PBX recorded. A recording with no row for its
mixed file (``part`` empty) is still only on its PBX's disk: the backlog."""

from __future__ import annotations

import peewee

from livecall_ari.storage.migrations import Migration, create_tables


class RecordingObject(peewee.Model):
    recording_id = peewee.IntegerField(index=True)  # recordings.id
    part = peewee.CharField(default="")  # "" the recording itself; else the rest of a sibling's name ("-in.wav")
    backend = peewee.CharField()  # "s3"
    bucket = peewee.CharField()
    key = peewee.CharField(max_length=1024)
    size_bytes = peewee.BigIntegerField()
    sha256 = peewee.CharField()
    etag = peewee.CharField(default="")
    node = peewee.CharField(default="")  # [asterisk] system_name of the PBX that uploaded it
    uploaded_at = peewee.DateTimeField()  # UTC

    class Meta:
        table_name = "recording_objects"
        indexes = ((("recording_id", "part"), True),)


MODELS: list[type[peewee.Model]] = [RecordingObject]
MIGRATIONS = [Migration("objects-0001", create_tables(RecordingObject))]
