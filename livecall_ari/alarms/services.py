"""The unscreened-call alarm, wired: checks each batch of CDRs the follower imports, raises
alarms (an ERROR log line and an audit entry, once per call), lists and acknowledges them.

Only ``livecall serve``'s CDR follower checks, and only calls that started at or after the
alarm's table was created (``unscreened_watch``): history imported with ``livecall cdr import``,
or CDR files older than LiveCall, predate the gate and are never judged. The check runs inside
the batch's transaction, so an alarm is committed with the records that raised it: a failure
rolls both back and the follower reads the batch again.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Sequence

import peewee

from livecall_ari.alarms.core import (
    GateVerdict, TrunkCall, Unscreened, agent_of, comparable, is_trunk_leg, unscreened_calls,
)
from livecall_ari.alarms.models import AlarmWatch, UnscreenedAlarm
from livecall_ari.gate.models import GateDecision
from livecall_ari.storage.times import from_db, to_db

if TYPE_CHECKING:
    from livecall_ari.app import App
    from livecall_ari.asterisk.checks import Check

log = logging.getLogger("livecall.alarms")
ACTOR = "livecall"
_IDS_PER_QUERY = 500  # SQLite allows 999 parameters in one statement


def _trunk_call(start_utc: int, line: str) -> TrunkCall | None:
    """The fields the alarm needs from one CDR line (18, 21 or 24 columns), else None."""
    try:
        row = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None
    if len(row) not in (18, 21, 24):
        return None
    return TrunkCall(row[16], row[5], row[6], row[2], row[7], row[8], start_utc, row[21] if len(row) == 24 else "")


@dataclass
class UnscreenedWatch:
    """Checks the CDRs the follower imports against the gate's decisions (see module doc)."""

    trunk: str
    outside_line_prefix: str = ""
    normalise: Callable[[str], str] = str
    _since: int | None = field(default=None, init=False)

    @classmethod
    def from_app(cls, app: App) -> "UnscreenedWatch":
        prefix = app.settings.gate.outside_line_prefix
        return cls(app.settings.asterisk.trunk, prefix, partial(comparable, outside_line_prefix=prefix))

    def since(self) -> int:
        if self._since is None:
            row = AlarmWatch.get_or_none(AlarmWatch.id == 1)
            self._since = int(row.since_utc) if row is not None else int(dt.datetime.now(dt.timezone.utc).timestamp())
        return self._since

    def calls(self, lines: Sequence[tuple[int, str]]) -> list[TrunkCall]:
        """The agents' calls to the trunk among ``lines`` ((start_utc, CDR line) pairs) that are
        watched; the cheap text test first, so most lines are never parsed."""
        marker = f"PJSIP/{self.trunk}-"
        since = self.since()
        found = []
        for start, line in lines:
            if start < since or marker not in line:
                continue
            call = _trunk_call(start, line)
            if call is not None and is_trunk_leg(call.dstchannel, self.trunk) and agent_of(call.channel, self.trunk):
                found.append(call)
        return found

    def check(self, lines: Sequence[tuple[int, str]]) -> list[Unscreened]:
        """Raise the alarms of a batch of imported CDR lines; the alarms raised now (a call
        already alarmed is not raised again)."""
        calls = self.calls(lines)
        if not calls:
            return []
        ids = sorted({c.uniqueid for c in calls} | {c.call_id for c in calls if c.call_id})
        verdicts: list[GateVerdict] = []
        for i in range(0, len(ids), _IDS_PER_QUERY):
            query = GateDecision.select(GateDecision.call_id, GateDecision.number, GateDecision.decision).where(
                GateDecision.call_id.in_(ids[i : i + _IDS_PER_QUERY])
            ).order_by(GateDecision.decided_at)
            verdicts += [GateVerdict(str(r.call_id), str(r.number), str(r.decision)) for r in query]
        raised = []
        for alarm in unscreened_calls(calls, verdicts, self.trunk, self.normalise, self.outside_line_prefix):
            if raise_alarm(alarm):
                raised.append(alarm)
        return raised


