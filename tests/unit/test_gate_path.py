"""The gate-path analysis on Asterisk 22's own CLI output (captured from a stock Debian Asterisk
with an admin's phones, trunk and `_0X.` pattern, and LiveCall installed beside them)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.asterisk.gate_path import (
    Endpoint, Route, is_phone, judge_context, numbers_to_try, parse_dialplan_show, parse_endpoint_context,
    parse_endpoints,
)

ENDPOINTS = """
 Endpoint:  <Endpoint/CID.....................................>  <State.....>  <Channels.>
    I/OAuth:  <AuthId/UserName...........................................................>
        Aor:  <Aor............................................>  <MaxContact>
      Contact:  <Aor/ContactUri..........................> <Hash....> <Status> <RTT(ms)..>
  Transport:  <TransportId........>  <Type>  <cos>  <tos>  <BindAddress..................>
   Identify:  <Identify/Endpoint.........................................................>
        Match:  <criteria.........................>
    Channel:  <ChannelId......................................>  <State.....>  <Time.....>
        Exten: <DialedExten...........>  CLCID: <ConnectedLineCID.......>
==========================================================================================

 Endpoint:  2001                                                 Unavailable   0 of inf
     InAuth:  2001/2001
        Aor:  2001                                               1
  Transport:  transport-udp             udp      0      0  127.0.0.1:5060

 Endpoint:  2002/"Reception" <2002>                              Unavailable   0 of inf
     InAuth:  2002/2002
        Aor:  2002                                               1
  Transport:  transport-udp             udp      0      0  127.0.0.1:5060

 Endpoint:  mytrunk                                              Not in use    0 of inf
        Aor:  mytrunk                                            0
      Contact:  mytrunk/sip:127.0.0.2:5060                 067c650437 NonQual        -nan
  Transport:  transport-udp             udp      0      0  127.0.0.1:5060
   Identify:  mytrunk/mytrunk
        Match: 127.0.0.2/32

 Endpoint:  itsp                                                 Not in use    0 of inf
     InAuth:  itsp-in/itsp
        Aor:  itsp                                               0
   Identify:  itsp/itsp
        Match: 203.0.113.7/32


Objects found: 4
"""

BYPASS = """[ Context 'office-phones' created by 'pbx_config' ]
  '_0X.' =>         1. Dial(PJSIP/${EXTEN}@mytrunk,60)            [extensions.conf:885]
[ Included context 'livecall-outbound' created by 'pbx_config' ]
  '_X.' =>          1. Goto(livecall-gate,${EXTEN},1)             [extensions_livecall.conf:12]


-= 2 extensions (2 priorities) in 2 contexts. =-
"""

THROUGH_INCLUDE = """[ Included context 'livecall-outbound' created by 'pbx_config' ]
  '_+X.' =>         1. Goto(livecall-gate,${EXTEN},1)             [extensions_livecall.conf:13]

-= 1 extension (1 priority) in 1 context. =-
"""

# The more specific pattern is listed (and wins) first, whatever the order in extensions.conf.
SPECIFIC_FIRST = """[ Context 'h4-order' created by 'pbx_config' ]
  '_01XXXXXXXXX' => 1. Dial(PJSIP/${EXTEN}@mytrunk,60)            [extensions.conf:901]
  '_0X.' =>         1. Goto(livecall-outbound,${EXTEN},1)         [extensions.conf:900]
[ Included context 'livecall-outbound' created by 'pbx_config' ]
  '_X.' =>          1. Goto(livecall-gate,${EXTEN},1)             [extensions_livecall.conf:12]
"""

GOTO_GATE = """[ Context 'h4-order' created by 'pbx_config' ]
  '_0X.' =>         1. Goto(livecall-outbound,${EXTEN},1)         [extensions.conf:900]
[ Included context 'livecall-outbound' created by 'pbx_config' ]
  '_X.' =>          1. Goto(livecall-gate,${EXTEN},1)             [extensions_livecall.conf:12]
"""

MULTI_PRIORITY = """[ Context 'sales' created by 'pbx_config' ]
  '_9.' =>          1. NoOp(outside line)                         [extensions.conf:40]
                    2. Dial(PJSIP/${EXTEN:1}@mytrunk,60)          [extensions.conf:41]
