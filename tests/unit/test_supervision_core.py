import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.config import ConfigError, SupervisionSettings
from livecall_ari.supervision.core import (
    CALL_RECORDING_STATES,
    ORIGIN_API,
    SpyRecording,
    SupervisionRequest,
    agent_channel,
    authorise,
    chanspy_options,
    is_recorded,
    keeps_spy_recording,
    mode_for_digit,
    policy_from_settings,
    spy_recording,
)


def policy(**kw: object):  # type: ignore[no-untyped-def]
    return policy_from_settings(SupervisionSettings(**kw))  # type: ignore[arg-type]


def verdict(p, supervisor: str, agent: str = "1001", mode: str = "listen", **kw: object) -> tuple[str, tuple[str, ...]]:  # type: ignore[no-untyped-def]
    a = authorise(SupervisionRequest(supervisor, agent, mode, **kw), p)  # type: ignore[arg-type]
    return a.verdict, a.reasons


def test_nobody_may_supervise_until_someone_is_listed() -> None:
    assert verdict(policy(), "2001") == ("refuse", ("not_supervisor",))


def test_authorised_by_endpoint_or_by_group() -> None:
    p = policy(supervisors=["2001", "@leads"], groups=["leads: 2003 2004"])
    assert verdict(p, "2001") == ("allow", ())
    assert verdict(p, "2004", mode="barge") == ("allow", ())
    assert verdict(p, "2002") == ("refuse", ("not_supervisor",))


def test_own_team_only_limits_supervisors_to_their_teams_agents() -> None:
    p = policy(supervisors=["2001"], teams=["sales: 2001 1001, 1002", "support: 2002 1003"], own_team_only=True)
    assert verdict(p, "2001", "1002") == ("allow", ())
    assert verdict(p, "2001", "1003") == ("refuse", ("not_in_team",))
    assert verdict(policy(supervisors=["2001"], teams=["support: 1003"]), "2001", "1003") == ("allow", ())


def test_a_pin_is_asked_for_then_checked_on_the_phone_but_not_through_the_api() -> None:
    p = policy(supervisors=["2001"], pins=["2001: 4321"])
    assert verdict(p, "2001") == ("pin", ())
    assert verdict(p, "2001", pin="4321") == ("allow", ())
    assert verdict(p, "2001", pin="1234") == ("refuse", ("wrong_pin",))
    assert verdict(p, "2001", origin=ORIGIN_API) == ("allow", ())


def test_an_unauthorised_caller_is_refused_before_any_pin_prompt() -> None:
    p = policy(supervisors=["2001"], pins=["2002: 1111"])
    assert verdict(p, "2002") == ("refuse", ("not_supervisor",))


def test_every_failing_rule_is_a_reason() -> None:
    p = policy(supervisors=["2001"])
    assert verdict(p, "2002", "10;01", "shout") == ("refuse", ("unknown_mode", "unknown_agent", "not_supervisor"))
    assert verdict(p, "2001", "2001") == ("refuse", ("self",))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"supervisors": ["@leads"]}, "no such group @leads"),
        ({"groups": ["leads 2001"]}, "is not 'name: member"),
        ({"teams": ["sales:"]}, "is not 'name: member"),
        ({"pins": ["2001: 12ab"]}, "pins: '2001: 12ab'"),
        ({"listen_code": "*2X"}, "listen_code"),
        ({"listen_code": "*22", "whisper_code": "*223"}, "prefix"),
    ],
)
def test_bad_settings_say_which_entry_and_why(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        policy(**settings)


def test_chanspy_options_per_mode() -> None:
    assert chanspy_options("listen") == "uqEX"
    assert chanspy_options("whisper") == "uqEXw"
    assert chanspy_options("barge") == "uqEXB"
    assert [mode_for_digit(d) for d in "4567"] == ["listen", "whisper", "barge", None]


def test_barge_is_always_recorded_monitoring_only_when_configured() -> None:
    assert [is_recorded(m, False) for m in ("listen", "whisper", "barge")] == [False, False, True]
    assert all(is_recorded(m, True) for m in ("listen", "whisper", "barge"))


def test_agent_channel_picks_the_agents_own_channel() -> None:
    assert agent_channel("1001", "PJSIP/10010-00000003 PJSIP/1001-0000000a") == "PJSIP/1001-0000000a"
    assert agent_channel("1001", "PJSIP/2001-00000001") is None
    assert agent_channel("1001", "") is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_nothing_but_a_listed_supervisor_is_ever_allowed(supervisor: str, agent: str) -> None:
    p = policy(supervisors=["2001"])
    decision = authorise(SupervisionRequest(supervisor, agent, "listen"), p)
    assert decision.allowed == (supervisor == "2001" and agent != "2001" and agent == agent.strip() and bool(agent)
                                and all(c.isascii() and (c.isalnum() or c in "_.+-") for c in agent) and len(agent) <= 64)


@pytest.mark.parametrize("mode, monitoring, call, expected", [
    ("barge", False, "recorded", SpyRecording(True, False)),
    ("barge", False, "paused", SpyRecording(True, True)),
    ("barge", False, "pending", SpyRecording(True, True)),
    ("barge", False, "declined", SpyRecording(False)),
    ("listen", False, "recorded", SpyRecording(False)),
    ("listen", True, "paused", SpyRecording(True, True)),
    ("whisper", True, "declined", SpyRecording(False)),
])
def test_a_sessions_recording_follows_its_calls(mode: str, monitoring: bool, call: str, expected: SpyRecording) -> None:
    assert spy_recording(mode, monitoring, call) == expected


def test_only_a_recorded_calls_supervision_recording_is_kept() -> None:
    assert [s for s in CALL_RECORDING_STATES if keeps_spy_recording(s)] == ["recorded", "paused"]
