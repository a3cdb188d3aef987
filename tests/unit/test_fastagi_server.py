"""The FastAGI server over real loopback sockets: a well-formed request, and the garbage,
half-open and over-long connections that must not hurt it."""

import asyncio
import time

import pytest

from livecall_ari.fastagi.server import AgiProtocolError, AgiRequest, AgiSession, FastAgiServer, parse_header, quote_value

SECRET = "test-secret-0123456789abcdef"
HEADER = (
    f"agi_network: yes\nagi_network_script: screen?secret={SECRET}\nagi_request: agi://127.0.0.1:4573/screen?secret={SECRET}\n"
    "agi_channel: PJSIP/1003-00000001\nagi_uniqueid: 1700000000.1\nagi_extension: 02079460018\n"
    "agi_arg_1: 02079460018\nagi_arg_2: marketing\nagi_arg_3: 1003\nagi_arg_4: +441632960000\n\n"
)


async def with_server(body, header_timeout: float = 0.3):  # type: ignore[no-untyped-def]
    seen: list[AgiRequest] = []

    async def handler(request: AgiRequest, session: AgiSession) -> None:
        seen.append(request)
        await session.set_variable("LIVECALL_DECISION", "allow")

    server = FastAgiServer({"screen": handler}, "127.0.0.1", 0, secret=SECRET, header_timeout=header_timeout, reply_timeout=1)
    await server.start()
    try:
        return await body(server.port, seen)
    finally:
        await server.close()


async def agi_client(port: int, header: str = HEADER) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header.encode())
    await writer.drain()
    commands = []
    while line := await asyncio.wait_for(reader.readline(), 2):
        commands.append(line.decode().strip())
        writer.write(b"200 result=1\n")
        await writer.drain()
    writer.close()
    return commands


def test_a_request_is_parsed_and_answered() -> None:
    async def body(port: int, seen: list[AgiRequest]) -> None:
        assert await agi_client(port) == ['SET VARIABLE LIVECALL_DECISION "allow"']
        [request] = seen
        assert request.script == "screen"
        assert request.args == ["02079460018", "marketing", "1003", "+441632960000"]

    asyncio.run(with_server(body))


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\xff\xfe" * 100 + b"\n\n", b"agi_channel: x\n" * 500, b"A" * 100000 + b"\n"],
)
def test_garbage_is_dropped_and_the_server_still_answers(garbage: bytes) -> None:
    async def body(port: int, seen: list[AgiRequest]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(garbage)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, nothing said
        writer.close()
        assert await agi_client(port) == ['SET VARIABLE LIVECALL_DECISION "allow"']

    asyncio.run(with_server(body))


def test_half_open_connections_time_out_without_blocking_others() -> None:
    async def body(port: int, seen: list[AgiRequest]) -> None:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        for _, w in idle:
            w.write(b"agi_channel: PJSIP/x\n")  # never finishes the header block
        started = time.monotonic()
        assert await agi_client(port) == ['SET VARIABLE LIVECALL_DECISION "allow"']
        assert time.monotonic() - started < 0.25
        for r, _ in idle:
            assert await asyncio.wait_for(r.read(), 2) == b""
        for _, w in idle:
            w.close()

    asyncio.run(with_server(body))


def test_a_header_without_a_channel_is_refused() -> None:
    with pytest.raises(AgiProtocolError):
        parse_header(["agi_network: yes"])
    with pytest.raises(AgiProtocolError):
        parse_header(["not a header"])


def test_values_are_quoted_for_the_command_line() -> None:
    assert quote_value('a "b"\\c\nd') == '"a \\"b\\"\\\\c d"'
