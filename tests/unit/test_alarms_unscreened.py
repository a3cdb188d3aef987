"""The unscreened-call alarm: the pure rule on CDR facts, and the watch on a real SQLite database
(alarm once per call, audit entry, acknowledgement, the doctor's check, the portal's banner)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.alarms.core import (
    GateVerdict,
    TrunkCall,
    agent_of,
    check,
    comparable,
    dialled_targets,
    unscreened_calls,
)
from livecall_ari.alarms.models import AlarmWatch
from livecall_ari.alarms.services import AlarmError, UnscreenedWatch, acknowledge, alarms, doctor_detail
from livecall_ari.app import App
from livecall_ari.charges.cdr import MASTER_FIELDS
from livecall_ari.cli import main
from livecall_ari.gate.models import GateDecision
from livecall_ari.portal.auth import Accounts
from livecall_ari.protection import audit
from livecall_ari.web.app import WebDependencies, build_asgi
from tests.unit.protection_data import cli_env, make_app

TRUNK = "livecall-trunk"
START = 1_795_959_887


def national(n: str) -> str:
    """A stand-in for the number parser: UK national and E.164 forms compare equal."""
    return "+44" + n[1:] if n.startswith("0") and len(n) == 11 else n


def cdr(dst: str = "01614960996", *, channel: str = "PJSIP/1001-00000000", dstchannel: str = f"PJSIP/{TRUNK}-00000001",
        lastdata: str | None = None, uniqueid: str = "vm-1795959887.0", call_id: str = "") -> TrunkCall:
    data = f"PJSIP/{dst}@{TRUNK},60,U(livecall-answered^{uniqueid})" if lastdata is None else lastdata
    return TrunkCall(uniqueid, channel, dstchannel, dst, "Dial", data, START, call_id)


def allow(number: str = "+441614960996", call_id: str = "vm-1795959887.0") -> GateVerdict:
    return GateVerdict(call_id, number, "allow")


def test_a_call_the_gate_allowed_to_the_number_it_decided_is_no_alarm() -> None:
    assert check(cdr(), [allow()], TRUNK, national) is None
    # The decision may hold the national form (the static decider's) or E.164 (screening's).
    assert check(cdr(), [allow("01614960996")], TRUNK, national) is None


def test_a_call_with_no_decision_for_its_call_id_is_an_alarm_naming_call_agent_and_number() -> None:
    alarm = check(cdr(), [], TRUNK, national)
    assert alarm is not None and (alarm.call_id, alarm.agent, alarm.number, alarm.reason) == (
        "vm-1795959887.0", "1001", "01614960996", "no-decision")
    assert alarm.detail == ("call vm-1795959887.0 from agent 1001 reached the trunk for 01614960996: "
                            "no gate decision for this call")
    # Another call's decision is not this call's.
    assert check(cdr(), [allow(call_id="vm-1795959800.9")], TRUNK, national) is not None


def test_a_blocked_call_that_still_reached_the_trunk_is_an_alarm() -> None:
    alarm = check(cdr(), [GateVerdict("vm-1795959887.0", "+441614960996", "block")], TRUNK, national)
    assert alarm is not None and alarm.reason == "blocked" and alarm.decided == "+441614960996"


def test_a_number_dialled_besides_or_instead_of_the_decided_one_is_an_alarm() -> None:
    both = cdr(lastdata=f"PJSIP/01614960996@{TRUNK}&PJSIP/07911123456@{TRUNK},60")
    alarm = check(both, [allow()], TRUNK, national)
    assert alarm is not None and alarm.reason == "other-number"
    assert alarm.number == "01614960996&07911123456" and alarm.decided == "+441614960996"
    swapped = cdr(lastdata=f"PJSIP/07911123456@{TRUNK},60")
    assert check(swapped, [allow()], TRUNK, national) is not None


def test_dial_targets_in_both_pjsip_forms_and_only_to_the_trunk() -> None:
    data = f"PJSIP/0161@{TRUNK}&PJSIP/{TRUNK}/sip:0207@127.0.0.4:5080&PJSIP/1002&Local/1@ctx,30"
    assert dialled_targets("Dial", data, TRUNK) == ["0161", "0207"]
    assert dialled_targets("Queue", data, TRUNK) == []
    # Dial() with no trunk target named (a Local channel that reaches the trunk): dst is used.
    alarm = check(cdr(lastdata="Local/0161@somewhere"), [], TRUNK, national)
    assert alarm is not None and alarm.number == "01614960996"


@pytest.mark.parametrize("dst", ["999", "112", "9999"])
def test_emergency_numbers_are_never_an_alarm(dst: str) -> None:
    assert check(cdr(dst), [], TRUNK, national, outside_line_prefix="9") is None


def test_only_an_agents_phone_to_the_trunk_is_judged() -> None:
    assert agent_of("PJSIP/1001-0000002a", TRUNK) == "1001"
    assert agent_of(f"PJSIP/{TRUNK}-0000002a", TRUNK) is None  # an inbound call
    assert agent_of("Local/0161@ctx-00000001;2", TRUNK) is None
    assert check(cdr(dstchannel="PJSIP/1002-00000003"), [], TRUNK, national) is None  # agent to agent
    assert check(cdr(channel=f"PJSIP/{TRUNK}-00000005"), [], TRUNK, national) is None  # trunk to trunk
    assert check(cdr(dstchannel=""), [], TRUNK, national) is None  # not answered by anything


def test_livecalls_call_id_column_finds_the_decision_too() -> None:
    call = cdr(uniqueid="other-uniqueid", call_id="vm-1795959887.0")
    assert check(call, [allow()], TRUNK, national) is None


def test_one_alarm_per_call_when_it_rang_two_numbers_on_the_trunk() -> None:
    data = f"PJSIP/01614960996@{TRUNK}&PJSIP/07911123456@{TRUNK},60"
    legs = [cdr(lastdata=data, dstchannel=f"PJSIP/{TRUNK}-00000001"), cdr(lastdata=data, dstchannel=f"PJSIP/{TRUNK}-00000002")]
    assert len(unscreened_calls(legs, [allow()], TRUNK, national)) == 1


@given(st.text(alphabet="PJSIP/@&,-:.0123456789abklrtuncsi", max_size=60))
def test_any_lastdata_gives_targets_without_raising(lastdata: str) -> None:
    assert all(isinstance(t, str) for t in dialled_targets("Dial", lastdata, TRUNK))


# The watch on a real database -------------------------------------------------------------


def line(dst: str, uniqueid: str, channel: str = "PJSIP/1001-00000000", lastdata: str = "") -> str:
    values = dict.fromkeys(MASTER_FIELDS, "")
    values.update(dst=dst, channel=channel, dstchannel=f"PJSIP/{TRUNK}-00000001", lastapp="Dial",
                  lastdata=lastdata or f"PJSIP/{dst}@{TRUNK},60", uniqueid=uniqueid, start="2026-11-29 13:44:47",
                  end="2026-11-29 13:45:01", duration="14", billsec="2", disposition="ANSWERED")
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow([values[f] for f in MASTER_FIELDS])
    return out.getvalue()


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path)
    AlarmWatch.update(since_utc=START - 60).execute()
    return application


def decided(call_id: str, number: str, decision: str = "allow") -> None:
    GateDecision.create(call_id=call_id, agent="1001", dialled=number, number=number, purpose="marketing",
                        decision=decision, entry="stasis", decided_at=dt.datetime(2026, 11, 29, 13, 44, 47))


def test_the_watch_raises_each_unscreened_call_once_with_an_error_line_and_an_audit_entry(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    watch = UnscreenedWatch.from_app(app)
    decided("screened.1", "+441614960996")
    batch = [(START, line("01614960996", "screened.1")), (START, line("07911123456", "bypass.2")),
             (START - 3600, line("07911123456", "history.3")),  # before the watch began: not judged
             (START, line("999", "emergency.4"))]
    with caplog.at_level(logging.ERROR, logger="livecall.alarms"):
        raised = watch.check(batch)
        again = watch.check(batch)  # the same lines read again (a restart): nothing new
    assert [a.call_id for a in raised] == ["bypass.2"] and again == []
    [message] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert message == ("ALARM unscreened call: call bypass.2 from agent 1001 reached the trunk for 07911123456: "
                       "no gate decision for this call")
    [entry] = [e for e in audit.entries() if e.action == "alarm.unscreened_call"]
    assert entry.subject == "call:bypass.2" and '"agent":"1001"' in entry.details_json and "07911123456" in entry.details_json
    assert [a["call_id"] for a in alarms(open_only=True)] == ["bypass.2"]


def test_doctor_fails_until_an_admin_acknowledges_and_the_cli_lists_and_acks(app: App, tmp_path: Path) -> None:
    assert doctor_detail() == (True, "no unacknowledged unscreened-call alarms")
    UnscreenedWatch.from_app(app).check([(START, line("07911123456", "bypass.2"))])
    ok, detail = doctor_detail()
    assert not ok and "#1 call bypass.2 from 1001 to 07911123456 (no-decision)" in detail
    env = cli_env(tmp_path)
    runner = CliRunner()
    listed = runner.invoke(main, ["alarms", "list"], env=env)
    assert listed.exit_code == 0 and "call bypass.2  agent 1001  to 07911123456  no-decision  OPEN" in listed.output
    refused = runner.invoke(main, ["alarms", "ack", "7", "--by", "root"], env=env)
    assert refused.exit_code != 0 and "no unscreened-call alarm 7" in refused.output
    done = runner.invoke(main, ["alarms", "ack", "1", "--by", "root"], env=env)
    assert done.exit_code == 0 and "alarm #1 (call bypass.2) acknowledged by root" in done.output, done.output
    assert doctor_detail()[0]
    with pytest.raises(AlarmError, match="already acknowledged by root"):
        acknowledge(1, "someone")
    assert [e.actor for e in audit.entries() if e.action == "alarm.acknowledged"] == ["root"]


PASSWORD = "a long enough password"


def test_the_banner_shows_on_the_front_page_for_admin_and_dpo_but_not_for_an_agent(app: App) -> None:
    accounts = Accounts()
    for name, role, ext in (("root", "admin", ""), ("dee", "auditor", ""), ("ann", "agent", "1001")):
        accounts.add(name, role, PASSWORD, ext)
    UnscreenedWatch.from_app(app).check([(START, line("07911123456", "bypass.2"))])

    async def front_page(user: str) -> str:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8099", follow_redirects=True) as c:
            form = await c.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            await c.post("/login", data={"username": user, "password": PASSWORD, "csrf": token.group(1), "next": "/"})
            page = await c.get("/")
            assert page.status_code == 200
            return page.text

    for user in ("root", "dee"):
        text = asyncio.run(front_page(user))
        assert "Unscreened calls: 1 call reached the trunk without the gate" in text and "bypass.2" in text, user
    assert "Unscreened calls" not in asyncio.run(front_page("ann"))
    acknowledge(1, "root")
    assert "Unscreened calls" not in asyncio.run(front_page("root"))


def test_an_admin_acknowledges_from_the_banner_and_the_dpo_cannot(app: App) -> None:
    accounts = Accounts()
    for name, role in (("root", "admin"), ("dee", "auditor")):
        accounts.add(name, role, PASSWORD, "")
    UnscreenedWatch.from_app(app).check([(START, line("07911123456", "bypass.2"))])

    async def acknowledge_as(user: str) -> tuple[int, str]:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8099", follow_redirects=True) as c:
            form = await c.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            page = await c.post("/login", data={"username": user, "password": PASSWORD, "csrf": token.group(1), "next": "/calls"})
            csrf = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
            assert csrf is not None
            done = await c.post("/alarms/1/ack", data={"csrf": csrf.group(1), "next": "/calls"})
            return done.status_code, done.text

    status, text = asyncio.run(acknowledge_as("dee"))  # the DPO sees the banner but may not acknowledge
    assert status == 403 and "Unscreened calls: 1 call" in text and "Acknowledge #1" not in text, status
    assert alarms(open_only=True)
    status, text = asyncio.run(acknowledge_as("root"))
    assert status == 200 and "Unscreened calls" not in text
    [done] = alarms()
    assert done["acknowledged_by"] == "root"
    status, text = asyncio.run(acknowledge_as("root"))
    assert status == 409 and "already acknowledged by root" in text


@pytest.mark.parametrize("dialled", ["01614960996", "+441614960996", "00441614960996", "901614960996", "0161 496 0996"])
def test_the_forms_of_one_number_compare_equal(dialled: str) -> None:
    assert comparable(dialled, "9") == comparable("+441614960996") == "+441614960996"
    assert comparable("07911123456") != comparable("+441614960996")


@given(st.from_regex(r"0[1-9][0-9]{9}", fullmatch=True))
def test_comparable_agrees_with_the_number_parser_on_valid_uk_numbers(national: str) -> None:
    from livecall_ari.screening.numbers import NumberParser

    number = NumberParser().parse(national)
    if number is not None:
        assert comparable(national) == number.e164


def test_a_failed_check_rolls_its_batch_back_and_the_follower_reads_it_again(app: App, tmp_path: Path) -> None:
    from livecall_ari.charges.services import cdr_ingest
    from livecall_ari.charges.store import CdrFollower

    path = tmp_path / "Master.csv"
    path.write_text(line("07911123456", "bypass.2") + "\n")
    watch = UnscreenedWatch.from_app(app)
    failures = [RuntimeError("the database went away mid-check")]

    def check_once_failing(lines: list[tuple[int, str]]) -> object:
        if failures:
            raise failures.pop()
        return watch.check(lines)

    follower = CdrFollower(app.database(), path, cdr_ingest(app), on_batch=check_once_failing)
    with pytest.raises(RuntimeError):
        follower.poll()
    assert app.database().execute_sql("SELECT count(*) FROM cdr_records").fetchone()[0] == 0
    assert alarms() == []
    # follow_cdrs logs the failure and polls the same follower again.
    assert sum(r.inserted for r in follower.poll()) == 1
    assert [a["call_id"] for a in alarms()] == ["bypass.2"]
    follower.close()


def test_the_doctor_warns_when_no_cdr_file_is_followed(app: App) -> None:
    from livecall_ari.alarms.services import unscreened_check

    assert unscreened_check(app).ok
    app.settings.charges.cdr_file = ""
    check_ = unscreened_check(app)
    assert (check_.ok, check_.warning) == (False, True) and "not watched" in check_.detail
    UnscreenedWatch.from_app(app).check([(START, line("07911123456", "bypass.2"))])
    check_ = unscreened_check(app)
    assert (check_.ok, check_.warning) == (False, False) and "bypass.2" in check_.detail
