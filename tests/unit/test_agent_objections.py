"""The agent's objection rule (screening/agent_objections.py): their own connected call, during
it or within the window after it; nothing else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from livecall_ari.screening.agent_objections import GatedCall, agent_objection

NOW = dt.datetime(2026, 11, 30, 11, 0, tzinfo=dt.timezone.utc)
WINDOW = dt.timedelta(minutes=10)
CALL = GatedCall("pbx-1.7", "1001", "allow", "+442079460018")


def test_the_agent_may_object_for_their_own_call_during_it_and_within_the_window() -> None:
    assert agent_objection(CALL, "1001", NOW).allowed
    assert agent_objection(CALL, "1001", NOW, NOW - dt.timedelta(minutes=9, seconds=59), WINDOW).allowed


def test_not_after_the_window() -> None:
    verdict = agent_objection(CALL, "1001", NOW, NOW - dt.timedelta(minutes=10, seconds=1), WINDOW)
    assert not verdict.allowed and "more than 10 minutes ago" in verdict.why


def test_not_for_another_agents_call_an_unknown_call_or_a_blocked_one() -> None:
    assert agent_objection(CALL, "1002", NOW).why == "call pbx-1.7 is not 1002's"
    assert agent_objection(CALL, "", NOW).allowed is False
    assert agent_objection(None, "1001", NOW).why == "no such call"
    blocked = GatedCall("pbx-1.8", "1001", "block", "+442079460018")
    assert agent_objection(blocked, "1001", NOW).why == "call pbx-1.8 was not connected"


def test_an_end_time_in_the_future_is_refused() -> None:
    assert not agent_objection(CALL, "1001", NOW, NOW + dt.timedelta(minutes=1), WINDOW).allowed


def test_an_agents_objection_spooled_while_serve_was_down_is_listed_as_theirs(tmp_path: Path) -> None:
    from livecall_ari.recording.services import PENDING_OBJECTIONS
    from tests.unit.test_recording_services import service

    called: list[tuple[str, str]] = []
    agents: list[tuple[str, str, str]] = []
    books = service(tmp_path, called)
    books.record_agent_objection = lambda number, call_id, at, agent: agents.append((number, call_id, agent))
    spool = tmp_path / "asterisk/var/spool/asterisk/monitor/livecall" / PENDING_OBJECTIONS
    spool.parent.mkdir(parents=True)
    # The notice's objection key writes three fields; the agent's objection code a fourth.
    spool.write_text("pbx-1.7 02079460018 1795000000\npbx-1.9 02079460019 1795000060 1001\n")

    assert books.reconcile(dt.timedelta(0))["objections"] == 2
    assert called == [("02079460018", "pbx-1.7")] and agents == [("02079460019", "pbx-1.9", "1001")]
    assert not spool.exists()