def raise_alarm(alarm: Unscreened, at: dt.datetime | None = None) -> bool:
    """Store the alarm, log it at ERROR and write its audit entry; False (and nothing done)
    when the call already has an alarm."""
    from livecall_ari.protection import audit

    when = at or dt.datetime.now(dt.timezone.utc)
    inserted = (
        UnscreenedAlarm.insert(
            call_id=alarm.call_id, agent=alarm.agent, number=alarm.number, reason=alarm.reason,
            decided=alarm.decided, call_start=alarm.start_utc, raised_at=to_db(when),
        )
        .on_conflict_ignore()
        .as_rowcount()
        .execute()
    )
    if not inserted:
        return False
    log.error("ALARM unscreened call: %s", alarm.detail)
    audit.append(ACTOR, "alarm.unscreened_call", audit.subject_for_call(alarm.call_id), {
        "agent": alarm.agent, "number": alarm.number, "reason": alarm.reason, "decided": alarm.decided,
        "call_start": dt.datetime.fromtimestamp(alarm.start_utc, dt.timezone.utc).isoformat(),
    }, at=when)
    return True


def as_dict(row: UnscreenedAlarm) -> dict[str, Any]:
    raised, acked = from_db(row.raised_at), from_db(row.acknowledged_at)
    return {
        "id": int(row.id), "call_id": str(row.call_id), "agent": str(row.agent), "number": str(row.number),
        "reason": str(row.reason), "decided": str(row.decided),
        "call_start": dt.datetime.fromtimestamp(int(row.call_start), dt.timezone.utc).isoformat(),
        "raised_at": raised.isoformat() if raised else None,
        "acknowledged_at": acked.isoformat() if acked else None, "acknowledged_by": str(row.acknowledged_by),
    }


def alarms(*, open_only: bool = False) -> list[dict[str, Any]]:
    """The alarms, oldest first (only those not yet acknowledged with ``open_only``)."""
    query = UnscreenedAlarm.select().order_by(UnscreenedAlarm.id)
    if open_only:
        query = query.where(UnscreenedAlarm.acknowledged_at.is_null())
    return [as_dict(r) for r in query]


class AlarmError(Exception):
    """An acknowledgement that cannot be made; the message says why."""


def acknowledge(alarm_id: int, by: str, at: dt.datetime | None = None) -> dict[str, Any]:
    """Mark an alarm acknowledged by ``by`` (audited); the alarm as it now stands."""
    from livecall_ari.protection import audit

    if not by.strip():
        raise AlarmError("say who acknowledges the alarm (--by NAME)")
    when = at or dt.datetime.now(dt.timezone.utc)
    db: peewee.Database = UnscreenedAlarm._meta.database
    with db.atomic():
        row = UnscreenedAlarm.get_or_none(UnscreenedAlarm.id == alarm_id)
        if row is None:
            raise AlarmError(f"no unscreened-call alarm {alarm_id} (see `livecall alarms list`)")
        if row.acknowledged_at is not None:
            raise AlarmError(f"alarm {alarm_id} was already acknowledged by {row.acknowledged_by} at {from_db(row.acknowledged_at)}")
        UnscreenedAlarm.update(acknowledged_at=to_db(when), acknowledged_by=by.strip()).where(
            UnscreenedAlarm.id == alarm_id
        ).execute()
        audit.append(by.strip(), "alarm.acknowledged", audit.subject_for_call(str(row.call_id)),
                     {"alarm": alarm_id, "agent": str(row.agent), "number": str(row.number)}, at=when)
    log.info("unscreened-call alarm %d (call %s) acknowledged by %s", alarm_id, row.call_id, by.strip())
    return as_dict(UnscreenedAlarm.get_by_id(alarm_id))


def doctor_detail() -> tuple[bool, str]:
    """``livecall doctor``'s check: failing while any alarm is unacknowledged, naming each call."""
    open_alarms = alarms(open_only=True)
    if not open_alarms:
        return True, "no unacknowledged unscreened-call alarms"
    shown = "; ".join(
        f"#{a['id']} call {a['call_id']} from {a['agent']} to {a['number']} ({a['reason']})" for a in open_alarms[:5]
    )
    more = f"; and {len(open_alarms) - 5} more" if len(open_alarms) > 5 else ""
    return False, (f"{len(open_alarms)} call(s) reached the trunk unscreened: {shown}{more}; "
                   "acknowledge with `livecall alarms ack ID --by NAME` once the route around the gate is fixed")


def unscreened_check(app: App) -> Check:
    """The doctor's ``unscreened calls`` check."""
    from livecall_ari.asterisk.checks import Check

    try:
        app.database()
        ok, detail = doctor_detail()
    except Exception as exc:  # the database check reports the database itself
        return Check("unscreened calls", False, f"could not read the alarms: {exc}")
    if ok and not app.settings.charges.cdr_file:
        return Check("unscreened calls", False, "not watched: [charges] cdr_file is empty, so `livecall serve` "
                     "follows no CDRs and cannot catch a call routed around the gate", warning=True)
    return Check("unscreened calls", ok, detail)
