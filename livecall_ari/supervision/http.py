"""Supervision's HTTP API (under /api/, behind the API token).

- ``POST /api/supervision/sessions`` ``{"supervisor": "2001", "agent": "1001", "mode": "listen"}``
  authorises, rings the supervisor's phone and answers 201 with the session (status ``ringing``);
  once answered, the dialplan joins the agent's call in that mode. 403 with the reasons when
  refused, 502 when the phone could not be rung.
- ``GET /api/supervision/sessions`` the most recent sessions (``?limit=``), newest first;
  ``GET /api/supervision/sessions/{id}`` one session with its events.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from livecall_ari.supervision.services import Session, SupervisionRefused, SupervisionService
from livecall_ari.web.app import WebDependencies


def session_json(session: Session, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(session).items():
        out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
    out["reasons"] = [r for r in session.reasons.split(",") if r]
    if events is not None:
        out["events"] = [{**e, "at": e["at"].isoformat() if e["at"] else None} for e in events]
    return out


def routes(deps: WebDependencies) -> list[BaseRoute]:
    service: SupervisionService | None = deps.services.get("supervision")
    ari = deps.services.get("ari")

    def unavailable() -> Response:
        return JSONResponse({"error": "supervision is not available (see the service's log)"}, status_code=503)

    async def create(request: Request) -> Response:
        if service is None or ari is None:
            return unavailable()
        try:
            body = json.loads(await request.body())
            supervisor, agent, mode = (str(body[k]) for k in ("supervisor", "agent", "mode"))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'expected {"supervisor": ..., "agent": ..., "mode": ...}'}, status_code=400)
        try:
            session = await service.start_from_api(ari, supervisor, agent, mode)
        except SupervisionRefused as refused:
            return JSONResponse({"error": "refused", **session_json(refused.session)}, status_code=403)
        except Exception as exc:
            return JSONResponse({"error": f"could not ring {supervisor}: {exc}"}, status_code=502)
        return JSONResponse(session_json(session), status_code=201)

    async def listing(request: Request) -> Response:
        if service is None:
            return unavailable()
        try:
            limit = max(1, min(500, int(request.query_params.get("limit", "50"))))
        except ValueError:
            return JSONResponse({"error": "limit must be a whole number"}, status_code=400)
        sessions = service.sessions(limit)
        return JSONResponse({"sessions": [session_json(s, service.events(s.id)) for s in sessions]})

    async def one(request: Request) -> Response:
        if service is None:
            return unavailable()
        session_id = request.path_params["session_id"]
        session = service.session(session_id)
        if session is None:
            return JSONResponse({"error": f"no session {session_id}"}, status_code=404)
        return JSONResponse(session_json(session, service.events(session_id)))

    return [
        Route("/api/supervision/sessions", create, methods=["POST"]),
        Route("/api/supervision/sessions", listing, methods=["GET"]),
        Route("/api/supervision/sessions/{session_id}", one, methods=["GET"]),
    ]
