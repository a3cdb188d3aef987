"""The portal's pure decisions: roles, an agent's own calls, Range requests, login throttling,
forms from other sites, redirects after login, the live board, list freshness, scorecards."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.portal.core import (
    PERMISSIONS, ROLES, ByteRange, RangeNotSatisfiable, ScoredCall, Viewer, agent_filter, can, check_scores, list_freshness,
    live_calls, login_delay, may_see_call, parse_range, rollup, safe_next, same_origin, starts_playback,
)

ADMIN, SUP, AUDITOR = Viewer("a", "admin"), Viewer("s", "supervisor", "2001"), Viewer("d", "auditor")
AGENT = Viewer("ann", "agent", "1001")
T0 = dt.datetime(2025, 6, 2, 10, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("viewer", "permission", "allowed"), [
    (AUDITOR, "lists.view", True),
    (AUDITOR, "lists.change", False),
    (AUDITOR, "protection.manage", True),
    (AUDITOR, "protection.erase", False),
    (AUDITOR, "live.supervise", False),
    (AGENT, "recordings.play", True),
    (AGENT, "recordings.download", False),
    (AGENT, "live.view", False),
    (AGENT, "coaching.write", False),
    (AGENT, "protection.view", False),
    (SUP, "live.supervise", True),
    (SUP, "coaching.write", True),
    (SUP, "protection.view", False),
    (SUP, "users.manage", False),
    (ADMIN, "protection.erase", True),
    (ADMIN, "no.such.permission", False),
])
def test_roles_grant_what_the_table_says(viewer: Viewer, permission: str, allowed: bool) -> None:
    assert can(viewer, permission) is allowed


def test_every_permission_names_only_known_roles_and_an_unknown_role_gets_nothing() -> None:
    assert all(roles <= set(ROLES) for roles in PERMISSIONS.values())
    assert not any(can(Viewer("x", "superuser"), p) for p in PERMISSIONS)


def test_an_agent_sees_only_their_own_calls() -> None:
    assert may_see_call(AGENT, "1001")
    assert not may_see_call(AGENT, "1002")
    assert not may_see_call(Viewer("bob", "agent", ""), "")  # no extension: nothing, not everything
    assert may_see_call(SUP, "1002") and may_see_call(AUDITOR, "1002")
    assert agent_filter(AGENT) == "1001" and agent_filter(Viewer("bob", "agent")) == "" and agent_filter(SUP) is None


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("", None),
    ("bytes=0-", ByteRange(0, 999)),
    ("bytes=0-99", ByteRange(0, 99)),
    ("bytes=500-", ByteRange(500, 999)),
    ("bytes=900-5000", ByteRange(900, 999)),
    ("bytes=-100", ByteRange(900, 999)),
    ("bytes=-5000", ByteRange(0, 999)),
    ("bytes = 10 - 19", ByteRange(10, 19)),
    ("bytes=0-1,5-9", None),  # several ranges: we may send the whole file
    ("items=0-5", None),
    ("bytes=9-3", None),
])
def test_range_headers(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=2000-3000", "bytes=-0"])
def test_ranges_outside_the_file_are_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


@given(st.integers(1, 10**9), st.integers(0, 10**9), st.one_of(st.none(), st.integers(0, 10**9)))
def test_a_satisfiable_range_always_lies_inside_the_file(size: int, start: int, end: int | None) -> None:
    header = f"bytes={start}-{'' if end is None else end}"
    try:
        found = parse_range(header, size)
    except RangeNotSatisfiable:
        assert start >= size
        return
    if found is not None:
        assert 0 <= found.start <= found.end < size
        assert found.length == found.end - found.start + 1
        assert found.content_range(size) == f"bytes {found.start}-{found.end}/{size}"


def test_only_a_request_from_the_first_byte_counts_as_a_play() -> None:
    assert starts_playback(None) and starts_playback(ByteRange(0, 10))
    assert not starts_playback(ByteRange(4096, 8191))


def test_login_throttling_starts_after_five_failures_and_doubles() -> None:
    fails = [T0 + dt.timedelta(seconds=i) for i in range(4)]
    assert login_delay(fails, T0 + dt.timedelta(seconds=5)) == 0
    five = fails + [T0 + dt.timedelta(seconds=4)]
    assert login_delay(five, T0 + dt.timedelta(seconds=4)) == 60
    six = five + [T0 + dt.timedelta(seconds=70)]
    assert login_delay(six, T0 + dt.timedelta(seconds=70)) == 120
    # Old failures are forgotten.
    assert login_delay(five, T0 + dt.timedelta(minutes=16)) == 0
    many = [T0 + dt.timedelta(seconds=i) for i in range(30)]
    assert login_delay(many, T0 + dt.timedelta(seconds=29)) <= 15 * 60


def test_forms_from_another_site_are_refused() -> None:
    assert same_origin("http://127.0.0.1:8099", "127.0.0.1:8099", "http")
    assert same_origin(None, "127.0.0.1:8099", "http") and same_origin("null", "x", "http")
    assert not same_origin("https://evil.example", "portal.example", "https")
    assert not same_origin("http://portal.example", "portal.example", "https")


@pytest.mark.parametrize(("target", "expected"), [
    ("/calls?number=1", "/calls?number=1"), (None, "/"), ("https://evil.example/", "/"), ("//evil.example", "/"),
    ("/\\evil.example", "/"), ("calls", "/"),
])
def test_after_login_only_a_path_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_live_board_keeps_agents_channels_not_the_trunks() -> None:
    channels = [
        {"id": "pbx-1.2", "name": "PJSIP/livecall-trunk-00000002", "state": "Up", "creationtime": "2025-06-02T10:00:01"},
        {"id": "pbx-1.1", "name": "PJSIP/1001-00000001", "state": "Up", "creationtime": "2025-06-02T10:00:00",
         "connected": {"number": "+442079460710"}, "dialplan": {"exten": "02079460710"}},
        {"id": "pbx-1.3", "name": "Local/s@x-00000001;1", "state": "Up"},
        {"id": "pbx-1.4", "name": "PJSIP/1002-0000000a", "state": "Ring", "creationtime": "2025-06-02T09:59:00",
         "dialplan": {"exten": "02079460018"}},
    ]
    found = live_calls(channels)
    assert [(c.agent, c.number, c.state) for c in found] == [("1002", "02079460018", "Ring"), ("1001", "+442079460710", "Up")]
    assert [c.agent for c in live_calls(channels, agents=["1001"])] == ["1001"]


def test_list_freshness_warns_before_marketing_calls_stop() -> None:
    today = dt.date(2025, 6, 30)
    assert list_freshness(None, today, 28) == ("missing", None)
    assert list_freshness(dt.date(2025, 6, 20), today, 28) == ("fresh", 10)
    assert list_freshness(dt.date(2025, 6, 5), today, 28) == ("ageing", 25)
    assert list_freshness(dt.date(2025, 6, 1), today, 28) == ("stale", 29)


def test_scorecards_need_every_criterion_from_one_to_five() -> None:
    good = {"opening": "5", "compliance": "4", "listening": "3", "outcome": "1"}
    assert check_scores(good) == {"opening": 5, "compliance": 4, "listening": 3, "outcome": 1}
    with pytest.raises(ValueError, match="Compliance"):
        check_scores({**good, "compliance": "6"})
    with pytest.raises(ValueError, match="Outcome"):
        check_scores({k: v for k, v in good.items() if k != "outcome"})


def test_scorecards_roll_up_per_agent_per_month() -> None:
    full = {"opening": 5, "compliance": 5, "listening": 5, "outcome": 5}
    half = {"opening": 3, "compliance": 2, "listening": 3, "outcome": 2}
    cards = [ScoredCall("1001", dt.date(2025, 6, 2), full), ScoredCall("1001", dt.date(2025, 6, 20), half),
             ScoredCall("1001", dt.date(2025, 7, 1), half), ScoredCall("1002", dt.date(2025, 6, 3), full)]
    rows = rollup(cards)
    assert [(r.agent, r.period, r.cards) for r in rows] == [("1001", "2025-06", 2), ("1001", "2025-07", 1), ("1002", "2025-06", 1)]
    assert rows[0].average == {"opening": 4.0, "compliance": 3.5, "listening": 4.0, "outcome": 3.5}
    assert rows[0].overall == 75.0 and rows[1].overall == 50.0 and rows[2].overall == 100.0
