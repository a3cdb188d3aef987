"""An admin's dialplan edit routes an agent's call around the gate in the real sandbox: the CDR
follower catches it (ERROR line, audit entry, portal banner for admin and DPO, failing doctor
check until acknowledged), while a call screened by the gate raises nothing."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess

import httpx
import pytest

from tests.conftest import until
from tests.integration.harness import LIVECALL, SandboxInfo, Service, call, livecall

pytestmark = pytest.mark.sandbox

PASSWORD = "a long enough password"
BYPASS = "_0X.,1,Dial(PJSIP/${EXTEN}@livecall-trunk) into livecall-agents"


def _add_user(env: dict[str, str], name: str, role: str, extension: str = "") -> None:
    args = [*LIVECALL, "users", "add", name, "--role", role, "--password-stdin"] + (["--extension", extension] if extension else [])
    done = subprocess.run(args, input=PASSWORD + "\n", capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert done.returncode == 0, done.stderr


def _front_page(url: str, user: str) -> str:
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None, form.text
        logged_in = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": token.group(1), "next": "/"})
        assert logged_in.status_code == 200 and "Log out" in logged_in.text, (user, logged_in.status_code)
        page = client.get("/")
        assert page.status_code == 200
        return page.text


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_a_call_routed_around_the_gate_raises_the_unscreened_call_alarm(sandbox: SandboxInfo, make_service) -> None:  # type: ignore[no-untyped-def]
    from livecall_ari.config import load

    # The sandbox's settings follow its Master.csv ([charges] cdr_file, as Asterisk sees it).
    service: Service = make_service(LIVECALL_GATE_DECIDER="static")
    web = load().web
    url = f"http://{web.host}:{web.port}"
    for name, role, ext in (("root", "admin", ""), ("dpo", "auditor", ""), ("agent1", "agent", "1001")):
        _add_user(service.env, name, role, ext)
    until(lambda: _answers(url), timeout=15, what="the portal")

    screened = f"0161496{random.randrange(1000):04d}"
    bypassed = f"07911{random.randrange(10**6):06d}"
    assert call(sandbox, screened, agent="1001", hold_ms=1000).answered
    [decision] = [d for d in service.decisions() if d["dialled"] == screened]
    assert decision["decision"] == "allow"

    sandbox.rx(f"dialplan add extension {BYPASS}")
    try:
        assert "Dial(PJSIP/${EXTEN}@livecall-trunk)" in sandbox.rx("dialplan show livecall-agents")
        assert call(sandbox, bypassed, agent="1001", hold_ms=1000).answered
    finally:
        sandbox.rx("dialplan remove extension _0X.@livecall-agents 1")
    assert "_0X." not in sandbox.rx("dialplan show livecall-agents")
    assert not [d for d in service.decisions() if d["dialled"] == bypassed]  # the gate never saw it

    # The follower imports both calls' CDRs; only the bypass raises an alarm.
    bypass_e164 = "+44" + bypassed[1:]
    [alarm] = until(lambda: service.rows("SELECT * FROM unscreened_alarms"), timeout=30, what="the unscreened-call alarm")
    [bypass_cdr] = until(lambda: service.rows("SELECT uniqueid FROM cdr_records WHERE number = ?", (bypass_e164,)),
                         timeout=10, what="the bypass call's CDR")
    until(lambda: service.rows("SELECT 1 FROM cdr_records WHERE uniqueid = ?", (decision["call_id"],)), timeout=10,
          what="the screened call's CDR")
    assert (alarm["call_id"], alarm["agent"], alarm["number"], alarm["reason"]) == (
        bypass_cdr["uniqueid"], "1001", bypassed, "no-decision")
    assert len(service.rows("SELECT * FROM unscreened_alarms")) == 1  # none for the screened call

    # The ERROR line names call id, agent and number.
    expected = f"call {alarm['call_id']} from agent 1001 reached the trunk for {bypassed}: no gate decision for this call"
    [logged] = [ln for ln in service.log.splitlines() if "ALARM unscreened call" in ln]
    assert "ERROR" in logged and expected in logged, logged

    # The audit entry.
    [entry] = service.rows("SELECT * FROM audit_log WHERE action = 'alarm.unscreened_call'")
    assert entry["subject"] == f"call:{alarm['call_id']}" and bypassed in entry["details"] and '"agent":"1001"' in entry["details"]

    # The banner on the portal's front page: the admin and the DPO see it, an agent does not.
    for user in ("root", "dpo"):
        page = _front_page(url, user)
        assert "Unscreened calls: 1 call reached the trunk without the gate" in page and alarm["call_id"] in page, user
    assert "Unscreened calls" not in _front_page(url, "agent1")

    # `livecall doctor` fails naming the call until an admin acknowledges the alarm.
    doctor = livecall("doctor", env=service.env, check=False)
    line = f"[FAIL] unscreened calls: 1 call(s) reached the trunk unscreened: #{alarm['id']} call {alarm['call_id']} from 1001 to {bypassed}"
    assert doctor.returncode != 0 and line in doctor.stdout, doctor.stdout
    listed = json.loads(livecall("alarms", "list", "--json", env=service.env).stdout)
    assert [a["call_id"] for a in listed] == [alarm["call_id"]]
    livecall("alarms", "ack", str(alarm["id"]), "--by", "root", env=service.env)
    doctor = livecall("doctor", env=service.env, check=False)
    assert "[ok  ] unscreened calls: no unacknowledged unscreened-call alarms" in doctor.stdout, doctor.stdout
    assert "Unscreened calls" not in _front_page(url, "root")
    assert service.rows("SELECT actor FROM audit_log WHERE action = 'alarm.acknowledged'") == [{"actor": "root"}]


def test_a_call_the_gate_allowed_that_also_rings_another_number_raises_the_alarm(sandbox: SandboxInfo, make_service) -> None:  # type: ignore[no-untyped-def]
    service: Service = make_service(LIVECALL_GATE_DECIDER="static")
    decided = f"0161496{random.randrange(1000):04d}"
    injected = f"07911{random.randrange(10**6):06d}"
    # An edit of the allowed path that dials a second number beside the decided one.
    pattern = "_01X."
    sandbox.rx(f"dialplan add extension {pattern},1,Dial(PJSIP/${{EXTEN}}@livecall-trunk&PJSIP/{injected}@livecall-trunk,60) "
               "into livecall-allowed")
    try:
        assert call(sandbox, decided, agent="1002", hold_ms=1000).answered
    finally:
        sandbox.rx(f"dialplan remove extension {pattern}@livecall-allowed 1")
    [decision] = [d for d in service.decisions() if d["dialled"] == decided]
    assert decision["decision"] == "allow"
    [alarm] = until(lambda: service.rows("SELECT * FROM unscreened_alarms"), timeout=30, what="the unscreened-call alarm")
    assert (alarm["call_id"], alarm["agent"], alarm["number"], alarm["reason"], alarm["decided"]) == (
        decision["call_id"], "1002", f"{decided}&{injected}", "other-number", "+44" + decided[1:])
    [logged] = [ln for ln in service.log.splitlines() if "ALARM unscreened call" in ln]
    assert f"call {decision['call_id']} from agent 1002 reached the trunk for {decided}&{injected}" in logged, logged
