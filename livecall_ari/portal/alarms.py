"""The unscreened-call alarm in the portal: every page shows admins and the DPO the open alarms
(web.Portal.render and base.html); an admin acknowledges one here, as `livecall alarms ack` does."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from livecall_ari.portal.core import row_key, safe_next
from livecall_ari.portal.web import Ctx, Portal, field_text, secure


def routes(portal: Portal) -> list[BaseRoute]:
    from livecall_ari.alarms.services import AlarmError, acknowledge

    async def ack(request: Request, ctx: Ctx) -> Response:
        key = row_key(request.path_params["alarm_id"])
        if key is None:
            return portal.refuse(request, ctx, "No such alarm.", status=404)
        try:
            acknowledge(key, ctx.viewer.username)
        except AlarmError as exc:
            return portal.refuse(request, ctx, str(exc), status=409)
        return secure(RedirectResponse(safe_next(field_text(ctx, "next", "/")), status_code=303))

    return [Route("/alarms/{alarm_id}/ack", portal.page("alarms.ack", ack), methods=["POST"])]
