import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from livecall_ari.ari.client import AriError
from livecall_ari.ari.testing import FakeAri
from livecall_ari.config import Settings, SupervisionSettings
from livecall_ari.asterisk.render import INCLUDED_FROM, render_all
from livecall_ari.storage import open_database
from livecall_ari.supervision.core import SupervisionRequest, policy_from_settings
from livecall_ari.supervision.services import API_CONTEXT, SupervisionRefused, SupervisionService
from livecall_ari.supervision.store import DatabaseSessionStore

AT = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, dict[str, Any]]] = []

    def __call__(self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None) -> None:
        self.entries.append((actor, action, subject, dict(details or {})))


class BrokenStore(DatabaseSessionStore):
    def add_event(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("database is locked")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[None]:
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield
    database.close()


def service(audit: Audit, store: DatabaseSessionStore | None = None, **kw: Any) -> SupervisionService:
    ticks = iter(AT + dt.timedelta(seconds=n) for n in range(1000))
    ids = iter(f"s{n}" for n in range(1000))
    settings = SupervisionSettings(supervisors=["2001"], pins=kw.pop("pins", []))
    return SupervisionService(policy_from_settings(settings), store or DatabaseSessionStore(), audit,
                              clock=lambda: next(ticks), new_id=lambda: next(ids), recordings_dir="/rec", **kw)


def test_a_session_from_a_phone_is_audited_at_every_step(db: None) -> None:
    audit = Audit()
    svc = service(audit)
    decision, session = svc.request(SupervisionRequest("2001", "1001", "listen"), "PJSIP/2001-00000002")
    assert decision.allowed and session is not None and session.status == "waiting"

    spy = svc.attach(session.id, "PJSIP/1001-00000001", {"PJSIP/1001-00000001": "call-1"})
    assert spy is not None and (spy.target, spy.options, spy.recording, spy.beep) == ("call-1", "uqEX", "", False)
    barge = svc.switch(session.id, "6")
    assert barge is not None and barge.options == "uqEXB" and barge.recording == "/rec/supervision/s0.wav"
    assert svc.switch(session.id, "7") is None
    svc.end(session.id, "call_ended")
    assert svc.end(session.id, "again") is None  # ending twice changes nothing

    stored = svc.session(session.id)
    assert stored is not None
    assert (stored.status, stored.mode, stored.call_id, stored.end_reason, stored.recording) == (
        "ended", "barge", "call-1", "call_ended", "/rec/supervision/s0.wav")
    assert stored.started_at == AT + dt.timedelta(seconds=2) and stored.ended_at is not None
    assert [(e["event"], e["mode"]) for e in svc.events(session.id)] == [
        ("authorised", "listen"), ("started", "listen"), ("switched", "barge"), ("ended", "barge")]
    assert [(a, action, subject) for a, action, subject, _ in audit.entries] == [
        ("2001", "supervision.authorised", "agent:1001"), ("2001", "supervision.started", "agent:1001"),
        ("2001", "supervision.switched", "agent:1001"), ("2001", "supervision.ended", "agent:1001")]
    assert audit.entries[2][3]["from"] == "listen" and audit.entries[2][3]["call_id"] == "call-1"


def test_a_refusal_is_recorded_and_a_pin_prompt_is_not(db: None) -> None:
    audit = Audit()
    svc = service(audit, pins=["2001: 4321"])
    assert svc.request(SupervisionRequest("2001", "1001", "listen")) [0].verdict == "pin"
    decision, refused = svc.request(SupervisionRequest("2002", "1001", "whisper"))
    assert not decision.allowed and refused is not None and refused.status == "refused"
    assert [s.id for s in svc.sessions()] == [refused.id]
    assert [e[1] for e in audit.entries] == ["supervision.refused"]
    # A refused session can never start.
    assert svc.attach(refused.id, "PJSIP/1001-00000001", {"PJSIP/1001-00000001": "call-1"}) is None


def test_attach_only_spies_on_the_agents_own_channel(db: None) -> None:
    svc = service(Audit(), beep=True)
    _, session = svc.request(SupervisionRequest("2001", "1001", "whisper"))
    assert session is not None
    assert svc.attach(session.id, "PJSIP/1002-00000001", {"PJSIP/1002-00000001": "c"}) is None
    spy = svc.attach(session.id, "PJSIP/1001-00000004", {"PJSIP/1001-00000004": "c4"})
    assert spy is not None and spy.beep and spy.options == "uqEXw"


def test_a_session_that_cannot_be_recorded_does_not_start(db: None) -> None:
    audit = Audit()
    svc = service(audit, store=BrokenStore())
    decision, session = svc.request(SupervisionRequest("2001", "1001", "listen"))
    assert (decision.verdict, decision.reasons, session) == ("refuse", ("error",), None)


def test_the_api_rings_the_supervisor_and_only_that_phone_may_join(db: None) -> None:
    ari = FakeAri()
    svc = service(Audit(), ring_timeout=20)
    session = asyncio.run(svc.start_from_api(ari, "2001", "1001", "barge"))
    assert session.status == "ringing"
    [(name, (route, path_args, params, body))] = ari.requests
    assert (name, route, path_args) == ("call", "originate", {})
    assert params == {"endpoint": "PJSIP/2001", "context": API_CONTEXT, "extension": "s", "priority": 1,
                      "callerId": "Supervise 1001 <1001>", "timeout": 20}
    assert body == {"variables": {"LIVECALL_SUPERVISION_SESSION": session.id}}
    assert svc.join(session.id, "2002", "PJSIP/2002-1") is None
    joined = svc.join(session.id, "2001", "PJSIP/2001-1")
    assert joined is not None and (joined.status, joined.mode) == ("waiting", "barge")
    assert svc.join(session.id, "2001", "PJSIP/2001-2") is None  # answered once only


def test_the_api_refuses_without_ringing_and_ends_a_session_it_could_not_ring(db: None) -> None:
    ari = FakeAri()
    svc = service(Audit())
    with pytest.raises(SupervisionRefused) as refused:
        asyncio.run(svc.start_from_api(ari, "2002", "1001", "listen"))
    assert refused.value.session.reasons == "not_supervisor" and ari.requests == []
    broken = FakeAri(fail_with=AriError(404, "Allocation failed"))
    with pytest.raises(AriError):
        asyncio.run(svc.start_from_api(broken, "2001", "1001", "listen"))
    assert [(s.status, s.end_reason) for s in svc.sessions() if s.supervisor == "2001"] == [("ended", "ring_failed")]


def test_the_dialplan_is_generated_with_the_configured_codes() -> None:
    settings = Settings()
    settings.supervision.whisper_code = "#55"
    [conf] = [f for f in render_all(settings) if f.name == "extensions_supervision_livecall.conf"]
    assert INCLUDED_FROM[conf.name] == "extensions.conf"
    # Strict patterns (an agent's extension of 2 to 6 digits), never _X. (issue 13).
    for n in range(2, 7):
        assert f"exten => _*222{'X' * n},1,Set(LIVECALL_SPY_MODE=listen)" in conf.text
        assert f"exten => _#55{'X' * n},1,Set(LIVECALL_SPY_MODE=whisper)" in conf.text
    assert "X.," not in conf.text.split("[livecall-supervise]")[0]
    assert " same => n,Set(LIVECALL_SPY_AGENT=${FILTER(0-9,${EXTEN:3})})" in conf.text
    assert f"AGI(agi://127.0.0.1:{settings.fastagi.port}/supervision,authorise," in conf.text
    # Fail closed: without LiveCall's "allow" the only way on is the refusal.
    assert "same => n(refuse),Progress()" in conf.text and "Hangup(21)" in conf.text


def _barging(svc: SupervisionService) -> str:
    _, session = svc.request(SupervisionRequest("2001", "1001", "barge"), "PJSIP/2001-00000002")
    assert session is not None
    return session.id


def test_a_barge_follows_its_calls_recording_declined_paused_and_resumed(db: None) -> None:
    state = {"call-1": "pending"}
    discarded: list[str] = []
    svc = service(Audit(), call_state=state.__getitem__, discard=discarded.append)
    sid = _barging(svc)
    spy = svc.attach(sid, "PJSIP/1001-00000001", {"PJSIP/1001-00000001": "call-1"})
    # Not answered yet: recorded, but muted until the call's own recording starts.
    assert spy is not None and spy.recording == "/rec/supervision/s0.wav"
    assert svc.sync(sid) == "mute"
    state["call-1"] = "recorded"
    assert [(s.id, step) for s, step in svc.follow_call("call-1", "started")] == [(sid, "record")]
    # A pause mutes it even when the books missed the pause (its mute failed, the call's
    # recording was stopped instead); the resume unmutes it.
    assert [step for _, step in svc.follow_call("call-1", "pause")] == ["mute"]
    state["call-1"] = "paused"
    assert [step for _, step in svc.follow_call("call-1", "resume")] == ["mute"]
    state["call-1"] = "recorded"
    assert [step for _, step in svc.follow_call("call-1", "resume")] == ["record"]
    assert discarded == []
    # Declined: stopped, its file deleted and forgotten; nothing left to follow.
    state["call-1"] = "declined"
    assert [step for _, step in svc.follow_call("call-1", "declined")] == ["stop"]
    assert discarded == ["/rec/supervision/s0.wav"]
    stored = svc.session(sid)
    assert stored is not None and stored.recording is None
    assert svc.follow_call("call-1") == []
    assert "recording_discarded" in [e["event"] for e in svc.events(sid)]


def test_a_barge_on_a_declined_call_is_not_recorded_and_an_unrecorded_calls_is_thrown_away(db: None) -> None:
    state = {"call-1": "declined", "call-2": "pending"}
    discarded: list[str] = []
    svc = service(Audit(), call_state=state.__getitem__, discard=discarded.append)
    first = _barging(svc)
    spy = svc.attach(first, "PJSIP/1001-00000001", {"PJSIP/1001-00000001": "call-1"})
    assert spy is not None and spy.recording == ""
    second = _barging(svc)
    spy = svc.attach(second, "PJSIP/1001-00000003", {"PJSIP/1001-00000003": "call-2"})
    assert spy is not None and spy.recording == "/rec/supervision/s1.wav"
    # The call ended without ever being recorded (its purpose is not): the barge goes too.
    ended = svc.end(second, "call_ended")
    assert ended is not None and ended.recording is None and discarded[-1] == "/rec/supervision/s1.wav"


def test_sync_stops_a_recording_its_session_no_longer_has(db: None) -> None:
    state = {"call-1": "recorded"}
    svc = service(Audit(), call_state=state.__getitem__)
    sid = _barging(svc)
    assert svc.sync(sid) == "stop"  # not attached yet
    svc.attach(sid, "PJSIP/1001-00000001", {"PJSIP/1001-00000001": "call-1"})
    assert svc.sync(sid) == "record"
    state["call-1"] = "declined"
    assert svc.sync(sid) == "stop" and svc.sync("nobody") == "stop"
