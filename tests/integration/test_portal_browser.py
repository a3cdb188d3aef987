"""The portal in a real browser (Playwright driving Debian's headless Chromium) against
`livecall serve` and real calls through the sandbox.

Chromium comes from Debian's `chromium` package (scripts/setup installs it; browsers are never
downloaded). Without it these tests are skipped on a developer's machine and fail in CI, like
the sandbox itself. Set LIVECALL_PORTAL_SCREENSHOTS=DIR to save the main pages as PNGs there
(docs/screenshots was made that way).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until
from tests.integration.harness import SandboxInfo, answering_phone, start_call
from tests.integration.portal_browser import (  # noqa: F401 (fixtures)
    ON_TPS, TALKATIVE, PortalUnderTest, browser, filled, login, page, portal,
)

pytestmark = pytest.mark.sandbox


def test_login_find_a_call_by_number_and_play_its_recording(page: Any, portal: PortalUnderTest) -> None:
    page.goto(f"{portal.url}/calls")
    assert "/login" in page.url  # nothing without logging in
    login(page, portal, "sup")
    page.goto(f"{portal.url}/calls")
    page.get_by_label("Number").fill(TALKATIVE)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.calls tbody tr")
    assert rows.count() == 1 and "+442079460710" in rows.first.inner_text()
    rows.first.locator("a").click()
    page.wait_for_url(f"**/calls/{portal.recorded_call}")
    assert "allow" in page.locator(".decision").first.inner_text()

    page.get_by_role("heading", name="Recording", exact=True).click()  # a user gesture, so play() is allowed
    page.locator("audio").first.evaluate("a => a.play()")
    position = page.locator(f"#pos-{portal.recording_id}")
    until(lambda: position.inner_text() not in ("0:00", ""), timeout=15, interval=0.2, what="the position to advance")
    assert re.fullmatch(r"0:0[1-9]", position.inner_text())
    seek = page.locator("audio").first.evaluate("a => { a.currentTime = 9; return a.currentTime }")
    assert seek >= 8

    plays = portal.rows("SELECT * FROM audit_log WHERE action = 'recording.play' AND subject = ?", f"recording:{portal.recording_id}")
    assert plays and plays[-1]["actor"] == "sup"
    ranged = page.request.get(f"{portal.url}/recordings/{portal.recording_id}/audio", headers={"Range": "bytes=100-199"})
    assert ranged.status == 206 and len(ranged.body()) == 100
    assert ranged.headers["content-range"].startswith("bytes 100-199/")


def test_a_blocked_call_shows_its_reason(page: Any, portal: PortalUnderTest) -> None:
    login(page, portal, "sup")
    page.goto(f"{portal.url}/calls?decision=block")
    row = page.locator("table.calls tbody tr").first
    assert "block" in row.inner_text() and "tps" in row.inner_text()
    row.locator("a").click()
    reasons = page.locator("ul.reasons").inner_text()
    assert "tps" in reasons and "Telephone Preference Service" in reasons


def test_uploading_a_tps_file_shows_its_counts_and_bad_lines(page: Any, portal: PortalUnderTest) -> None:
    today = dt.date.today().isoformat()
    upload = portal.tmp / f"tps-{today}.txt"
    good = [ON_TPS, "01614960001", "01134960002"]
    upload.write_bytes(("".join(f"{n[:4]:<5}{n[4:]:>7}\r\n" for n in good) + "NOT A NUMBER\r\n").encode())
    login(page, portal, "boss")
    page.goto(f"{portal.url}/lists")
    page.get_by_label("List", exact=True).select_option("tps")
    page.get_by_label("File from the supplier").set_input_files(str(upload))
    page.get_by_role("button", name="Upload and import").click()
    report = page.locator("#import-report")
    report.wait_for(timeout=30_000)
    assert report.locator('[data-count="count"]').inner_text() == "3"
    assert report.locator('[data-count="bad"]').inner_text() == "1"
    assert "line 4" in report.inner_text()
    assert page.locator("#upload-progress").get_attribute("value") == "100"
    [imported] = portal.rows("SELECT * FROM audit_log WHERE action = 'list.import' AND actor = 'boss'")
    assert '"count":3' in imported["details"].replace(" ", "")


def test_an_agent_cannot_open_another_agents_recording_even_by_url(page: Any, portal: PortalUnderTest) -> None:
    login(page, portal, "agent2")
    page.goto(f"{portal.url}/calls")
    assert "No calls match" in page.locator("table.calls").inner_text()  # 1002 made no calls
    for path in (f"/recordings/{portal.recording_id}", f"/calls/{portal.recorded_call}"):
        response = page.goto(f"{portal.url}{path}")
        assert response.status == 404, path
    for path in (f"/recordings/{portal.recording_id}/audio", f"/recordings/{portal.recording_id}/download"):
        assert page.request.get(f"{portal.url}{path}").status in (403, 404), path
    assert not portal.rows("SELECT * FROM audit_log WHERE actor = 'agent2' AND action LIKE 'recording.%'")
    # The agent whose call it is may play it.
    page.context.clear_cookies()
    login(page, portal, "agent1")
    assert page.goto(f"{portal.url}/calls/{portal.recorded_call}").status == 200
    assert page.request.get(f"{portal.url}/recordings/{portal.recording_id}/audio", headers={"Range": "bytes=0-99"}).status == 206


def test_an_auditor_cannot_change_a_list(page: Any, portal: PortalUnderTest) -> None:
    login(page, portal, "dpo")
    page.goto(f"{portal.url}/lists")
    assert page.locator("#upload-form").count() == 0
    assert page.get_by_role("button", name="Add objection").count() == 0
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = page.request.post(f"{portal.url}/lists/objections", form={"csrf": token, "action": "add",
                                                                          "number": "02079460123", "reason": "test"})
    assert response.status == 403
    assert not portal.rows("SELECT * FROM screening_objections WHERE number = 442079460123")
    # The auditor does read the lists and the data protection registers.
    assert page.goto(f"{portal.url}/protection").status == 200


def test_the_live_board_shows_a_call_and_listen_rings_the_supervisor(sandbox: SandboxInfo, page: Any, portal: PortalUnderTest) -> None:
    phone = answering_phone(sandbox, "2001", timeout=90)
    agent = start_call(sandbox, TALKATIVE, agent="1001", hold_ms=40_000, timeout=90)
    try:
        login(page, portal, "sup")
        page.goto(f"{portal.url}/live")
        row = page.locator('#live-board tr[data-agent="1001"]')
        row.wait_for(timeout=30_000)  # arrives by server-sent event
        if os.environ.get("LIVECALL_PORTAL_SCREENSHOTS"):
            Path(os.environ["LIVECALL_PORTAL_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(os.environ["LIVECALL_PORTAL_SCREENSHOTS"]) / "live.png"))
        row.get_by_role("button", name="Listen").click()
        page.wait_for_url(re.compile(r".*/live\?message=.*"))
        assert "Ringing your phone (2001)" in page.locator(".notice").first.inner_text()
        invited = lambda: "INVITE sip:2001" in "".join(  # noqa: E731
            f.read_text(errors="replace") for f in phone.workdir.glob("*messages*"))
        until(invited, timeout=20, what="the supervisor's phone to be rung")
        [session] = until(lambda: portal.rows("SELECT * FROM supervision_sessions WHERE origin = 'api' AND status IN ('waiting', 'active')"),
                          timeout=20, what="the supervisor to join")
        assert (session["supervisor"], session["agent"], session["mode"]) == ("2001", "1001", "listen")
        [asked] = portal.rows("SELECT * FROM audit_log WHERE action = 'supervision.portal_request'")
        assert asked["actor"] == "sup" and session["id"] in asked["details"]
    finally:
        for line in sandbox.rx("core show channels concise").splitlines():
            if line.startswith("PJSIP/1001-"):
                sandbox.rx(f"channel request hangup {line.split('!')[0]}")
        agent.wait(60)
        phone.wait(60)


def test_screenshots_of_the_main_pages(page: Any, filled: PortalUnderTest) -> None:
    """Every main page renders for the admin, with a row in each table (and is saved when
    LIVECALL_PORTAL_SCREENSHOTS is set)."""
    portal = filled
    out = os.environ.get("LIVECALL_PORTAL_SCREENSHOTS")
    login(page, portal, "boss")
    week = f"from={dt.date.today() - dt.timedelta(days=6)}&to={dt.date.today()}"
    pages = {"calls": "/calls", "call": f"/calls/{portal.recorded_call}", "blocked-call": f"/calls/{portal.blocked_call}",
             "lists": "/lists", "charges": f"/charges?{week}", "coaching": "/coaching",
             "data-protection": "/protection", "audit": "/audit"}
    assert page.goto(f"{portal.url}/live").status == 200
    for name, path in pages.items():
        response = page.goto(f"{portal.url}{path}")
        assert response.status == 200, path
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(out) / f"{name}.png"), full_page=False)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{portal.url}/calls")
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # readable on a phone
    if out:
        page.screenshot(path=str(Path(out) / "calls-phone.png"))
