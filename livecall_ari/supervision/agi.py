"""Supervision's FastAGI entry: each step of the generated dialplan asks the service.

``AGI(agi://127.0.0.1:4573/supervision,<step>,...)`` with step one of

- ``authorise,<supervisor>,<agent>,<mode>[,pin]``: sets ``LIVECALL_SUPERVISION`` to allow, pin or
  refuse (with ``LIVECALL_SUPERVISION_SESSION`` and ``LIVECALL_SUPERVISION_REASONS``); with
  ``pin`` the handler reads ``LIVECALL_SPY_PIN`` itself, so the PIN never appears in AGI
  arguments or Asterisk's logs;
- ``join,<session>,<endpoint>``: an API session's call was answered (allow, with the agent and mode);
- ``attach,<session>,<channels>``: the agent is on a call (``CHANNELS()`` of the agent);
- ``switch,<session>,<digit>``: the supervisor pressed 4, 5 or 6;
- ``end,<session>,<reason>``: from the hangup handler; sends no command (the channel is gone).

The verdict variable is set last and was cleared by the dialplan before asking: a handler that
fails half way leaves the dialplan to refuse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from livecall_ari.fastagi.server import AgiRequest, AgiSession, quote_value
from livecall_ari.supervision.core import SupervisionRequest
from livecall_ari.supervision.services import SpyInstruction, SupervisionService

log = logging.getLogger("livecall.supervision")


async def _get(session: AgiSession, expression: str) -> str:
    reply = await session.command(f"GET FULL VARIABLE {quote_value(expression)}")
    return reply.data if reply.code == 200 and reply.result == 1 else ""


async def _spy(session: AgiSession, spy: SpyInstruction | None) -> None:
    if spy is None:
        await session.set_variable("LIVECALL_SUPERVISION", "stop")
        return
    await session.set_variable("LIVECALL_SPY_CALL", spy.call_id)
    await session.set_variable("LIVECALL_SPY_OPTIONS", spy.options)
    await session.set_variable("LIVECALL_SPY_RECORD", spy.recording)
    await session.set_variable("LIVECALL_SPY_BEEP", "1" if spy.beep else "0")
    await session.set_variable("LIVECALL_SUPERVISION", "spy")


@dataclass
class SupervisionAgiHandler:
    service: SupervisionService

    async def __call__(self, request: AgiRequest, session: AgiSession) -> None:
        channel = request.get("agi_channel")
        match request.args:
            case ["authorise", supervisor, agent, mode, *rest]:
                pin = await _get(session, "${LIVECALL_SPY_PIN}") if rest[:1] == ["pin"] else None
                decision, row = self.service.request(SupervisionRequest(supervisor, agent, mode, pin=pin), channel)
                if row is not None:
                    await session.set_variable("LIVECALL_SUPERVISION_SESSION", row.id)
                await session.set_variable("LIVECALL_SUPERVISION_REASONS", ",".join(decision.reasons))
                await session.set_variable("LIVECALL_SUPERVISION", decision.verdict)
            case ["join", session_id, endpoint]:
                joined = self.service.join(session_id, endpoint, channel)
                if joined is None:
                    await session.set_variable("LIVECALL_SUPERVISION", "refuse")
                    return
                await session.set_variable("LIVECALL_SPY_AGENT", joined.agent)
                await session.set_variable("LIVECALL_SPY_MODE", joined.mode)
                await session.set_variable("LIVECALL_SUPERVISION", "allow")
            case ["attach", session_id, channels]:
                names = channels.split()
                # IMPORT reads UNIQUEID on the agent's channel; read here, not passed in, so a
                # name the dialplan did not find cannot be made up.
                ids = {name: await _get(session, f"${{IMPORT({name},UNIQUEID)}}") for name in names[:4]}
                await _spy(session, self.service.attach(session_id, channels, ids))
            case ["switch", session_id, digit]:
                await _spy(session, self.service.switch(session_id, digit))
            case ["end", session_id, *reason]:
                self.service.end(session_id, reason[0] if reason else "")
            case args:
                log.warning("supervision AGI: unexpected arguments %r from %s", args, channel)
