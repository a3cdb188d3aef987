"""The gate's FastAGI entry: ``AGI(agi://127.0.0.1:4573/screen,<dialled>,<purpose>,<agent>,<caller id>)``.

It reaches the same decision as the Stasis entry and answers with channel variables; the
generated dialplan then goes to the allowed, blocked or unavailable context.
"""

from __future__ import annotations

from dataclasses import dataclass

from livecall_ari.fastagi.server import AgiRequest, AgiSession
from livecall_ari.gate.core import CallAttempt, prompts_for
from livecall_ari.gate.services import GateService


@dataclass
class GateAgiHandler:
    service: GateService
    default_purpose: str = "marketing"
    organisation: str = "default"

    async def __call__(self, request: AgiRequest, session: AgiSession) -> None:
        args = request.args + [""] * 4
        dialled, purpose, agent, caller_id = args[:4]
        attempt = CallAttempt(
            call_id=request.get("agi_uniqueid"),
            agent=agent,
            dialled=dialled or request.get("agi_extension"),
            purpose=purpose or self.default_purpose,
            at=self.service.now(),
            caller_id=caller_id or None,
            organisation=self.organisation,
        )
        decision = self.service.screen(attempt, "agi")
        if decision.allowed:
            # What the trunk dials: the allowed context dials this, never ${EXTEN}.
            await session.set_variable("LIVECALL_NUMBER", decision.dial)
            if decision.reasons:  # special_number: no notice, recorded only if the policy says so
                await session.set_variable("LIVECALL_REASONS", ",".join(decision.reasons))
        else:
            await session.set_variable("LIVECALL_REASONS", ",".join(decision.reasons))
            await session.set_variable("LIVECALL_PROMPTS", prompts_for(decision))
        await session.set_variable("LIVECALL_DECISION", decision.verdict)
