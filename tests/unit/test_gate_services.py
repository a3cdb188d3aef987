import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from livecall_ari.gate.core import CallAttempt, Decision, StaticDecider
from livecall_ari.gate.models import GateDecision
from livecall_ari.gate.services import DatabaseRecorder, GateService
from livecall_ari.storage import open_database

AT = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)


def attempt(dialled: str) -> CallAttempt:
    return CallAttempt("call-1", "1001", dialled, "marketing", AT, "+441632960000")


class BrokenRecorder:
    def record(self, attempt: CallAttempt, decision: Decision, entry: str, elapsed_us: int) -> None:
        raise OSError("database is locked")


class BrokenDecider:
    def decide(self, attempt: CallAttempt) -> Decision:
        raise RuntimeError("list file unreadable")


def test_decisions_are_recorded_with_reasons_and_evidence(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    service = GateService(StaticDecider(frozenset({"07700900123"})), DatabaseRecorder())
    service.screen(attempt("07700900123"), "stasis")
    service.screen(attempt("02079460018"), "agi")
    rows = list(GateDecision.select().order_by(GateDecision.id))
    assert [(r.number, r.decision, r.reasons, r.entry) for r in rows] == [
        ("07700900123", "block", "blocked", "stasis"),  # no valid number (Ofcom's drama range): as dialled
        ("+442079460018", "allow", "", "agi"),  # stored as the number it is
    ]
    assert json.loads(rows[0].evidence) == {"list": "static"}
    db.close()


def test_an_unrecordable_decision_refuses_the_call(caplog: pytest.LogCaptureFixture) -> None:
    service = GateService(StaticDecider(frozenset()), BrokenRecorder())
    with caplog.at_level(logging.ERROR):
        d = service.screen(attempt("02079460018"), "stasis")
    assert not d.allowed and d.reasons == ("error",)
    assert "could not record the decision for call call-1" in caplog.text


def test_an_emergency_call_connects_even_when_nothing_can_be_recorded() -> None:
    d = GateService(BrokenDecider(), BrokenRecorder()).screen(attempt("999"), "stasis")
    assert d.allowed


def test_a_failing_decider_refuses_the_call() -> None:
    d = GateService(BrokenDecider(), BrokenRecorder()).screen(attempt("02079460018"), "agi")
    assert not d.allowed and d.reasons == ("error",)


def test_the_trunk_number_format_is_checked_when_the_service_is_built() -> None:
    service = GateService(StaticDecider(frozenset()), BrokenRecorder(), clock=lambda: AT, trunk_number_format="e164")
    assert service.screen(attempt("02079460018"), "agi").dial == ""  # refused: the record failed
    with pytest.raises(ValueError, match=r"\[asterisk\] trunk_number_format: 'E.164' is not one of national, e164"):
        GateService(StaticDecider(frozenset()), BrokenRecorder(), trunk_number_format="E.164")


def test_in_e164_form_the_gate_hands_back_e164() -> None:
    class Keep:
        def record(self, attempt: CallAttempt, decision: Decision, entry: str, elapsed_us: int) -> None:
            pass

    service = GateService(StaticDecider(frozenset(), "9"), Keep(), "9", clock=lambda: AT, trunk_number_format="e164")
    assert service.screen(attempt("902079460018"), "stasis").dial == "+442079460018"
