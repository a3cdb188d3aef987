"""Dial-string injection against the real sandbox: hostile Request-URIs from sipp phones, through
both entries (1001 Stasis, 1003 FastAGI). What matters is what reaches the trunk: the simulated
PSTN logs every SIP request it receives (pjsip debug), and the test holds that log against the
gate's decisions. How a hostile string was refused (PJSIP's 404, a dropped request, the gate's
invalid_number) does not matter; that nothing but an allowed number was dialled does.

Also here: the generated configuration loads with no warning or error.
"""

from __future__ import annotations

import re
import string
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecall_ari.config import load
from livecall_ari.gate.core import is_whole_number, trunk_number
from livecall_ari.recording.core import RecordingPolicy
from livecall_ari.sandbox.sipp import SippResult
from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, start_call

pytestmark = pytest.mark.sandbox

ALLOWED = "02079460018"
BLOCKED = "07700900123"  # the static decider's list: it must never reach the PSTN
SENTINEL = "07700900999"  # rings at the PSTN and never answers
ENTRIES = {"1001": "stasis", "1003": "agi"}
# PJSIP drops many hostile requests without an answer, so most of the wall time is sipp waiting
# out its timeout: keep many calls in flight, and the timeout short where no answer is expected.
CONCURRENT = 24

# Every ASCII punctuation character, raw and percent-escaped, inside an otherwise valid number;
# then the classic injections, escapes, lengths and non-ASCII forms.
FIXED = [
    *(f"0207946{c}0018" for c in string.punctuation),
    *(f"0207946%{ord(c):02X}0018" for c in string.punctuation),
    f"{ALLOWED}&PJSIP/{BLOCKED}@livecall-trunk",
    f"{ALLOWED}%26PJSIP%2F{BLOCKED}%40livecall-trunk",
    f"{ALLOWED}%26PJSIP%2F{BLOCKED}",
    f"{ALLOWED},60,U(livecall-notice-outcome^objected^1)",
    f"{ALLOWED}%2C60%2CU(x)",
    f"{ALLOWED}^x^y^marketing^no^no",
    f"{ALLOWED}%5Ex%5Ey%5Emarketing%5Eno%5Eno",
    f"{ALLOWED};{BLOCKED}",
    f"{ALLOWED}%3B{BLOCKED}",
    f"{ALLOWED}%00{BLOCKED}",
    f"{ALLOWED}%0A{BLOCKED}",
    f"{ALLOWED}%20{BLOCKED}",
    f"{ALLOWED}%09",
    f"{ALLOWED}${{EXTEN}}",
    f"{ALLOWED}%24%7BSHELL(id)%7D",
    f"{ALLOWED}\\&{BLOCKED}",
    f"{ALLOWED}%5C%26{BLOCKED}",
    f"{ALLOWED}){BLOCKED}(",
    "0" * 21,
    "0207946" + "0" * 93,
    "+" + "4" * 25,
    "０２０７９４６００１８",  # fullwidth digits
    "٠٢٠٧٩٤٦٠٠١٨",  # Arabic-Indic digits
    f"{ALLOWED}é",
    f"{ALLOWED}%C3%A9",
    f"{ALLOWED}%FF",
    "+",
    "++442079460018",
    f"+{ALLOWED}+",
]
# Whole numbers: allowed, answered, noticed, recorded. An escaped digit is that digit (RFC 3261
# 19.1.2), and PJSIP unescapes it.
VALID = [ALLOWED, "+442079460018", "%30207946001%38"]

HOSTILE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00", exclude_categories=("Cs",)), min_size=1, max_size=8
).filter(lambda s: not s.isdigit())
HOSTILE = st.builds(lambda a, junk, b: a + junk + b, st.from_regex(r"\+?[0-9]{1,8}", fullmatch=True), HOSTILE_TEXT,
                    st.from_regex(r"[0-9]{0,8}", fullmatch=True))


def pstn_log(sandbox: SandboxInfo) -> Path:
    return Path(sandbox.data["chroot"]) / "var/log/livecall-sandbox/pstn/messages.log"


