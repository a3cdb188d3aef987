"""The portal under test in a real browser, shared by the browser tests (test_portal_browser.py,
test_portal_access.py): Debian's headless Chromium driven by Playwright, and `livecall serve`
with a user of each role and a few real calls through the sandbox behind it.

Chromium comes from Debian's `chromium` package (scripts/setup installs it; browsers are never
downloaded). Without it these tests are skipped on a developer's machine and fail in CI, like
the sandbox itself.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from livecall_ari.config import load
from tests.conftest import until
from tests.integration.harness import LIVECALL, SandboxInfo, Service, call, load_fresh_lists, open_for_marketing

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TALKATIVE = "02079460710"  # the simulated PSTN answers and talks for as long as the call lasts
ON_TPS = "02079460999"
PASSWORD = "portal-test-password"
USERS = [("sup", "supervisor", "2001"), ("boss", "admin", ""), ("dpo", "auditor", ""), ("agent1", "agent", "1001"),
         ("agent2", "agent", "1002")]


@dataclass
class PortalUnderTest:
    service: Service
    url: str
    tmp: Path
    recorded_call: str  # call id of 1001's answered, recorded call
    recording_id: int
    blocked_call: str

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        con = sqlite3.connect(self.service.db_path)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()


def _fail_or_skip(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _fail_or_skip("playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        _fail_or_skip(f"{CHROMIUM} is missing (apt-get install chromium; scripts/setup does)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _add_user(env: dict[str, str], name: str, role: str, extension: str) -> None:
    args = [*LIVECALL, "users", "add", name, "--role", role, "--password-stdin"] + (["--extension", extension] if extension else [])
    result = subprocess.run(args, input=PASSWORD + "\n", capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert result.returncode == 0, result.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def portal(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalUnderTest]:
    tmp = tmp_path_factory.mktemp("portal")
    db = tmp / "livecall.db"
    env = {**open_for_marketing(tmp), "LIVECALL_DATABASE_URL": f"sqlite:///{db}",
           "LIVECALL_SUPERVISION_SUPERVISORS": "2001"}
    service = Service(env, db)
    try:
        service.start()  # inside the try: a service slow to register is still stopped, not left answering calls
        load_fresh_lists(service, tmp, tps=[ON_TPS])
        for user in USERS:
            _add_user(env, *user)
        web = load().web
        url = f"http://{web.host}:{web.port}"
        until(lambda: _answers(f"{url}/healthz"), timeout=15, what="the portal")
        answered = call(sandbox, TALKATIVE, agent="1001", hold_ms=4000)
        assert answered.answered, answered.errors
        blocked = call(sandbox, ON_TPS, agent="1001", scenario="agent_call_refused.xml")
        assert blocked.refused_cause == 21, blocked.errors
        p = PortalUnderTest(service, url, tmp, "", 0, "")
        [rec] = until(lambda: p.rows("SELECT * FROM recordings WHERE state = 'complete' AND agent = '1001'"), timeout=30,
                      what="the recording to be finished")
        [blocked_row] = p.rows("SELECT * FROM gate_decisions WHERE decision = 'block'")
        p.recorded_call, p.recording_id, p.blocked_call = rec["call_id"], rec["id"], blocked_row["call_id"]
        yield p
    finally:
        service.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    pg = context.new_page()
    external: list[str] = []
    pg.on("request", lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None)
    yield pg
    context.close()
    assert not external, f"the portal loaded something from another site: {external}"


def login(page: Any, portal: PortalUnderTest, user: str) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(calls|live)$"))


@pytest.fixture(scope="module")
def filled(browser: Any, portal: PortalUnderTest) -> PortalUnderTest:
    """The portal with a row in every table that has per-row buttons: an objection, a consent,
    a subject access request, a legal hold, a breach, a comment and a scorecard."""
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        login(page, portal, "boss")
        token = page.locator('meta[name="csrf-token"]').get_attribute("content")
        posts = [
            ("/lists/objections", {"action": "add", "number": "02079460127", "reason": "asked not to be called, 3 Nov"}),
            ("/lists/consents", {"action": "add", "number": "02079460124", "scope": "marketing", "evidence": "web form 2 Nov"}),
            ("/protection/dsar", {"number": "02079460125", "received": ""}),
            ("/protection/holds", {"action": "add", "kind": "number", "target": "+442079460126", "reason": "claim 42"}),
            ("/protection/breaches", {"title": "Laptop lost", "nature": "a laptop with exports", "notifiable": "yes"}),
            (f"/recordings/{portal.recording_id}/comments", {"offset": "0:02", "text": "Good opening"}),
            (f"/recordings/{portal.recording_id}/scorecards", {"opening": "4", "compliance": "5", "listening": "3",
                                                               "outcome": "4", "note": "well done"}),
        ]
        for path, form in posts:
            response = page.request.post(f"{portal.url}{path}", form={"csrf": token, **form}, max_redirects=0)
            assert response.status == 303, (path, response.status, response.text()[:300])
    finally:
        ctx.close()
    return portal