"""

NO_ROUTE = "There is no existence of +441132960000@office-phones extension\n"


def test_phones_are_endpoints_with_inbound_auth_that_are_not_matched_by_ip_nor_the_trunk() -> None:
    endpoints = parse_endpoints(ENDPOINTS)
    assert endpoints == [
        Endpoint("2001", True, False), Endpoint("2002", True, False),
        Endpoint("mytrunk", False, True), Endpoint("itsp", True, True),
    ]
    assert [e.name for e in endpoints if is_phone(e, "mytrunk")] == ["2001", "2002"]
    assert not is_phone(Endpoint("2001", True, False), "2001")  # whatever [asterisk] trunk names is a trunk


def test_the_context_of_an_endpoint() -> None:
    text = " auth                               : 2001\n context                            : office-phones\n message_context   : \n"
    assert parse_endpoint_context(text) == "office-phones"
    assert parse_endpoint_context("Unable to find object nosuch.\n") is None


def test_the_admins_own_pattern_wins_over_the_include() -> None:
    assert parse_dialplan_show(BYPASS) == Route("office-phones", "_0X.", "Dial(PJSIP/${EXTEN}@mytrunk,60)", "extensions.conf:885")
    route = parse_dialplan_show(BYPASS)
    assert route is not None and not route.through_gate


def test_livecalls_contexts_and_a_goto_into_them_are_through_the_gate() -> None:
    through = parse_dialplan_show(THROUGH_INCLUDE)
    assert through is not None and through.through_gate and through.context == "livecall-outbound"
    goto = parse_dialplan_show(GOTO_GATE)
    assert goto is not None and goto.context == "h4-order" and goto.through_gate
    specific = parse_dialplan_show(SPECIFIC_FIRST)
    assert specific is not None and specific.pattern == "_01XXXXXXXXX" and not specific.through_gate


def test_the_first_step_of_a_multi_priority_extension_and_no_route() -> None:
    assert parse_dialplan_show(MULTI_PRIORITY) == Route("sales", "_9.", "NoOp(outside line)", "extensions.conf:40")
    assert parse_dialplan_show(NO_ROUTE) is None
    assert parse_dialplan_show("There is no existence of 'nonexist' context\n") is None


def test_a_bypass_names_the_phones_the_context_the_number_and_the_pattern() -> None:
    numbers = numbers_to_try("")
    routes = {n: parse_dialplan_show(BYPASS if n[1].startswith("0") else THROUGH_INCLUDE) for n in numbers}
    verdict = judge_context("office-phones", ["2002", "2001"], routes)
    assert not verdict.ok
    text = verdict.describe()
    assert "phones 2001, 2002 (context office-phones)" in text
    assert "01132960000 (UK landline)" in text and "'_0X.'" in text and "extensions.conf:885" in text
    assert "+441132960000" not in text  # that one goes through the gate


def test_an_admins_include_listed_before_ours_is_named_as_such() -> None:
    earlier = """[ Context 'sales' created by 'pbx_config' ]
[ Included context 'outbound-trunk' created by 'pbx_config' ]
  '_0X.' =>         1. Dial(PJSIP/${EXTEN}@mytrunk,60)            [extensions.conf:70]
[ Included context 'livecall-outbound' created by 'pbx_config' ]
  '_X.' =>          1. Goto(livecall-gate,${EXTEN},1)             [extensions_livecall.conf:12]
"""
    verdict = judge_context("sales", ["2001"], {("UK mobile", "07700900123"): parse_dialplan_show(earlier)})
    assert not verdict.ok
    assert "'_0X.' in [outbound-trunk]" in verdict.describe() and "is included before livecall-outbound" in verdict.describe()


def test_every_number_through_the_gate_is_ok_and_no_route_at_all_is_not() -> None:
    numbers = numbers_to_try("9")
    assert ("UK mobile after 9", "907700900123") in numbers and ("UK mobile", "07700900123") in numbers
    good = judge_context("sales", ["2001"], {n: parse_dialplan_show(THROUGH_INCLUDE) for n in numbers})
    assert good.ok and "12 outside numbers reach LiveCall's gate" in good.describe()
    nowhere = judge_context("sales", ["2001"], {n: None for n in numbers})
    assert not nowhere.ok and "add `include => livecall-outbound` to [sales]" in nowhere.describe()


def test_numbers_behind_9_are_tried_even_when_no_prefix_is_set() -> None:
    assert ("UK mobile after 9", "907700900123") in numbers_to_try("")
    assert ("UK mobile after 8", "807700900123") in numbers_to_try("8")
    assert ("UK mobile after 9", "907700900123") not in numbers_to_try("8")


def test_emergency_numbers_are_never_tried() -> None:
    assert not {"999", "112", "9999", "9112"} & {n for _, n in numbers_to_try("9")}


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_any_text_parses_without_error(text: str) -> None:
    parse_endpoints(text)
    parse_dialplan_show(text)
    parse_endpoint_context(text)


def test_only_the_gates_own_contexts_count_not_any_livecall_name() -> None:
    # A phone context that happens to be called livecall-* (the sandbox's livecall-agents), or a
    # jump straight to livecall-allowed (which dials with no decision), is not the gate.
    assert not Route("livecall-agents", "_0X.", "Dial(PJSIP/${EXTEN}@trunk)", "extensions.conf:3").through_gate
    assert not Route("office", "_0X.", "Goto(livecall-allowed,${EXTEN},1)", "extensions.conf:4").through_gate
    assert Route("office", "_0X.", "Goto(livecall-gate,${EXTEN},1)", "extensions.conf:5").through_gate
    assert Route("livecall-outbound", "_XXXXXXXXXXX", "Set(LIVECALL_DIALLED=...)", "extensions_livecall.conf:20").through_gate
