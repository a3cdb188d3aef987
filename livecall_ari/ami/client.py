"""A minimal AMI client: log in, send one action, read its response, log off.

LiveCall needs AMI for two actions on recordings: ``MixMonitorMute`` (pausing a recording while
a caller gives card details) and ``StopMixMonitor`` on another channel than the one running
(a supervisor's recording when the called party declines): there is no dialplan application or
ARI route for either, and MUTEAUDIO() would mute the call itself, not just the recording. A
connection per action keeps it simple; pauses are rare.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from livecall_ari.config import AmiSettings


class AmiError(Exception):
    pass


def encode(fields: Mapping[str, str]) -> bytes:
    lines = []
    for key, value in fields.items():
        if "\r" in value or "\n" in value:
            raise AmiError(f"AMI field {key} may not contain a line break")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_block(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.decode(errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


async def _read_response(reader: asyncio.StreamReader, action_id: str) -> dict[str, str]:
    """The block answering ``action_id`` (events in between are skipped)."""
    while True:
        block = parse_block(await reader.readuntil(b"\r\n\r\n"))
        if "Response" in block and block.get("ActionID") == action_id:
            return block


async def send_action(
    host: str, port: int, user: str, secret: str, action: Mapping[str, str], timeout: float = 3.0
) -> dict[str, str]:
    """Send one action; return its response, or raise AmiError saying why not."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                await reader.readline()  # "Asterisk Call Manager/x.y"
                writer.write(encode({"Action": "Login", "Username": user, "Secret": secret, "Events": "off", "ActionID": "login"}))
                login = await _read_response(reader, "login")
                if login.get("Response") != "Success":
                    raise AmiError(f"AMI login refused: {login.get('Message', '?')}")
                writer.write(encode({**action, "ActionID": "action"}))
                response = await _read_response(reader, "action")
                writer.write(encode({"Action": "Logoff", "ActionID": "logoff"}))
                await writer.drain()
                return response
            finally:
                writer.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
        raise AmiError(f"AMI at {host}:{port} unavailable: {exc!r}") from None


async def mute_mixmonitor(ami: "AmiSettings", channel: str, on: bool) -> None:
    """Mute (or unmute) both directions of the MixMonitor on ``channel``; AmiError if not done."""
    response = await send_action(ami.host, ami.port, ami.user, ami.secret, {
        "Action": "MixMonitorMute", "Channel": channel, "Direction": "both", "State": "1" if on else "0",
    })
    if response.get("Response") != "Success":
        raise AmiError(f"MixMonitorMute on {channel}: {response.get('Message', '?')}")


async def stop_mixmonitor(ami: "AmiSettings", channel: str) -> None:
    """Stop the MixMonitor on ``channel``; AmiError if not done."""
    response = await send_action(ami.host, ami.port, ami.user, ami.secret, {"Action": "StopMixMonitor", "Channel": channel})
    if response.get("Response") != "Success":
        raise AmiError(f"StopMixMonitor on {channel}: {response.get('Message', '?')}")