_RECEIVED = re.compile(r"<--- Received SIP request \(\d+ bytes\) from [^\n]*--->\n(?P<message>.*?)(?=\n\[\d{4}-|\Z)", re.S)


def pstn_invites(text: str) -> Counter[str]:
    """The user parts of the new calls (INVITEs without a To tag) in the PSTN's log, one per call."""
    calls: dict[str, str] = {}
    for m in _RECEIVED.finditer(text):
        lines = m.group("message").splitlines()
        request = re.match(r"INVITE sip:(?:(?P<user>[^@ ]*)@)?\S* SIP/2\.0$", lines[0]) if lines else None
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if k}
        if request and "tag=" not in headers.get("to", ""):
            calls[headers.get("call-id", "")] = request.group("user") or ""
    return Counter(calls.values())


def place(sandbox: SandboxInfo, calls: list[tuple[str, str]]) -> list[SippResult]:
    """Place (agent, dialled) calls, CONCURRENT at a time; any outcome is fine for sipp."""

    def one(call: tuple[str, str]) -> SippResult:
        agent, dialled = call
        return start_call(sandbox, dialled, agent=agent, scenario="agent_call_any.xml", hold_ms=500,
                          timeout=40 if dialled in VALID else 15).wait(timeout=60)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(one, calls))


def assert_only_allowed_numbers_reached_the_pstn(sandbox: SandboxInfo, service: Service, log_from: int,
                                                 decided_before: int = 0) -> None:
    """The PSTN received, since ``log_from``, no call but to numbers the gate allowed (since the
    service's ``decided_before``-th decision), each no more often than it was allowed."""
    # A last allowed call (one that rings and is given up): once its INVITE is in the PSTN's
    # log, every earlier one is too.
    sentinel = start_call(sandbox, SENTINEL, scenario="agent_call_cancelled.xml", hold_ms=200).wait()
    assert sentinel.returncode == 0, sentinel.errors
    path = pstn_log(sandbox)

    def received() -> Counter[str]:
        with open(path, "rb") as f:
            f.seek(log_from)
            return pstn_invites(f.read().decode(errors="replace"))

    until(lambda: received()[SENTINEL] >= 1, what="the sentinel call in the PSTN's log")
    got = received()
    decisions = service.decisions()[decided_before:]
    allowed = Counter(trunk_number(d["number"]) for d in decisions if d["decision"] == "allow")
    unexpected = {user: n for user, n in got.items() if n > allowed.get(user, 0)}
    assert not unexpected, f"the PSTN received calls the gate did not allow: {unexpected} (allowed: {dict(allowed)})"
    assert BLOCKED not in got
    for d in decisions:
        if not is_whole_number(d["dialled"]):
            assert (d["decision"], d["reasons"]) == ("block", "invalid_number"), d


def finished_recordings(service: Service, call_ids: list[str]) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(call_ids))
    rows = service.rows(f"SELECT * FROM recordings WHERE call_id IN ({marks})", tuple(call_ids))
    return rows if len(rows) >= len(call_ids) and all(r["state"] != "recording" for r in rows) else []


def assert_answered_calls_were_noticed_and_recorded(service: Service, results: dict[str, SippResult]) -> None:
    s = load()
    policy = RecordingPolicy(s.recording.policy, s.recording.notice, s.recording.on_decline)
    allowed = [d for d in service.decisions() if d["decision"] == "allow" and d["number"] != SENTINEL]
    assert allowed, "no call was allowed: the test would prove nothing"
    recorded = [d["call_id"] for d in allowed if policy.records(d["purpose"])]
    if recorded:
        rows = until(lambda: finished_recordings(service, recorded), timeout=30, what="every allowed call's recording")
        assert {r["call_id"]: r["state"] for r in rows} == {c: "complete" for c in recorded}
    noticed = {d["call_id"] for d in allowed if policy.notifies(d["purpose"])}
    if noticed:
        notices = until(lambda: (n := service.rows("SELECT * FROM recording_notices")) and len(n) >= len(noticed) and n,
                        timeout=30, what="every allowed call's notice")
        assert {n["call_id"] for n in notices if n["played"]} >= noticed
    for dialled, result in results.items():
        assert result.answered, f"{dialled!r}: a valid number was not answered: {result.errors[-500:]}"


