"""The portal's HTTP plumbing: who is asking (the session cookie), whether they may (core.can),
whether a form is genuine (CSRF token, Origin), and rendering a page.

Every page handler is wrapped by :meth:`Portal.page` with the permission it needs; the wrapper
answers the login redirect, the 403 and the CSRF refusal itself, so a handler only sees
requests it may serve. Responses carry a Content-Security-Policy that allows nothing from
another site (and no inline script), so a page cannot load anything the PBX cannot reach.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import quote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from livecall_ari import config
from livecall_ari.app import App
from livecall_ari.portal import formats
from livecall_ari.portal.auth import Accounts, csrf_matches
from livecall_ari.portal.core import PERMISSIONS, Viewer, can, same_origin

COOKIE = "livecall_portal"
LOGIN_CSRF_COOKIE = "livecall_login"
HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a form says beside a number field it could not read.
NOT_A_NUMBER = "Not a telephone number: type it as dialled (020 7946 0014) or in full (+44 20 7946 0014)."


@dataclass
class Ctx:
    """What a page handler gets besides the request: the viewer, their CSRF token, the form."""

    viewer: Viewer
    csrf: str
    form: FormData | None = None

    def can(self, permission: str) -> bool:
        return can(self.viewer, permission)


Handler = Callable[[Request, Ctx], Awaitable[Response]]


@dataclass(frozen=True)
class FormState:
    """A refused form as it was sent: its values (shown again, so nothing typed is lost) and
    what is wrong, by field name (shown beside the field)."""

    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: Ctx, names: tuple[str, ...], **errors: str) -> "FormState":
        return cls({n: field_text(ctx, n) for n in names}, errors)


class Forms(dict[str, FormState]):
    """The page's refused forms by name; any other form is blank."""

    def __missing__(self, key: str) -> FormState:
        return FormState()


def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["hms"] = _hms
    env.filters["when"] = formats.london_datetime
    env.filters["day"] = formats.london_date
    env.filters["money"] = formats.money
    env.filters["reason"] = formats.reason_text
    env.filters["tojson_attr"] = lambda v: json.dumps(v)
    env.globals["quote"] = quote
    return env


def _hms(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = int(ms) // 1000
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def is_https(request: Request) -> bool:
    """The page was asked for over HTTPS: directly, or through a proxy named in ``[web]
    trusted_proxies`` (uvicorn rewrites the scheme only for those)."""
    return request.url.scheme == "https"


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


@dataclass
class Portal:
    app: App
    accounts: Accounts
    env: jinja2.Environment
    services: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)

    @property
    def settings(self) -> Any:
        return self.app.settings

    def render(self, request: Request, name: str, ctx: Ctx | None, status: int = 200, **values: Any) -> Response:
        viewer = ctx.viewer if ctx else None
        nav = [(href, label) for href, label, perm in NAV if viewer is not None and can(viewer, perm)]
        body = self.env.get_template(name).render(
            request=request, viewer=viewer, csrf=ctx.csrf if ctx else "", nav=nav, path=request.url.path,
            unscreened=unscreened_alarms() if viewer is not None and can(viewer, "alarms.view") else [],
            uploads=backlog_notice(self.settings) if viewer is not None and can(viewer, "alarms.view") else None,
            can=(lambda p: viewer is not None and can(viewer, p)), organisation=self.settings.organisation.name,
            **({"forms": Forms()} | values),
        )
        return secure(HTMLResponse(body, status_code=status))

    def refuse(self, request: Request, ctx: Ctx, message: str, status: int = 403) -> Response:
        return self.render(request, "error.html", ctx, status=status, title="Not allowed" if status == 403 else "Not found",
                           message=message)

    def page(self, permission: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap ``handler``: a session is required, the permission checked, a change verified."""
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")

        async def endpoint(request: Request) -> Response:
            self.app.database()
            found = self.accounts.session(request.cookies.get(COOKIE))
            if found is None:
                wants_page = request.method not in UNSAFE and "text/html" in request.headers.get("accept", "")
                if not wants_page:
                    return secure(Response("log in first", status_code=401))
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return secure(RedirectResponse(f"/login?next={quote(target)}", status_code=303))
            viewer, csrf = found
            ctx = Ctx(viewer, csrf)
            if not can(viewer, permission):
                return self.refuse(request, ctx, "Your role does not allow this.")
            if request.method in UNSAFE:
                if not same_origin(request.headers.get("origin"), request.headers.get("host"), request.url.scheme):
                    return self.refuse(request, ctx, "This form came from another site.")
                ctx.form = await request.form(max_files=1, max_fields=200)
                given = request.headers.get("x-csrf-token") or _text(ctx.form.get("csrf"))
                if not csrf_matches(csrf, given):
                    await ctx.form.close()
                    return self.refuse(request, ctx, "This form has expired: reload the page and try again.")
            try:
                return await handler(request, ctx)
            finally:
                if ctx.form is not None:
                    await ctx.form.close()  # an upload's spooled temp file, else left to the GC

        return endpoint


def backlog_notice(settings: "config.Settings") -> tuple[str, bool] | None:
    """Recordings waiting to upload to the object store (objects/checks.py), for the same eyes."""
    from livecall_ari.objects.checks import backlog_notice as notice

    return notice(settings)


def unscreened_alarms() -> list[dict[str, Any]]:
    """The unacknowledged unscreened-call alarms, for the banner every page shows admins and the DPO."""
    from livecall_ari.alarms.services import alarms

    return alarms(open_only=True)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def field_text(ctx: Ctx, name: str, default: str = "") -> str:
    value = ctx.form.get(name) if ctx.form is not None else None
    return value.strip() if isinstance(value, str) else default


def secure(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=is_https(request), path="/")


# The navigation, in order: (link, label, permission needed to see it).
NAV = (
    ("/calls", "Calls", "calls.view"),
    ("/live", "Live", "live.view"),
    ("/lists", "Lists", "lists.view"),
    ("/charges", "Charges", "charges.view"),
    ("/coaching", "Coaching", "coaching.view"),
    ("/protection", "Data protection", "protection.view"),
    ("/audit", "Audit trail", "audit.view"),
)
