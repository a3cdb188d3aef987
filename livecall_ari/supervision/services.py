"""The supervision service: authorise, keep the session's audit, ring a supervisor for the API.

Shared by the FastAGI entry (the feature codes' dialplan asks it at each step) and the HTTP API.
Every step is recorded in ``supervision_sessions``/``supervision_events`` and appended to the
audit trail before the dialplan is told to go on: a session that cannot be recorded does not
start (fail closed), and when the service does not answer at all the dialplan refuses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from livecall_ari.supervision.core import (
    ORIGIN_API,
    Authorisation,
    SupervisionPolicy,
    SupervisionRequest,
    agent_channel,
    authorise,
    chanspy_options,
    is_recorded,
    keeps_spy_recording,
    mode_for_digit,
    spy_recording,
)

log = logging.getLogger("livecall.supervision")

# Dialplan context an API session's call to the supervisor's phone runs in once answered.
API_CONTEXT = "livecall-supervision-api"


@dataclass(frozen=True)
class Session:
    """One supervision session (or refused attempt), as stored."""

    id: str
    supervisor: str
    agent: str
    origin: str
    requested_mode: str
    mode: str
    status: str
    requested_at: dt.datetime
    reasons: str = ""
    call_id: str | None = None
    agent_channel: str | None = None
    supervisor_channel: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    end_reason: str | None = None
    recording: str | None = None


@dataclass(frozen=True)
class SpyInstruction:
    """What the dialplan does next: ChanSpy on ``target`` (the agent's channel uniqueid; "" keeps
    the one in use) with ``options``, recording into ``recording`` (a file name in the monitor
    folder) or not, beeping the agent first or not. Whether a recording is muted is settled once
    it runs (:meth:`SupervisionService.sync`)."""

    target: str
    options: str
    recording: str
    beep: bool


class SessionStore(Protocol):
    def save(self, session: Session) -> None: ...

    def get(self, session_id: str) -> Session | None: ...

    def add_event(self, session_id: str, at: dt.datetime, event: str, mode: str, detail: Mapping[str, Any]) -> None: ...

    def recent(self, limit: int) -> list[Session]: ...

    def recorded_on_call(self, call_id: str) -> list[Session]: ...

    def events(self, session_id: str) -> list[dict[str, Any]]: ...


class AuditTrail(Protocol):
    def __call__(self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None) -> None: ...


class AriCaller(Protocol):
    """The part of :class:`livecall_ari.ari.client.AriClient` the API uses (FakeAri has it too)."""

    async def call(
        self,
        route: str,
        path_args: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any: ...


class SupervisionRefused(Exception):
    def __init__(self, session: Session) -> None:
        super().__init__(f"refused: {session.reasons}")
        self.session = session


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class SupervisionService:
    policy: SupervisionPolicy
    store: SessionStore
    audit: AuditTrail
    beep: bool = False
    record_monitoring: bool = False
    ring_timeout: int = 30
    # Where recorded sessions go, as Asterisk sees the filesystem (MixMonitor creates folders).
    recordings_dir: str = "/var/spool/asterisk/monitor/livecall"
    clock: Callable[[], dt.datetime] = _utc_now
    new_id: Callable[[], str] = _new_id
    # The state of a call's own recording (core.CALL_RECORDING_STATES), by call id; sessions
    # follow it. ``discard(path)`` deletes a session's recording (as Asterisk names it) and
    # the files beside it, inside the recordings folder only.
    call_state: Callable[[str], str] = lambda _call_id: "recorded"
    discard: Callable[[str], None] = lambda _path: None

    # -- steps of a session -------------------------------------------------------------------

    def request(
        self, request: SupervisionRequest, supervisor_channel: str | None = None
    ) -> tuple[Authorisation, Session | None]:
        """Authorise a request; allowed or refused, the attempt is recorded (not a PIN prompt)."""
        decision = authorise(request, self.policy)
        if decision.verdict == "pin":
            return decision, None
        now = self.clock()
        status = "refused" if not decision.allowed else ("ringing" if request.origin == ORIGIN_API else "waiting")
        session = Session(
            id=self.new_id(), supervisor=request.supervisor, agent=request.agent, origin=request.origin,
            requested_mode=request.mode, mode=request.mode, status=status, requested_at=now,
            reasons=",".join(decision.reasons), supervisor_channel=supervisor_channel,
        )
        event = "refused" if not decision.allowed else "authorised"
        try:
            self.store.save(session)
            self._event(session, event, {"reasons": list(decision.reasons), "origin": request.origin})
        except Exception:
            log.exception("could not record a supervision request by %s; refusing it", request.supervisor)
            return Authorisation("refuse", ("error",)), None
        return decision, session

    def join(self, session_id: str, endpoint: str, supervisor_channel: str) -> Session | None:
        """The supervisor answered the API's call: only the phone that was rung may join."""
        session = self.store.get(session_id)
        if session is None or session.status != "ringing" or session.supervisor != endpoint:
            log.warning("refusing to join supervision session %s from %s", session_id, endpoint)
            return None
        joined = dataclasses.replace(session, status="waiting", supervisor_channel=supervisor_channel)
        return joined if self._update(joined, "answered", {}) else None

    def attach(self, session_id: str, channels: str, call_id_of: Mapping[str, str],
               linked_id_of: Mapping[str, str] | None = None) -> SpyInstruction | None:
        """The agent is on a call: start spying on it. ``channels`` is what ``CHANNELS()``
        returned for the agent; ``call_id_of`` maps channel names to their uniqueids, and
        ``linked_id_of`` to their linkedids: the call's id is the linkedid (the uniqueid of the
        channel that began the call: the agent's own on an outbound call, the caller's on an
        inbound one), which the call's recording and decisions carry."""
        session = self.store.get(session_id)
        if session is None or session.status != "waiting":
            return None
        name = agent_channel(session.agent, channels)
        target = call_id_of.get(name or "", "")
        if name is None or not target:
            return None
        call_id = (linked_id_of or {}).get(name, "") or target
        recording = self._recording_for(session, session.mode, call_id)
        started = dataclasses.replace(
            session, status="active", call_id=call_id, agent_channel=name, started_at=self.clock(),
            recording=recording or session.recording,
        )
        if not self._update(started, "started", {"call_id": call_id, "agent_channel": name, "recorded": bool(recording)}):
            return None
        return SpyInstruction(target, chanspy_options(started.mode), recording, self.beep)

    def switch(self, session_id: str, digit: str) -> SpyInstruction | None:
        """The supervisor pressed 4, 5 or 6: change mode (and record that they did)."""
        session = self.store.get(session_id)
        mode = mode_for_digit(digit)
        if session is None or session.status != "active" or mode is None or session.call_id is None:
            return None
        recording = self._recording_for(session, mode, session.call_id)
        switched = dataclasses.replace(session, mode=mode, recording=recording or session.recording)
        if not self._update(switched, "switched", {"from": session.mode, "to": mode, "recorded": bool(recording)}):
            return None
        return SpyInstruction("", chanspy_options(mode), recording, False)

    def end(self, session_id: str, reason: str) -> Session | None:
        session = self.store.get(session_id)
        if session is None or session.status in ("ended", "refused"):
            return None
        ended = dataclasses.replace(session, status="ended", ended_at=self.clock(), end_reason=reason or "hangup")
        if not self._update(ended, "ended", {"reason": ended.end_reason, "was": session.status}):
            return None
        if ended.call_id and not keeps_spy_recording(self.call_state(ended.call_id)):
            # The call was never recorded, or its called party declined: nothing of it is kept
            # (the file is looked for even when the row names none: a recording stopped in a
            # race may still have written one).
            return self.discard_recording(ended, "call_not_recorded")
        return ended

    # -- following the call's own recording -----------------------------------------------------

    def sync(self, session_id: str) -> str:
        """A session's recording has just started (or restarted after a switch): what it must be
        now that it runs, from its call's recording: ``record``, ``mute`` or ``stop`` (a session
        unknown, ended or without a recording stops; fail closed)."""
        session = self.store.get(session_id)
        if session is None or session.status != "active" or not session.call_id:
            return "stop"
        if not session.recording:
            self.discard_recording(session, "call_declined")  # discarded while it was starting
            return "stop"
        wanted = spy_recording(session.mode, self.record_monitoring, self.call_state(session.call_id))
        if not wanted.record:
            self.discard_recording(session, "call_declined")
            return "stop"
        return "mute" if wanted.muted else "record"

    def follow_call(self, call_id: str, event: str = "") -> list[tuple[Session, str]]:
        """The call's own recording changed (``event``: it started, paused, resumed or was
        declined): each of its recorded sessions, with what its recording must now do
        (``record``, ``mute`` or ``stop``); a declined call's session recordings are discarded
        here. A pause mutes whatever the books say (they miss a pause whose mute failed and
        stopped the call's recording instead)."""
        state = self.call_state(call_id)
        if event == "pause" and state == "recorded":
            state = "paused"
        steps = []
        for session in self.store.recorded_on_call(call_id):
            running = is_recorded(session.mode, self.record_monitoring)  # else stopped on a switch
            wanted = spy_recording(session.mode, self.record_monitoring, state)
            if state == "declined":
                self.discard_recording(session, "call_declined")
            if running:
                steps.append((session, "stop" if not wanted.record else "mute" if wanted.muted else "record"))
        return steps

    def discard_recording(self, session: Session, why: str) -> Session:
        """Delete a session's recording (its file and the files beside it) and forget it."""
        try:
            self.discard(session.recording or self._recording_name(session))
        except Exception:
            log.exception("could not delete the supervision recording of session %s", session.id)
            return session
        if not session.recording:
            return session
        emptied = dataclasses.replace(session, recording=None)
        self._update(emptied, "recording_discarded", {"why": why, "file": Path(session.recording).name})
        return emptied

    # -- the API --------------------------------------------------------------------------------

    async def start_from_api(self, ari: AriCaller, supervisor: str, agent: str, mode: str) -> Session:
        """Authorise, then ring the supervisor's phone; once answered, the dialplan joins the call."""
        decision, session = self.request(SupervisionRequest(supervisor, agent, mode, ORIGIN_API))
        if session is None or not decision.allowed:
            raise SupervisionRefused(session or Session(
                "", supervisor, agent, ORIGIN_API, mode, mode, "refused", self.clock(), ",".join(decision.reasons)
            ))
        try:
            await ari.call("originate", params={
                "endpoint": f"PJSIP/{supervisor}",
                "context": API_CONTEXT,
                "extension": "s",
                "priority": 1,
                "callerId": f"Supervise {agent} <{agent}>",
                "timeout": self.ring_timeout,
            }, body={"variables": {"LIVECALL_SUPERVISION_SESSION": session.id}})
        except Exception as exc:
            log.warning("could not ring %s for supervision session %s: %r", supervisor, session.id, exc)
            self.end(session.id, "ring_failed")
            raise
        return session

    def session(self, session_id: str) -> Session | None:
        return self.store.get(session_id)

    def sessions(self, limit: int = 50) -> list[Session]:
        return self.store.recent(limit)

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return self.store.events(session_id)

    # -- internals ------------------------------------------------------------------------------

    def _recording_name(self, session: Session) -> str:
        return f"{self.recordings_dir.rstrip('/')}/supervision/{session.id}.wav"

    def _recording_for(self, session: Session, mode: str, call_id: str) -> str:
        """The file to record ``mode`` into on this call, or "" (see core.spy_recording)."""
        wanted = spy_recording(mode, self.record_monitoring, self.call_state(call_id))
        return self._recording_name(session) if wanted.record else ""

    def _update(self, session: Session, event: str, detail: Mapping[str, Any]) -> bool:
        try:
            self.store.save(session)
            self._event(session, event, detail)
        except Exception:
            log.exception("could not record supervision event %s of session %s; stopping it", event, session.id)
            return False
        return True

    def _event(self, session: Session, event: str, detail: Mapping[str, Any]) -> None:
        at = self.clock()
        self.store.add_event(session.id, at, event, session.mode, detail)
        details = {"session": session.id, "agent": session.agent, "mode": session.mode, "call_id": session.call_id,
                   "origin": session.origin, **detail}
        self.audit(session.supervisor, f"supervision.{event}", f"agent:{session.agent}", details)
        log.info(json.dumps({"event": f"supervision_{event}", "supervisor": session.supervisor, **details},
                            sort_keys=True, default=str))

