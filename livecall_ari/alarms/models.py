"""What the unscreened-call alarm stores: one alarm per call, until an admin acknowledges it,
and since when calls are watched (the calls of CDR files older than LiveCall's alarm are not
judged: they predate the gate)."""

from __future__ import annotations

import datetime as dt

import peewee

from livecall_ari.storage.migrations import Migration, create_tables


class UnscreenedAlarm(peewee.Model):
    id = peewee.AutoField()
    call_id = peewee.CharField(unique=True)  # the agent channel's uniqueid (the gate's call id)
    agent = peewee.CharField()  # the agent's PJSIP endpoint
    number = peewee.CharField()  # what reached the trunk ("&" between several)
    reason = peewee.CharField()  # core.REASONS key
    decided = peewee.CharField(default="")  # the number the gate decided, if it did
    call_start = peewee.BigIntegerField()  # UTC epoch seconds (the CDR's start)
    raised_at = peewee.DateTimeField()  # naive UTC
    acknowledged_at = peewee.DateTimeField(null=True)  # naive UTC
    acknowledged_by = peewee.CharField(default="")

    class Meta:
        table_name = "unscreened_alarms"


class AlarmWatch(peewee.Model):
    """One row: calls that started at or after ``since_utc`` are judged."""

    id = peewee.IntegerField(primary_key=True)
    since_utc = peewee.BigIntegerField()

    class Meta:
        table_name = "unscreened_watch"


def _create(db: peewee.Database) -> None:
    db.create_tables([UnscreenedAlarm, AlarmWatch])
    with db.bind_ctx([AlarmWatch]):
        AlarmWatch.insert(id=1, since_utc=int(dt.datetime.now(dt.timezone.utc).timestamp())).on_conflict_ignore().execute()


MODELS: list[type[peewee.Model]] = [UnscreenedAlarm, AlarmWatch]
MIGRATIONS = [Migration("alarms-0001-unscreened", _create)]
