"""Request body limits and streamed uploads, through the real ASGI app (a real SQLite database,
a logged-in admin) driven message by message, so the tests see what the app reads."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterator, MutableMapping

import httpx
import pytest

from livecall_ari.app import App
from livecall_ari.portal.auth import Accounts
from livecall_ari.screening.services import list_files
from livecall_ari.web.app import WebDependencies, build_asgi
from livecall_ari.web.limits import BodyLimits
from livecall_ari.web.server import private_tempdir
from tests.unit.protection_data import make_app

PASSWORD = "a long enough password"
HOST = "127.0.0.1:8089"
BOUNDARY = "livecall-test-boundary"
MB = 1024 * 1024


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = make_app(tmp_path)
    Accounts().add("root", "admin", PASSWORD, "")
    application.settings.web.api_token = "t" * 40
    yield application
    application.close()


class Asgi:
    """One request sent to the app a chunk at a time, counting what the app pulled."""

    def __init__(self, app: App) -> None:
        self.asgi = build_asgi(WebDependencies(app))
        self.pulled = 0
        self.peak_rss_growth = 0

    def request(self, method: str, path: str, headers: dict[str, str], chunks: Iterator[bytes],
                watch_rss: bool = False) -> tuple[int, bytes]:
        parts = iter(chunks)
        nxt: list[bytes | None] = [next(parts, None)]
        status: list[int] = []
        body = bytearray()
        base = rss() if watch_rss else 0

        async def receive() -> dict[str, Any]:
            chunk = nxt[0]
            if chunk is None:
                await asyncio.sleep(3600)  # the client waits for the answer
            nxt[0] = next(parts, None)
            assert chunk is not None
            self.pulled += len(chunk)
            if watch_rss:
                self.peak_rss_growth = max(self.peak_rss_growth, rss() - base)
            return {"type": "http.request", "body": chunk, "more_body": nxt[0] is not None}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": HOST, **headers}.items()],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8089)}
        asyncio.run(self.asgi(scope, receive, send))
        return status[0], bytes(body)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def logged_in(app: App) -> tuple[str, str]:
    """The admin's session cookie header and CSRF token."""

    async def go() -> tuple[str, str]:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            form = await client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            done = await client.post("/login", data={"username": "root", "password": PASSWORD, "csrf": token.group(1)})
            assert done.status_code == 303, done.text
            page = await client.get("/lists")
            csrf = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
            assert csrf is not None
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            return cookie, csrf.group(1)

    return asyncio.run(go())


def multipart_upload(csrf: str, file_name: str, content: Iterator[bytes]) -> Iterator[bytes]:
    fields = {"csrf": csrf, "list": "tps", "kind": "full", "list_date": "2026-11-01"}
    head = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items())
    head += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
             "Content-Type: text/plain\r\n\r\n")
    yield head.encode()
    yield from content
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def upload_headers(cookie: str, length: int | None = None) -> dict[str, str]:
    headers = {"cookie": cookie, "content-type": f"multipart/form-data; boundary={BOUNDARY}", "x-requested-with": "fetch"}
    return headers | ({"content-length": str(length)} if length is not None else {})


def numbers(count: int, block: int = 1 << 16) -> Iterator[bytes]:
    """``count`` distinct London numbers, one 12-character record and CRLF each, in ~0.9 MB chunks."""
    for start in range(0, count, block):
        yield "".join(f"020{i:08d} \r\n" for i in range(start, min(count, start + block))).encode()


def test_a_body_over_its_declared_limit_is_refused_before_any_of_it_is_read(app: App) -> None:
    app.settings.web.max_body_kb = 4
    client = Asgi(app)

    status, body = client.request("POST", "/login", {"content-type": "application/x-www-form-urlencoded",
                                                     "content-length": str(10 * MB)}, iter([b"x" * 1024] * 10240))

    assert status == 413 and body == b"Request body too large: the limit here is 4 KB.\n"
    assert client.pulled == 0


def test_a_chunked_body_is_cut_off_at_the_limit_and_the_app_sees_none_beyond_it(app: App) -> None:
    app.settings.web.max_body_kb = 4
    client = Asgi(app)

    status, body = client.request("POST", "/login", {"content-type": "application/x-www-form-urlencoded"},
                                  iter([b"a" * 1000] * 10000))

    assert status == 413 and b"4 KB" in body
    assert client.pulled <= 5000  # the chunk that crossed 4 KB was the last one taken


def test_a_form_under_the_limit_is_served(app: App) -> None:
    cookie, csrf = logged_in(app)
    form = f"csrf={csrf}&action=add&number=02079460001&reason=said+so+on+the+phone".encode()

    status, _ = Asgi(app).request("POST", "/lists/objections", {
        "cookie": cookie, "content-type": "application/x-www-form-urlencoded", "content-length": str(len(form))},
        iter([form]))

    assert status == 303


def test_an_upload_over_max_upload_mb_is_refused_and_the_list_in_force_is_kept(app: App) -> None:
    app.settings.web.max_upload_mb = 1
    cookie, csrf = logged_in(app)
    client = Asgi(app)

    status, body = client.request("POST", "/lists/import", upload_headers(cookie),
                                  multipart_upload(csrf, "tps.txt", numbers(200_000)))

    assert status == 413 and body == b"Request body too large: the limit here is 1 MB.\n"
    assert client.pulled <= 2 * MB
    assert list_files(app).store.current_versions() == {}


def test_a_large_upload_streams_to_disk_without_growing_the_process(app: App, tmp_path: Path) -> None:
    """A 120 MB upload (8.6 million numbers) through the portal: the process's resident memory
    while the body streams in stays far below the upload's size, and every number arrives."""
    folder = private_tempdir(app.settings)
    try:
        cookie, csrf = logged_in(app)
        client = Asgi(app)
        count = 120 * MB // 14

        status, body = client.request("POST", "/lists/import", upload_headers(cookie),
                                      multipart_upload(csrf, "tps-2026-11-01.txt", numbers(count)), watch_rss=True)

        assert status == 200, body[:500]
        assert client.pulled > 120 * MB
        assert client.peak_rss_growth < 40 * MB, client.peak_rss_growth
        imported = list_files(app).current("tps")
        assert imported is not None and imported.keys.shape[0] == count
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert list(folder.iterdir()) == []  # the spool and the copy are gone
    finally:
        import tempfile

        tempfile.tempdir = None


def test_limits_apply_uploads_only_to_the_upload_path() -> None:
    limits = BodyLimits.from_settings(256, 512, frozenset({"/lists/import"}))
    assert limits.for_path("/lists/import") == 512 * MB
    assert limits.for_path("/lists/objections") == 256 * 1024
    assert limits.for_path("/api/supervision/sessions") == 256 * 1024


def test_the_lists_page_says_the_upload_limit(app: App) -> None:
    app.settings.web.max_upload_mb = 300
    cookie, _ = logged_in(app)

    status, page = Asgi(app).request("GET", "/lists", {"cookie": cookie, "accept": "text/html"}, iter([b""]))

    assert status == 200
    assert b'data-max-mb="300"' in page and b"(up to 300 MB)" in page
