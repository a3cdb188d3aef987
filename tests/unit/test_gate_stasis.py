import asyncio
import datetime as dt

from livecall_ari.ari.testing import FakeAri
from livecall_ari.gate.core import CallAttempt, Decision, StaticDecider
from livecall_ari.gate.services import GateService
from livecall_ari.gate.stasis import GateStasisApp

AT = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)


class Recorded:
    def __init__(self) -> None:
        self.rows: list[tuple[CallAttempt, Decision, str]] = []

    def record(self, attempt: CallAttempt, decision: Decision, entry: str, elapsed_us: int) -> None:
        self.rows.append((attempt, decision, entry))


def stasis_start(args: list[str]) -> dict[str, object]:
    return {"type": "StasisStart", "args": args, "channel": {"id": "chan-1", "name": "PJSIP/1001-0001"}}


async def dispatch(app: GateStasisApp, event: dict[str, object]) -> None:
    await app.on_event(event)
    await asyncio.gather(*app._tasks)


def make() -> tuple[GateStasisApp, FakeAri, Recorded]:
    ari, rec = FakeAri(), Recorded()
    service = GateService(StaticDecider(frozenset({"07700900123"})), rec, clock=lambda: AT)
    return GateStasisApp(service, ari), ari, rec


def test_an_allowed_call_is_handed_the_number_to_dial_and_continues_to_the_allowed_context() -> None:
    app, ari, rec = make()
    asyncio.run(dispatch(app, stasis_start(["screen", "02079460018", "service", "1002", "+441632960000"])))
    assert ari.requests == [
        ("set_variable", ("chan-1", "LIVECALL_NUMBER", "02079460018")),
        ("continue", ("chan-1", "livecall-allowed", "02079460018", 1)),
    ]
    [(attempt, decision, entry)] = rec.rows
    assert (attempt.agent, attempt.purpose, attempt.caller_id, attempt.at, entry) == ("1002", "service", "+441632960000", AT, "stasis")


def test_a_blocked_call_gets_its_prompts_and_the_blocked_context() -> None:
    app, ari, _ = make()
    asyncio.run(dispatch(app, stasis_start(["screen", "07700900123", "", "1001", ""])))
    assert ari.requests == [
        ("set_variable", ("chan-1", "LIVECALL_REASONS", "blocked")),
        ("set_variable", ("chan-1", "LIVECALL_PROMPTS", "livecall/reason-blocked")),
        ("continue", ("chan-1", "livecall-blocked", "07700900123", 1)),
    ]


def test_unexpected_args_go_back_to_the_dialplan_which_refuses() -> None:
    app, ari, rec = make()
    asyncio.run(dispatch(app, stasis_start(["something-else"])))
    assert ari.requests == [("continue", ("chan-1", "", "", 0))]
    assert rec.rows == []


def test_a_channel_gone_before_continue_does_not_break_the_app() -> None:
    app, ari, rec = make()
    ari.fail_with = RuntimeError("404 Channel not found")
    asyncio.run(dispatch(app, stasis_start(["screen", "02079460018", "", "1001", ""])))
    assert len(rec.rows) == 1


def test_a_dialled_string_that_is_no_number_is_refused_and_never_reaches_the_dialplan() -> None:
    app, ari, rec = make()
    asyncio.run(dispatch(app, stasis_start(["screen", "0207946001&PJSIP/07700900123", "", "1001", ""])))
    assert ari.requests == [
        ("set_variable", ("chan-1", "LIVECALL_REASONS", "invalid_number")),
        ("set_variable", ("chan-1", "LIVECALL_PROMPTS", "livecall/reason-invalid_number")),
        ("continue", ("chan-1", "livecall-blocked", "invalid", 1)),
    ]
    [(attempt, decision, _)] = rec.rows
    assert attempt.dialled == "0207946001&PJSIP/07700900123" and decision.reasons == ("invalid_number",)
