"""The live board: agents' calls in progress, updated by server-sent events, with Listen,
Whisper and Barge buttons that ring the supervisor's own phone through the supervision service
(the same path as ``POST /api/supervision/sessions``, so the same checks and audit).

Calls come from ARI's ``GET /channels`` (core.live_calls keeps agents' PJSIP channels) joined
with the gate's decision for the channel, by call id; an inbound call's answering phone shows
with the call log's row of the caller's channel (decision and purpose ``inbound``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from typing import Any, AsyncIterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from livecall_ari.gate.models import GateDecision
from livecall_ari.portal.core import LiveCall, live_calls
from livecall_ari.portal.web import Ctx, Portal, field_text, secure
from livecall_ari.recording.core import INBOUND

log = logging.getLogger("livecall.portal")
MODES = ("listen", "whisper", "barge")
# An event stream ends after this long; the browser reconnects on its own (EventSource), so a
# service stopping never waits on an open stream for long.
STREAM_SECONDS = 60.0
INTERVAL = 1.0


async def current_calls(portal: Portal) -> tuple[list[LiveCall], str]:
    """The calls up now, with their gate decision, or an explanation when ARI cannot say."""
    ari = portal.services.get("ari")
    if ari is None:
        return [], "Live calls are not available: the service has no ARI connection."
    try:
        channels = await ari.call("channels")
    except Exception as exc:
        return [], f"Asterisk did not answer ({type(exc).__name__})."
    calls = live_calls(channels if isinstance(channels, list) else [], trunk=portal.settings.asterisk.trunk)
    ids = [c.channel_id for c in calls]
    if ids:
        decided = {str(d.call_id): d for d in GateDecision.select().where(GateDecision.call_id.in_(ids))}
        # An agent's outbound call is known by its own channel; an inbound call by the caller's
        # channel, which the answering phone's channel is linked to (ARI's channel JSON has no
        # linkedid: ask for it, only for the channels not known by their own id).
        linked = {c.channel_id: await _linkedid(ari, c.channel_id) for c in calls if c.channel_id not in decided}
        inbound = {str(d.call_id): d for d in GateDecision.select().where(
            GateDecision.call_id.in_([i for i in linked.values() if i]) & (GateDecision.decision == INBOUND))} if linked else {}
        calls = [dataclasses.replace(c, decision=str(d.decision), purpose=str(d.purpose), reasons=str(d.reasons))
                 if (d := decided.get(c.channel_id) or inbound.get(linked.get(c.channel_id, ""))) is not None else c
                 for c in calls]
    return calls, ""


async def _linkedid(ari: Any, channel_id: str) -> str:
    try:
        answer = await ari.call("get_variable", {"channelId": channel_id}, {"variable": "CHANNEL(linkedid)"})
    except Exception:
        return ""  # the channel hung up meanwhile
    return str(answer.get("value", "")) if isinstance(answer, dict) else ""


def board_json(calls: list[LiveCall], problem: str) -> dict[str, Any]:
    return {"calls": [dataclasses.asdict(c) for c in calls], "problem": problem}


def routes(portal: Portal) -> list[BaseRoute]:
    async def board(request: Request, ctx: Ctx) -> Response:
        calls, problem = await current_calls(portal)
        return portal.render(request, "live.html", ctx, title="Live calls", calls=calls, problem=problem, modes=MODES,
                             message=request.query_params.get("message", ""),
                             may_supervise=ctx.can("live.supervise") and bool(ctx.viewer.extension))

    async def events(request: Request, ctx: Ctx) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            last = ""
            ends = time.monotonic() + STREAM_SECONDS
            while time.monotonic() < ends:
                calls, problem = await current_calls(portal)
                data = json.dumps(board_json(calls, problem))
                if data != last:
                    yield f"event: calls\ndata: {data}\n\n"
                    last = data
                else:
                    yield ": still here\n\n"
                await asyncio.sleep(INTERVAL)
                if await request.is_disconnected():
                    return

        response = StreamingResponse(stream(), media_type="text/event-stream",
                                     headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"})
        return secure(response)

    async def supervise(request: Request, ctx: Ctx) -> Response:
        from livecall_ari.protection import audit
        from livecall_ari.supervision.services import SupervisionRefused

        agent, mode = field_text(ctx, "agent"), field_text(ctx, "mode")
        service, ari = portal.services.get("supervision"), portal.services.get("ari")
        if mode not in MODES or not agent:
            message = "Choose an agent and listen, whisper or barge."
        elif not ctx.viewer.extension:
            message = "Your account has no phone extension to ring (livecall users add --extension)."
        elif service is None or ari is None:
            message = "Supervision is not available (see the service's log)."
        else:
            try:
                session = await service.start_from_api(ari, ctx.viewer.extension, agent, mode)
                # The service audits as the phone; this names the portal user who asked.
                audit.append(ctx.viewer.username, "supervision.portal_request", f"agent:{agent}",
                             {"session": session.id, "mode": mode, "phone": ctx.viewer.extension})
                message = f"Ringing your phone ({ctx.viewer.extension}) to {mode} to {agent}: session {session.id}."
            except SupervisionRefused as refused:
                message = f"Refused: {refused.session.reasons.replace(',', ', ') or 'not allowed'}."
            except Exception as exc:
                log.warning("portal: could not ring %s: %r", ctx.viewer.extension, exc)
                message = f"Could not ring your phone ({ctx.viewer.extension}): {exc}"
        return secure(RedirectResponse(f"/live?message={quote(message)}", status_code=303))

    return [
        Route("/live", portal.page("live.view", board)),
        Route("/live/events", portal.page("live.view", events)),
        Route("/live/supervise", portal.page("live.supervise", supervise), methods=["POST"]),
    ]
