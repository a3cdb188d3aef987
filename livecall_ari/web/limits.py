"""Size limits on request bodies, enforced while the body streams in.

Every request body has a limit: a list upload ``[web] max_upload_mb``, anything else (forms,
JSON) ``[web] max_body_kb``. A request whose Content-Length is over it is answered 413 before
a byte of its body is read; one without (chunked) or lying about it is cut off at the first
message that would pass the limit, which the application never sees. Either way nothing beyond
the limit is written anywhere, and the answer is a plain 413 saying what the limit is.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the body passes its limit (the application may not catch it)."""


@dataclass(frozen=True)
class BodyLimits:
    """The limits, in bytes: ``uploads`` for the paths in ``upload_paths``, ``body`` elsewhere."""

    body: int
    uploads: int
    upload_paths: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, max_body_kb: int, max_upload_mb: int, upload_paths: frozenset[str]) -> "BodyLimits":
        return cls(max(1, max_body_kb) * 1024, max(1, max_upload_mb) * 1024 * 1024, upload_paths)

    def for_path(self, path: str) -> int:
        return self.uploads if path in self.upload_paths else self.body


def describe(limit: int) -> str:
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    return f"{limit // 1024} KB" if limit >= 1024 else f"{limit} bytes"


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it has none (or one that is not a number)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """ASGI middleware applying :class:`BodyLimits` to every HTTP request."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await refuse(send, limit)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the application answered, the answer is 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        if exceeded and not started:
            await refuse(send, limit)


async def refuse(send: Send, limit: int) -> None:
    body = f"Request body too large: the limit here is {describe(limit)}.\n".encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"),
    ]})
    await send({"type": "http.response.body", "body": body})
