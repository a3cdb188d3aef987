"""An agent's objection from a call's page (PECR reg 21(1)(a)), over HTTP against the real
portal: for their own connected call only, with the call as evidence; never removed by an agent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from livecall_ari.app import App
from livecall_ari.portal.auth import Accounts
from livecall_ari.screening.models import ObjectionRecord
from tests.unit.protection_data import ALICE, Person, add_person, make_app
from tests.unit.test_portal_web import PASSWORD, csrf_of, login, run


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path)
    accounts = Accounts()
    for name, role, ext in (("sue", "supervisor", "2101"), ("ann", "agent", "2001"), ("bob", "agent", "1001"),
                            ("dee", "auditor", "")):
        accounts.add(name, role, PASSWORD, ext)
    return application


@pytest.fixture
def alice(app: App, tmp_path: Path) -> Person:
    person = add_person(app, tmp_path, ALICE, 1)  # a connected call by agent 2001 (ann)
    ObjectionRecord.delete().execute()  # add_person lists her too: here she has not objected yet
    return person


def test_an_agent_adds_an_objection_for_their_own_call_from_its_page(app: App, alice: Person) -> None:
    async def steps(c: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        await login(c, "ann")
        page = await c.get(f"/calls/{alice.call_id}")
        assert "data-objection" in page.text
        done = await c.post(f"/calls/{alice.call_id}/objection", data={"csrf": csrf_of(page)})
        return page, await c.get(done.headers["location"])

    page, after = run(app, steps)
    [row] = ObjectionRecord.select()
    assert row.number == int(ALICE.lstrip("+")) and row.recorded_by == "ann" and row.removed_at is None
    assert alice.call_id in row.reason and "agent ann" in row.reason
    assert f"Objection {row.id} recorded for {ALICE}" in after.text


def test_an_agent_cannot_object_for_another_agents_call_nor_remove_an_objection(app: App, alice: Person) -> None:
    async def steps(c: httpx.AsyncClient) -> list[int]:
        await login(c, "bob")  # extension 1001: not Alice's call
        token = csrf_of(await c.get("/calls"))
        other = await c.post(f"/calls/{alice.call_id}/objection", data={"csrf": token})
        c.cookies.clear()
        await login(c, "ann")
        token = csrf_of(await c.get(f"/calls/{alice.call_id}"))
        own = await c.post(f"/calls/{alice.call_id}/objection", data={"csrf": token})
        remove = await c.post("/lists/objections", data={"csrf": token, "action": "remove", "number": ALICE})
        return [other.status_code, own.status_code, remove.status_code]

    assert run(app, steps) == [404, 303, 403]
    [row] = ObjectionRecord.select()
    assert row.removed_at is None and row.recorded_by == "ann"  # bob's refused, ann's kept


def test_an_auditor_sees_no_objection_button_and_cannot_post_one(app: App, alice: Person) -> None:
    async def steps(c: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        await login(c, "dee")
        page = await c.get(f"/calls/{alice.call_id}")
        return page, await c.post(f"/calls/{alice.call_id}/objection", data={"csrf": csrf_of(page)})

    page, refused = run(app, steps)
    assert page.status_code == 200 and "data-objection" not in page.text
    assert refused.status_code == 403 and ObjectionRecord.select().count() == 0