@pytest.fixture
def gate(sandbox: SandboxInfo, make_service: Any) -> Service:
    return make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_GATE_BLOCK_NUMBERS=BLOCKED)  # type: ignore[no-any-return]


def test_the_fixed_hostile_corpus_reaches_the_pstn_only_as_allowed_numbers(sandbox: SandboxInfo, gate: Service) -> None:
    log_from = pstn_log(sandbox).stat().st_size
    calls = [(agent, dialled) for agent in ENTRIES for dialled in [*FIXED, *VALID]]

    results = place(sandbox, calls)

    assert_only_allowed_numbers_reached_the_pstn(sandbox, gate, log_from)
    assert_answered_calls_were_noticed_and_recorded(
        gate, {f"{agent}:{dialled}": r for (agent, dialled), r in zip(calls, results) if dialled in VALID})
    decisions = gate.decisions()
    # Both entries saw hostile strings and refused them as invalid_number, and allowed the valid ones.
    for entry in ENTRIES.values():
        mine = [d for d in decisions if d["entry"] == entry]
        assert any(d["reasons"] == "invalid_number" for d in mine), entry
        numbers = [trunk_number(d["number"]) for d in mine if d["decision"] == "allow" and d["number"] != SENTINEL]
        assert numbers == [ALLOWED] * len(VALID), (entry, numbers)


@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(HOSTILE, min_size=12, max_size=12))
def test_generated_hostile_strings_never_reach_the_pstn_but_as_allowed_numbers(
    sandbox: SandboxInfo, gate: Service, batch: list[str]
) -> None:
    log_from, decided_before = pstn_log(sandbox).stat().st_size, len(gate.decisions())
    place(sandbox, [(agent, dialled) for agent in ENTRIES for dialled in batch])
    assert_only_allowed_numbers_reached_the_pstn(sandbox, gate, log_from, decided_before)


def test_a_number_with_punctuation_is_refused_as_invalid_and_the_agent_hears_why(sandbox: SandboxInfo, gate: Service) -> None:
    for agent in ENTRIES:
        result = start_call(sandbox, "0207-946-0018", agent=agent, scenario="agent_call_refused.xml").wait()
        assert result.returncode == 0, result.errors
        assert result.refused_cause == 21
        [reason_ms] = result.rtd("reason")
        prompt = Path(sandbox.data["chroot"]) / "usr/share/asterisk/sounds/livecall/reason-invalid_number.ulaw"
        assert reason_ms / 1000 == pytest.approx(prompt.stat().st_size / 8000, abs=0.6)
    assert [(d["entry"], d["decision"], d["reasons"], d["dialled"]) for d in gate.decisions()] == [
        ("stasis", "block", "invalid_number", "invalid:02079460018"),
        ("agi", "block", "invalid_number", "invalid:02079460018"),
    ]


# The modules that read LiveCall's generated files, and the command that reloads each; the last
# one's "Reloading module" line marks the end of what the reloads logged.
RELOADS = ["dialplan reload", "module reload features", "module reload res_ari.so", "manager reload",
           "module reload cdr_custom.so"]


def test_every_generated_file_loads_with_no_warning_or_error(sandbox: SandboxInfo) -> None:
    log = sandbox.pbx_log
    start = log.stat().st_size
    for command in RELOADS:
        sandbox.rx(command)

    def written() -> str:
        with open(log, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    text = until(lambda: (t := written()) and "Reloading module 'cdr_custom.so'" in t and t, what="the reloads in the PBX's log")
    assert "Reloading module 'features'" in text and "Reloading module 'res_ari.so'" in text
    # Lines of calls in progress carry a [C-...] call tag after the thread id: those are not loads.
    problems = [line for line in text.splitlines() if re.match(r"\[[^]]+\] (WARNING|ERROR)\[\d+\] ", line)]
    assert problems == [], "\n".join(problems)
