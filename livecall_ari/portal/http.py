"""The portal's routes: log in and out, the static files, and each page module's routes.

``routes(deps)`` is what ``livecall serve`` mounts (web/app.py); the objects the pages share are
built here once, from the dependencies, and passed down.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from livecall_ari.portal import alarms, calls, coaching, dataprotection, lists, live, media, statements
from livecall_ari.portal.auth import Accounts, csrf_matches
from livecall_ari.portal.core import safe_next
from livecall_ari.portal.web import (
    COOKIE, HERE, LOGIN_CSRF_COOKIE, Ctx, Portal, client_address, is_https, secure, set_session_cookie, templates,
)
from livecall_ari.web.app import WebDependencies


def build_portal(deps: WebDependencies) -> Portal:
    return Portal(deps.app, Accounts(organisation=deps.app.settings.organisation.id), templates(), deps.services)


def routes(deps: WebDependencies) -> list[BaseRoute]:
    portal = build_portal(deps)

    async def login_form(request: Request, message: str = "", status: int = 200, username: str = "") -> Response:
        token = secrets.token_urlsafe(16)
        response = portal.render(request, "login.html", None, status=status, title="Log in", message=message,
                                 login_csrf=token, next=safe_next(request.query_params.get("next")), username=username)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_https(request), path="/login")
        return response

    async def login_page(request: Request) -> Response:
        return await login_form(request)

    async def login(request: Request) -> Response:
        portal.app.database()
        form = await request.form(max_files=0, max_fields=10)
        username = str(form.get("username") or "").strip()
        if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), str(form.get("csrf") or "")):
            return await login_form(request, "The login form expired: please try again.", 400, username)
        result = portal.accounts.login(username, str(form.get("password") or ""), client_address(request))
        if result.viewer is None:
            response = await login_form(request, result.message, 429 if result.retry_after else 401, username)
            if result.retry_after:
                response.headers["Retry-After"] = str(result.retry_after)
            return response
        response = RedirectResponse(safe_next(str(form.get("next") or "/")), status_code=303)
        set_session_cookie(response, request, result.token)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return secure(response)

    async def logout(request: Request, ctx: Ctx) -> Response:
        portal.accounts.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return secure(response)

    async def home(request: Request, ctx: Ctx) -> Response:
        target = "/live" if ctx.can("live.view") else "/calls"
        return secure(RedirectResponse(target, status_code=303))

    found: list[BaseRoute] = [
        Route("/", portal.page("calls.view", home)),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", portal.page("calls.view", logout), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    for module in (calls, media, live, lists, statements, coaching, dataprotection, alarms):
        found.extend(module.routes(portal))
    return found


__all__ = ["routes", "quote"]
