"""An asyncio FastAGI server: reads the request's header block, hands it to a handler by script
name, and lets the handler send AGI commands.

Why our own: pyst2's FastAGI does not import on Python 3 and its AGI class calls signal.signal;
panoramisk's server spins at 95% CPU when a client closes before the header block ends. Here a
half-open, slow or garbage connection costs one task and is dropped: the header block must
arrive within ``header_timeout`` seconds, in at most ``max_header_lines`` lines of at most
``max_line_bytes`` bytes each, or the connection is closed without a word.

Every request must carry the shared secret (``[fastagi] secret``) that the generated dialplan
puts in each AGI URL's query (``agi://host:port/screen?secret=...``); Asterisk sends the path
with its query as ``agi_network_script``. A request without it, or with another value, is
closed before any handler runs, with one WARNING naming the peer and the script (never the
secret, nor the value offered). Handlers see the bare script name (``screen``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("livecall.fastagi")

_RESULT = re.compile(r"^(\d{3}) result=(-?\d+)(?: \((.*)\))?")
# Characters that pass through a dialplan argument and a URL query unescaped.
_SECRET = re.compile(r"[A-Za-z0-9._~-]{16,200}")
SECRET_PARAM = "secret"


def secret_problem(secret: str) -> str | None:
    """What is wrong with ``secret`` as the FastAGI secret, or None when it will do."""
    if not secret:
        return "no secret set: run `livecall init` (it adds one), then render the dialplan again"
    if not _SECRET.fullmatch(secret):
        return ("must be 16 to 200 letters, digits, '-', '_', '.' or '~' (it goes into the dialplan's "
                "AGI URLs); remove it and run `livecall init` to generate one")
    return None


@dataclass(frozen=True)
class AgiRequest:
    """The header block Asterisk sends first: ``agi_*`` variables, script name and arguments."""

    variables: Mapping[str, str]

    def _target(self) -> str:
        return self.variables.get("agi_network_script") or self.variables.get("agi_request", "")

    @property
    def script(self) -> str:
        """The path of ``agi://host:port/script?query`` without its slashes or query."""
        raw = self._target()
        path = urlsplit(raw).path if "://" in raw else raw.partition("?")[0]
        return path.strip("/")

    def offered_secret(self) -> str | None:
        """The ``secret`` of the URL's query: None when absent or given more than once."""
        raw = self._target()
        query = urlsplit(raw).query if "://" in raw else raw.partition("?")[2]
        values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == SECRET_PARAM]
        return values[0] if len(values) == 1 else None

    @property
    def args(self) -> list[str]:
        out: list[str] = []
        i = 1
        while f"agi_arg_{i}" in self.variables:
            out.append(self.variables[f"agi_arg_{i}"])
            i += 1
        return out

    def get(self, name: str, default: str = "") -> str:
        return self.variables.get(name, default)


@dataclass(frozen=True)
class AgiResponse:
    code: int
    result: int
    data: str


class AgiProtocolError(Exception):
    pass


def parse_header(lines: list[str]) -> AgiRequest:
    """Parse ``agi_name: value`` lines; raise AgiProtocolError on anything else."""
    variables: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.startswith("agi_") or not name.replace("_", "").isalnum():
            raise AgiProtocolError(f"not an AGI header line: {line[:80]!r}")
        variables[name] = value.strip()
    if "agi_channel" not in variables:
        raise AgiProtocolError("the header block has no agi_channel")
    return AgiRequest(variables)


def parse_response(line: str) -> AgiResponse:
    match = _RESULT.match(line)
    if not match:
        raise AgiProtocolError(f"unexpected AGI reply: {line[:80]!r}")
    return AgiResponse(int(match.group(1)), int(match.group(2)), match.group(3) or "")


def quote_value(value: str) -> str:
    """Quote an argument for an AGI command line (double quotes, backslash escapes, no newlines)."""
    clean = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{clean}"'


class AgiSession:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply_timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._reply_timeout = reply_timeout

    async def command(self, text: str) -> AgiResponse:
        self._writer.write(text.encode() + b"\n")
        await self._writer.drain()
        line = await asyncio.wait_for(self._reader.readline(), self._reply_timeout)
        if not line:
            raise AgiProtocolError("the channel closed the AGI connection")
        return parse_response(line.decode(errors="replace").strip())

    async def set_variable(self, name: str, value: str) -> None:
        reply = await self.command(f"SET VARIABLE {name} {quote_value(value)}")
        if reply.code != 200:
            raise AgiProtocolError(f"SET VARIABLE {name} failed: {reply}")


Handler = Callable[[AgiRequest, AgiSession], Awaitable[None]]


class FastAgiServer:
    def __init__(
        self,
        handlers: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        secret: str,
        header_timeout: float = 5.0,
        reply_timeout: float = 10.0,
        max_header_lines: int = 200,
        max_line_bytes: int = 8192,
    ) -> None:
        if (problem := secret_problem(secret)) is not None:
            raise ValueError(f"FastAGI secret: {problem}")
        self.handlers = dict(handlers)
        self._secret = secret.encode()
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.reply_timeout = reply_timeout
        self.max_header_lines = max_header_lines
        self.max_line_bytes = max_line_bytes
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=self.max_line_bytes)
        sockets = self._server.sockets or ()
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _read_header(self, reader: asyncio.StreamReader) -> AgiRequest:
        lines: list[str] = []
        while True:
            raw = await reader.readline()  # raises ValueError/LimitOverrunError on an over-long line
            if not raw:
                raise AgiProtocolError("connection closed before the header block ended")
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                return parse_header(lines)
            lines.append(line)
            if len(lines) > self.max_header_lines:
                raise AgiProtocolError("header block too long")

    def authentic(self, request: AgiRequest) -> bool:
        """Whether ``request`` carries the secret (compared in constant time)."""
        offered = request.offered_secret()
        return offered is not None and hmac.compare_digest(offered.encode(errors="replace"), self._secret)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(self._read_header(reader), self.header_timeout)
            if not self.authentic(request):
                peer = writer.get_extra_info("peername")
                log.warning("FastAGI: refused a request from %s for script %r: no or wrong secret",
                            _peer(peer), request.script[:80])
                return
            handler = self.handlers.get(request.script)
            if handler is None:
                log.warning("FastAGI: no handler for script %r", request.script)
                return
            await handler(request, AgiSession(reader, writer, self.reply_timeout))
        except (AgiProtocolError, asyncio.TimeoutError, ValueError, ConnectionError) as exc:
            log.debug("FastAGI connection dropped: %r", exc)
        except Exception:
            log.exception("FastAGI handler failed")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


def _peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "an unknown peer")
