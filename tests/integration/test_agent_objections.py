"""The agent's "do not call me again" (PECR reg 21(1)(a)) against the sandbox: the objection
code pressed during a call, or dialled just after it, lists the other party's number at once,
with the agent and the call as evidence; the agent hears a confirmation; the next marketing call
to the number is blocked. An agent with no recent call of their own lists nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, call, load_fresh_lists, open_for_marketing, start_call

pytestmark = pytest.mark.sandbox

TALKATIVE = "02079460710"  # answered; the PSTN talks for as long as the call lasts
ANSWERS = "02079460018"


def objections(service: Service) -> list[dict[str, Any]]:
    return service.rows("SELECT * FROM screening_objections ORDER BY id")


def hears(sandbox: SandboxInfo, endpoint: str, prompt: str) -> bool:
    """Whether ``endpoint``'s channel is playing ``prompt`` now (what the agent hears), as ARI
    lists the channels (cheaper than a CLI round trip on a loaded machine)."""
    from livecall_ari.config import load

    s = load()
    try:
        channels = httpx.get(f"{s.ari.url}/ari/channels", auth=(s.ari.user, s.ari.password), timeout=5).json()
    except httpx.HTTPError:
        return False
    return any(str(ch.get("name", "")).startswith(f"PJSIP/{endpoint}-")
               and ch.get("dialplan", {}).get("app_name") == "Playback" and ch.get("dialplan", {}).get("app_data") == prompt
               for ch in channels)


def confirmed(sandbox: SandboxInfo, number: str, agent: str, prompt: str, **kwargs: Any) -> None:
    """Place the call and wait until the agent hears ``prompt``; then let the call end."""
    placed = start_call(sandbox, number, agent=agent, **kwargs)
    until(lambda: hears(sandbox, agent, prompt), timeout=30, what=f"{agent} to hear {prompt}")
    result = placed.wait()
    assert result.returncode == 0, result.errors

AGENTS = ("1001", "1002", "1003")


@pytest.fixture
def screened(sandbox: SandboxInfo, make_service: Any, tmp_path: Path) -> Service:
    service: Service = make_service(**open_for_marketing(tmp_path))
    load_fresh_lists(service, tmp_path)
    # The agents' last calls (global variables) from earlier tests are forgotten.
    for agent in AGENTS:
        sandbox.rx(f"dialplan set global LIVECALL_LAST_CALL_{agent} -")
    return service


def test_the_objection_code_during_a_call_lists_the_number_with_the_agent_and_call(
    sandbox: SandboxInfo, screened: Service
) -> None:
    # *6 two seconds into the call.
    confirmed(sandbox, TALKATIVE, "1001", "livecall/agent-objection-added", scenario="agent_call_feature.xml",
              hold_ms=3000, keys={"feature_digit": "6"})

    [row] = until(lambda: objections(screened) or None, what="the objection")
    [decision] = screened.decisions()
    assert row["number"] == 442079460710 and row["removed_at"] is None
    assert row["recorded_by"] == "agent 1001"
    assert decision["call_id"] in row["reason"] and "agent 1001" in row["reason"]

    again = call(sandbox, TALKATIVE, agent="1001", scenario="agent_call_refused.xml")
    assert again.refused_cause == 21, again.errors
    assert [(d["decision"], d["reasons"]) for d in screened.decisions()] == [("allow", ""), ("block", "objection")]


# 1001 goes through the Stasis entry, 1003 through FastAGI (a channel that was in Stasis may not
# write AstDB: the last call is kept where both can write it).
@pytest.mark.parametrize("agent", ["1001", "1003"])
def test_the_objection_code_dialled_after_the_call_applies_to_that_call(
        sandbox: SandboxInfo, screened: Service, agent: str) -> None:
    assert call(sandbox, ANSWERS, agent=agent, hold_ms=1000).answered
    [decision] = screened.decisions()

    # Dialled on its own after hanging up.
    confirmed(sandbox, "*6", agent, "livecall/agent-objection-added", scenario="agent_call_any.xml", hold_ms=3000)

    [row] = until(lambda: objections(screened) or None, what="the objection")
    assert (row["number"], row["recorded_by"]) == (442079460018, f"agent {agent}")
    assert decision["call_id"] in row["reason"] and "after" in row["reason"]
    assert [d["reasons"] for d in screened.decisions()] == [""], "the objection code was screened as a number"


def test_an_agent_without_a_recent_call_lists_nothing(sandbox: SandboxInfo, screened: Service) -> None:
    confirmed(sandbox, "*6", "1003", "livecall/agent-objection-no-call", scenario="agent_call_any.xml", hold_ms=3000)

    assert objections(screened) == []


def test_an_agent_cannot_object_for_a_call_that_was_not_theirs(sandbox: SandboxInfo, screened: Service) -> None:
    assert call(sandbox, ANSWERS, agent="1002", hold_ms=1000).answered
    [decision] = screened.decisions()
    # 1003's last call, as the dialplan stored it, names 1002's call: serve refuses it.
    sandbox.rx(f"dialplan set global LIVECALL_LAST_CALL_1003 {decision['call_id']}~{ANSWERS}~{int(time.time())}")

    confirmed(sandbox, "*6", "1003", "livecall/agent-objection-refused", scenario="agent_call_any.xml", hold_ms=3000)

    assert objections(screened) == []
