"""Bad input to the FastAGI entry (issue 9), over real loopback sockets: a real FastAgiServer
with the gate's real AGI handler (a static decider, decisions kept in memory). Whatever a client
sends (bytes, header blocks with hostile values, replies that are not AGI), the server answers
only with well-formed AGI commands or closes the connection without a word, never hangs, and
keeps answering the next well-formed request."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from typing import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from livecall_ari.fastagi.server import FastAgiServer
from livecall_ari.gate.agi import GateAgiHandler
from livecall_ari.gate.core import CallAttempt, Decision, StaticDecider
from livecall_ari.gate.services import GateService

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# What the gate may say: SET VARIABLE of one of its variables, the value quoted with \" and \\.
COMMAND = re.compile(r'^SET VARIABLE (LIVECALL_DECISION|LIVECALL_NUMBER|LIVECALL_REASONS|LIVECALL_PROMPTS) "((?:[^"\\\r\n]|\\.)*)"$')
SECRET = "fuzz-secret-0123456789abcdef"
GOOD = (
    f"agi_network: yes\nagi_network_script: screen?secret={SECRET}\nagi_channel: PJSIP/1003-00000001\nagi_uniqueid: 1700000000.1\n"
    "agi_extension: 02079460018\nagi_arg_1: 02079460018\nagi_arg_2: marketing\nagi_arg_3: 1003\n\n"
)


class Recorded:
    def __init__(self) -> None:
        self.attempts: list[CallAttempt] = []

    def record(self, attempt: CallAttempt, decision: Decision, entry: str, elapsed_us: int) -> None:
        self.attempts.append(attempt)


class LiveServer:
    """The server on its own event loop in a thread, so the test talks to it with plain sockets."""

    def __init__(self) -> None:
        self.recorded = Recorded()
        service = GateService(StaticDecider(frozenset({"02079460019"})), self.recorded)
        self.server = FastAgiServer({"screen": GateAgiHandler(service)}, "127.0.0.1", 0, secret=SECRET,
                                    header_timeout=0.5, reply_timeout=0.5, max_header_lines=50, max_line_bytes=2048)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def exchange(self, data: bytes, replies: list[bytes] | None = None, half_close: bool = True) -> list[str]:
        """Send ``data``; answer each command with the next of ``replies`` (then "200 result=1");
        return the commands received before the server closed. Fails if it does not close."""
        replies = list(replies or [])
        deadline = time.monotonic() + 3
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=3) as sock:
            try:
                sock.sendall(data)
                if half_close and not data.endswith(b"\n\n"):
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may already have dropped us
            buffer, commands = b"", []
            while True:
                assert time.monotonic() < deadline, "the server neither answered nor closed"
                try:
                    chunk = sock.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    commands.append(line.decode())
                    try:
                        sock.sendall((replies.pop(0) if replies else b"200 result=1") + b"\n")
                    except OSError:
                        pass
            assert buffer == b"", f"a partial command: {buffer!r}"
        return commands


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.close()


def still_answers(live: LiveServer) -> None:
    commands = live.exchange(GOOD.encode(), half_close=False)
    assert commands == ['SET VARIABLE LIVECALL_NUMBER "02079460018"', 'SET VARIABLE LIVECALL_DECISION "allow"']


def test_a_well_formed_request_is_answered(live: LiveServer) -> None:
    still_answers(live)
    assert live.recorded.attempts[-1].dialled == "02079460018"


@FUZZ
@given(st.binary(max_size=3000))
@example(b"agi_channel: x\n\n")  # no script: no handler
@example(f"agi_network_script: screen?secret={SECRET}\nagi_channel: x\n\n".encode())  # no arguments at all
@example(f"agi_network_script: screen?secret={SECRET}\n".encode() + b"agi_arg_1: 1\n" * 60 + b"\n")  # too many lines
@example(b"\xff\xfe" * 2000 + b"\n")  # one line longer than the limit
def test_any_bytes_are_answered_with_agi_commands_or_silence(live: LiveServer, data: bytes) -> None:
    for command in live.exchange(data):
        assert COMMAND.match(command), command


header_value = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"), max_size=60)


@FUZZ
@given(dialled=header_value, purpose=header_value, agent=header_value, caller_id=header_value,
       extra=st.lists(st.tuples(st.from_regex(r"\Aagi_[a-z_0-9]{1,12}\Z", fullmatch=True), header_value), max_size=5))
@example(dialled='02079460019"\\', purpose="marketing", agent="1", caller_id="", extra=[])
def test_hostile_header_values_are_screened_and_quoted(live: LiveServer, dialled: str, purpose: str, agent: str,
                                                       caller_id: str, extra: list[tuple[str, str]]) -> None:
    lines = [f"{name}: {value}" for name, value in extra] + [
        f"agi_network_script: screen?secret={SECRET}", "agi_channel: PJSIP/1003-00000001", "agi_uniqueid: 1700000000.9",
        f"agi_arg_1: {dialled}", f"agi_arg_2: {purpose}", f"agi_arg_3: {agent}", f"agi_arg_4: {caller_id}",
    ]
    data = ("\n".join(lines) + "\n\n").encode("utf-8", errors="replace")
    commands = live.exchange(data, half_close=False)
    # A header line whose value is only a \r ends the block early (Asterisk never sends one).
    if "\r" in "".join(v for _, v in extra) + dialled + purpose + agent + caller_id:
        return
    assert commands, "a complete header block with a script is always answered"
    assert all(COMMAND.match(c) for c in commands), commands
    assert commands[-1] in ('SET VARIABLE LIVECALL_DECISION "allow"', 'SET VARIABLE LIVECALL_DECISION "block"')


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"510 Invalid or unknown command", b"520 End of proper usage",
                                                                    b"200 result=-1", b"HANGUP", b""])), min_size=1, max_size=3))
def test_replies_that_are_not_agi_end_the_session_quietly(live: LiveServer, replies: list[bytes]) -> None:
    blocked = GOOD.replace("agi_arg_1: 02079460018", "agi_arg_1: 02079460019").encode()
    commands = live.exchange(blocked, [r.replace(b"\n", b" ") for r in replies], half_close=False)
    assert 1 <= len(commands) <= 3 and all(COMMAND.match(c) for c in commands)


@FUZZ
@given(offered=st.one_of(st.none(), st.text(max_size=60)), script=st.sampled_from(["screen", "/screen", "screen/"]),
       where=st.sampled_from(["agi_network_script", "agi_request"]))
@example(offered=SECRET[:-1], script="screen", where="agi_network_script")
@example(offered=SECRET + "x", script="screen", where="agi_network_script")
@example(offered="", script="screen", where="agi_network_script")
def test_without_the_right_secret_no_request_is_screened(live: LiveServer, offered: str | None, script: str,
                                                          where: str) -> None:
    from urllib.parse import quote

    if offered == SECRET:
        return
    target = script if offered is None else f"{script}?secret={quote(offered, safe='')}"
    if where == "agi_request":
        target = f"agi://127.0.0.1:4573/{target}"
    before = len(live.recorded.attempts)
    data = GOOD.replace(f"agi_network_script: screen?secret={SECRET}", f"{where}: {target}").encode()
    assert live.exchange(data, half_close=False) == []  # closed without a word
    assert len(live.recorded.attempts) == before  # and nothing screened or recorded


def test_after_all_that_the_server_still_answers(live: LiveServer) -> None:
    still_answers(live)
