"""Dates, times, money, reasons, refused forms and the audit trail as people read them, in a real
browser (issue 19 items 3, 4, 6, 7, 8): every page writes a moment one way (London, with its
zone), a date one way and money as pounds, the live board included (portal.js, whatever the
browser's own locale and zone); a blocked call says why in words; a refused form keeps what was
typed; the audit trail finds a number as people write it and its details fit their column.

Shares test_portal_browser.py's fixtures (tests/integration/portal_browser.py): `livecall serve`
on the sandbox with a user of each role and real calls, and Debian's Chromium.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from livecall_ari.portal.formats import london_datetime
from tests.conftest import until
from tests.integration.harness import SandboxInfo, start_call
from tests.integration.portal_browser import (  # noqa: F401 (fixtures)
    TALKATIVE, PortalUnderTest, browser, login, page, portal,
)

pytestmark = pytest.mark.sandbox

MOMENT = re.compile(r"\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d (?:GMT|BST)\b")
MONEY = re.compile(r"£\d{1,3}(?:,\d{3})*\.\d\d\b")
# What the old formats looked like: ISO dates and times, seconds, "T", pence.
NOT_FOR_PEOPLE = [
    (re.compile(r"\b\d{4}-\d\d-\d\d\b"), "an ISO date"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "a time with seconds"),
    (re.compile(r"\b\d+(?:\.\d+)?p\b"), "money in pence"),
    (re.compile(r"\(p\)|\bPence\b"), "a pence column"),
    (re.compile(r"\b(?:stale_list|outside_hours|consent_required|invalid_number)\b(?!\))"), "a bare reason code"),
]

# The text a person reads on a page: the form fields' own values, raw codes (<code>), raw evidence
# (<details>) and an audit entry's recorded details are data, not formatting, and are left out.
READ_TEXT = """() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('input, textarea, select, code, details, td.details, small.code').forEach(e => e.remove());
  return main.innerText;
}"""


def pages_of(portal: PortalUnderTest) -> dict[str, list[str]]:
    return {
        "boss": ["/calls", f"/calls/{portal.recorded_call}", f"/calls/{portal.blocked_call}", "/lists", "/charges",
                 "/coaching", "/protection", "/audit", "/live"],
        "dpo": ["/calls", "/protection", "/audit", "/charges"],
        "agent1": ["/calls", f"/calls/{portal.recorded_call}", "/coaching"],
    }


def test_every_page_writes_dates_times_and_money_one_way(page: Any, portal: PortalUnderTest) -> None:
    seen_moments = 0
    for user, paths in pages_of(portal).items():
        page.context.clear_cookies()
        login(page, portal, user)
        for path in paths:
            assert page.goto(f"{portal.url}{path}").status == 200, path
            text = page.evaluate(READ_TEXT)
            for pattern, what in NOT_FOR_PEOPLE:
                found = pattern.search(text)
                assert found is None, f"{user} {path}: {what}: {found.group(0) if found else ''!r}"
            seen_moments += len(MOMENT.findall(text))
            for amount in re.findall(r"£\S*", text):
                assert MONEY.fullmatch(amount.rstrip(".,;)")), (path, amount)
    assert seen_moments >= 5  # calls, call pages, list imports, audit entries were all there to check

    page.context.clear_cookies()
    login(page, portal, "boss")
    page.goto(f"{portal.url}/charges")
    assert page.locator("dl.totals").count() == 1, page.evaluate(READ_TEXT)
    totals = page.locator("dl.totals").inner_text()
    assert len(MONEY.findall(totals)) == 3, totals  # net, VAT, total
    daily = page.locator("details table")
    assert daily.locator("th").nth(2).text_content() == "Cost"  # in a closed <details>: text, not rendered
    assert MONEY.fullmatch(daily.locator("tbody tr td").nth(2).text_content() or "")
    tooltip = page.locator("svg rect.cost title").first.text_content() or ""
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}: £\d+\.\d\d", tooltip), tooltip
    printable = page.request.get(f"{portal.url}/charges/statement.html").text()
    assert "Pence" not in printable and "p/min" not in printable and MONEY.search(printable)


def test_the_browser_writes_a_time_as_the_server_does_whatever_its_own_locale(browser: Any, portal: PortalUnderTest) -> None:
    context = browser.new_context(locale="en-US", timezone_id="America/New_York")
    try:
        pg = context.new_page()
        login(pg, portal, "sup")
        pg.goto(f"{portal.url}/live")
        instants = ["2026-11-29T14:05:59+00:00", "2026-07-01T08:30:00Z", "2026-03-29T00:59:00Z", "2026-03-29T01:00:00Z",
                    "2026-10-25T00:59:00Z", "2026-10-25T01:00:00Z", "2026-09-03T23:30:00.123+0000", "2027-01-01T00:00:00-05:00"]
        written = pg.evaluate("xs => xs.map(formatLondon)", instants)
        assert written == [london_datetime(x) for x in instants]
        assert pg.evaluate("formatLondon('')") == "-" == london_datetime("")
    finally:
        context.close()


def test_the_live_board_shows_since_in_london_time(sandbox: SandboxInfo, browser: Any, portal: PortalUnderTest) -> None:
    context = browser.new_context(locale="en-US", timezone_id="Asia/Tokyo", viewport={"width": 1100, "height": 800})
    agent = start_call(sandbox, TALKATIVE, agent="1001", hold_ms=20_000, timeout=60)
    try:
        pg = context.new_page()
        login(pg, portal, "sup")
        pg.goto(f"{portal.url}/live")
        row = pg.locator('#live-board tr[data-agent="1001"]')
        row.wait_for(timeout=30_000)  # arrives by server-sent event, written by portal.js
        since = until(lambda: row.locator("td").nth(3).inner_text().strip() or None, timeout=10, what="the since cell")
        assert MOMENT.fullmatch(since), since
        now = dt.datetime.now(dt.timezone.utc)
        assert since in {london_datetime(now - dt.timedelta(minutes=m)) for m in range(0, 3)}, since
        assert MOMENT.search(pg.locator("#live-state").inner_text())
    finally:
        context.close()
        for line in sandbox.rx("core show channels concise").splitlines():
            if line.startswith("PJSIP/1001-"):
                sandbox.rx(f"channel request hangup {line.split('!')[0]}")
        agent.wait(60)


def test_a_blocked_call_says_why_in_words_on_the_list(page: Any, portal: PortalUnderTest) -> None:
    login(page, portal, "sup")
    page.goto(f"{portal.url}/calls?decision=block")
    reasons = page.locator("table.calls tbody tr").first.locator("td.reasons")
    assert "Registered with the Telephone Preference Service" in reasons.inner_text()
    assert reasons.locator("small.code").inner_text() == "(tps)"  # the code, as secondary text
    assert reasons.locator("[title]").count() == 0  # nothing only in a tooltip


def test_a_refused_objection_keeps_what_was_typed_and_says_which_field(page: Any, portal: PortalUnderTest) -> None:
    login(page, portal, "boss")
    page.goto(f"{portal.url}/lists")
    page.locator("#o-number").fill("020 7946 01")
    page.locator("#o-reason").fill("Said no on the phone on 3 Nov")
    page.get_by_role("button", name="Add objection").click()
    page.wait_for_load_state()
    assert page.locator("#o-number").input_value() == "020 7946 01"
    assert page.locator("#o-reason").input_value() == "Said no on the phone on 3 Nov"
    error = page.locator("#o-number-error")
    assert error.is_visible() and "Not a telephone number" in error.inner_text()
    assert page.locator("#o-number").get_attribute("aria-invalid") == "true"
    assert page.locator("#o-number").get_attribute("aria-describedby") == "o-number-error"
    # Beside the field: just under the number box, not at the top of the page.
    box, message = page.locator("#o-number").bounding_box(), error.bounding_box()
    assert box is not None and message is not None and 0 <= message["y"] - (box["y"] + box["height"]) < 40
    assert page.locator("#o-reason-error").count() == 0
    assert not portal.rows("SELECT * FROM screening_objections WHERE reason LIKE 'Said no on the phone%'")


def test_the_audit_trail_finds_a_number_as_people_write_it_and_its_details_fit(page: Any, portal: PortalUnderTest) -> None:
    login(page, portal, "boss")
    page.goto(f"{portal.url}/lists")
    evidence = "Emailed us: " + "https://example.org/" + "x" * 600 + " " + "do not call " * 40
    page.locator("#o-number").fill("020 7946 0123")
    page.locator("#o-reason").fill(evidence)
    page.get_by_role("button", name="Add objection").click()
    page.wait_for_url(re.compile(r".*/lists\?message=.*"))
    page.context.clear_cookies()
    login(page, portal, "dpo")
    for written in ("020 7946 0123", "+44 20 7946 0123", "02079460123"):
        page.goto(f"{portal.url}/audit")
        page.get_by_label("Subject").fill(written)
        page.get_by_role("button", name="Show").click()
        rows = page.locator("table.audit tbody tr")
        assert rows.count() >= 1 and "objection.add" in rows.first.inner_text(), written
        assert "number:+442079460123" in rows.first.inner_text()
    # At 1100 px the entries fit: nothing to scroll sideways (a box that must scroll takes focus:
    # portal.js, tested in test_portal_access.py).
    box = page.locator("div.scroll:has(table.audit)")
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), box.evaluate("e => [e.scrollWidth, e.clientWidth]")
    details = page.locator("table.audit td.details").first
    box = details.bounding_box()
    assert box is not None and box["width"] <= 600, box
    assert MOMENT.fullmatch(page.locator("table.audit tbody tr").first.locator("td").nth(1).inner_text())
