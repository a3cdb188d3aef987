"""The portal over HTTP (the real ASGI app, a real SQLite database, real recording files):
logging in, cookies, CSRF, throttling, an agent's own calls, Range playback and its audit,
the users command, and the call search's indexes."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import pytest
from click.testing import CliRunner

from livecall_ari.app import App
from livecall_ari.cli import main
from livecall_ari.portal.auth import Accounts
from livecall_ari.portal.calls import CallFilters, search
from livecall_ari.protection.models import AuditEntry
from livecall_ari.screening.models import ObjectionRecord
from livecall_ari.web.app import WebDependencies, build_asgi
from tests.unit.protection_data import ALICE, Person, add_person, make_app

PASSWORD = "a long enough password"


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path)
    accounts = Accounts()
    for name, role, ext in (("sue", "supervisor", "2101"), ("ann", "agent", "2001"), ("bob", "agent", "1001"),
                            ("dee", "auditor", ""), ("root", "admin", "")):
        accounts.add(name, role, PASSWORD, ext)
    return application


@pytest.fixture
def alice(app: App, tmp_path: Path) -> Person:
    return add_person(app, tmp_path, ALICE, 1)  # a call by agent 2001 (ann), recorded


def run(app: App, steps: Callable[[httpx.AsyncClient], Awaitable[Any]], base: str = "http://127.0.0.1:8099") -> Any:
    async def go() -> Any:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            return await steps(client)

    return asyncio.run(go())


async def login(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return await client.post("/login", data={"username": user, "password": password, "csrf": token.group(1), "next": "/calls"})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    assert found is not None and found.group(1)
    return found.group(1)


def test_pages_need_a_login_and_the_cookie_is_httponly_and_strict(app: App) -> None:
    async def steps(c: httpx.AsyncClient) -> None:
        first = await c.get("/calls", headers={"accept": "text/html"})
        assert first.status_code == 303 and first.headers["location"] == "/login?next=/calls"
        assert (await c.get("/recordings/1/audio")).status_code == 401
        wrong = await login(c, "sue", "not the password")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        ok = await login(c, "sue")
        assert ok.status_code == 303 and ok.headers["location"] == "/calls"
        cookie = ok.headers["set-cookie"].lower()
        assert "livecall_portal=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie.split("livecall_login")[0]  # plain HTTP on loopback
        page = await c.get("/calls")
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        assert "default-src 'self'" in page.headers["content-security-policy"]
        out = await c.post("/logout", data={"csrf": csrf_of(page)})
        assert out.status_code == 303
        assert (await c.get("/calls", headers={"accept": "text/html"})).status_code == 303

    run(app, steps)


def test_over_https_the_session_cookie_is_secure(app: App) -> None:
    async def steps(c: httpx.AsyncClient) -> str:
        return (await login(c, "sue")).headers["set-cookie"]

    cookie = run(app, steps, base="https://portal.example")
    assert "livecall_portal=" in cookie and "Secure" in cookie


def test_a_login_form_without_its_token_is_refused(app: App) -> None:
    async def steps(c: httpx.AsyncClient) -> httpx.Response:
        await c.get("/login")
        return await c.post("/login", data={"username": "sue", "password": PASSWORD, "csrf": "forged"})

    response = run(app, steps)
    assert response.status_code == 400 and "livecall_portal" not in response.headers.get("set-cookie", "")


def test_five_wrong_passwords_lock_the_name_out_even_for_the_right_one(app: App) -> None:
    async def steps(c: httpx.AsyncClient) -> httpx.Response:
        for _ in range(5):
            assert (await login(c, "sue", "guess")).status_code == 401
        return await login(c, "sue")

    response = run(app, steps)
    assert response.status_code == 429 and int(response.headers["retry-after"]) > 0


def test_changes_need_the_sessions_csrf_token_and_the_same_origin(app: App) -> None:
    async def steps(c: httpx.AsyncClient) -> list[int]:
        await login(c, "sue")
        token = csrf_of(await c.get("/lists"))
        form = {"action": "add", "number": "02079460123", "reason": "said so on the phone"}
        forged = await c.post("/lists/objections", data={**form, "csrf": "nope"})
        other_site = await c.post("/lists/objections", data={**form, "csrf": token}, headers={"origin": "https://evil.example"})
        assert ObjectionRecord.select().count() == 0
        genuine = await c.post("/lists/objections", data={**form, "csrf": token})
        return [forged.status_code, other_site.status_code, genuine.status_code]

    assert run(app, steps) == [403, 403, 303]
    [row] = ObjectionRecord.select()
    assert (row.number, row.recorded_by, row.reason) == (442079460123, "sue", "said so on the phone")


def test_an_auditor_reads_lists_but_cannot_change_them(app: App) -> None:
    async def steps(c: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        await login(c, "dee")
        page = await c.get("/lists")
        refused = await c.post("/lists/objections", data={"csrf": csrf_of(page), "action": "add", "number": "02079460123",
                                                         "reason": "x"})
        return page, refused

    page, refused = run(app, steps)
    assert page.status_code == 200 and 'id="upload-form"' not in page.text
    assert refused.status_code == 403 and ObjectionRecord.select().count() == 0


def test_an_agent_sees_their_own_calls_and_nobody_elses(app: App, alice: Person) -> None:
    async def steps(c: httpx.AsyncClient) -> list[int]:
        await login(c, "bob")  # extension 1001: not Alice's call
        listing = await c.get("/calls", params={"agent": "2001"})
        assert ALICE not in listing.text
        codes = [(await c.get(path)).status_code for path in (
            f"/calls/{alice.call_id}", f"/recordings/{alice.recording_id}", f"/recordings/{alice.recording_id}/audio")]
        c.cookies.clear()
        await login(c, "ann")  # extension 2001: her own call
        assert ALICE in (await c.get("/calls")).text
        codes += [(await c.get(f"/calls/{alice.call_id}")).status_code,
                  (await c.get(f"/recordings/{alice.recording_id}/audio", headers={"range": "bytes=0-"})).status_code,
                  (await c.get(f"/recordings/{alice.recording_id}/download")).status_code,  # agents may not download
                  (await c.get(f"/recordings/{alice.recording_id}/audio")).status_code]  # nor take it whole from /audio
        return codes

    assert run(app, steps) == [404, 404, 404, 200, 206, 403, 403]


def test_a_role_that_may_only_play_gets_the_audio_in_windows_never_whole(app: App, alice: Person) -> None:
    # An agent's plain GET of /audio would be a download the page does not offer (issue 16):
    # the server answers only ranges, each at most PLAY_WINDOW bytes; a supervisor gets what they ask.
    from livecall_ari.portal.core import PLAY_WINDOW

    big = b"RIFF" + bytes(range(256)) * (3 * PLAY_WINDOW // 256)
    alice.audio.write_bytes(big)
    audio = f"/recordings/{alice.recording_id}/audio"

    async def as_user(user: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8099") as c:
            await login(c, user)
            return [await c.get(audio, headers={"range": "bytes=0-"}), await c.get(audio, headers={"range": f"bytes={PLAY_WINDOW}-"}),
                    await c.get(audio)]

    first, second, whole = asyncio.run(as_user("ann"))
    assert first.status_code == 206 and first.content == big[:PLAY_WINDOW]
    assert first.headers["content-range"] == f"bytes 0-{PLAY_WINDOW - 1}/{len(big)}"
    assert second.content == big[PLAY_WINDOW:2 * PLAY_WINDOW]
    assert whole.status_code == 403 and b"not download" in whole.content
    sue_first, _, sue_whole = asyncio.run(as_user("sue"))
    assert sue_first.content == big and sue_whole.status_code == 200 and sue_whole.content == big


def test_playback_serves_ranges_and_audits_each_play_once(app: App, alice: Person) -> None:
    audio = f"/recordings/{alice.recording_id}/audio"

    async def steps(c: httpx.AsyncClient) -> list[httpx.Response]:
        await login(c, "sue")
        return [await c.get(audio, headers={"range": "bytes=0-"}), await c.get(audio, headers={"range": "bytes=10-19"}),
                await c.get(audio, headers={"range": "bytes=-5"}), await c.get(audio, headers={"range": f"bytes={10**6}-"}),
                await c.get(f"/recordings/{alice.recording_id}/download")]

    start, middle, tail, beyond, download = run(app, steps)
    size = len(alice.audio_bytes)
    assert start.status_code == 206 and start.content == alice.audio_bytes
    assert middle.status_code == 206 and middle.content == alice.audio_bytes[10:20]
    assert middle.headers["content-range"] == f"bytes 10-19/{size}" and middle.headers["accept-ranges"] == "bytes"
    assert tail.content == alice.audio_bytes[-5:]
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    entries = [(e.actor, e.action, e.subject) for e in AuditEntry.select().where(AuditEntry.actor == "sue")]
    subject = f"recording:{alice.recording_id}"
    assert entries == [("sue", "recording.play", subject), ("sue", "recording.download", subject)]


def test_a_recording_sealed_at_rest_plays_decrypted_with_seeking(app: App, alice: Person) -> None:
    from livecall_ari.protection.crypto import encrypt_file, is_encrypted, recording_keys

    encrypt_file(alice.audio, recording_keys(app.settings, create=True), chunk=1024)
    assert is_encrypted(alice.audio)

    async def steps(c: httpx.AsyncClient) -> httpx.Response:
        await login(c, "sue")
        return await c.get(f"/recordings/{alice.recording_id}/audio", headers={"range": "bytes=1000-2099"})

    response = run(app, steps)
    assert response.status_code == 206 and response.content == alice.audio_bytes[1000:2100]


def test_coaching_comments_and_scorecards_reach_the_agent(app: App, alice: Person) -> None:
    async def steps(c: httpx.AsyncClient) -> str:
        await login(c, "sue")
        token = csrf_of(await c.get(f"/calls/{alice.call_id}"))
        comment = await c.post(f"/recordings/{alice.recording_id}/comments", data={"csrf": token, "offset": "1:05", "text": "Good opening"})
        bad = await c.post(f"/recordings/{alice.recording_id}/scorecards", data={"csrf": token, "opening": "9"})
        card = await c.post(f"/recordings/{alice.recording_id}/scorecards", data={
            "csrf": token, "opening": "5", "compliance": "4", "listening": "4", "outcome": "3", "note": "keep going"})
        assert (comment.status_code, bad.status_code, card.status_code) == (303, 400, 303)
        c.cookies.clear()
        await login(c, "ann")
        page = (await c.get(f"/calls/{alice.call_id}")).text
        assert "Good opening" in page and "1:05" in page and "keep going" in page
        assert 'action="/recordings/' not in page  # an agent reads feedback, writes none
        return (await c.get("/coaching")).text

    rollup = run(app, steps)
    assert "2001" in rollup and "80.0%" in rollup


def test_users_command_adds_resets_and_disables(app: App, tmp_path: Path) -> None:
    runner = CliRunner()
    config = ["--config", str(tmp_path / "livecall.toml")]
    env = {"LIVECALL_DATA_DIR": str(tmp_path)}
    added = runner.invoke(main, [*config, "users", "add", "zed", "--role", "supervisor", "--extension", "2002",
                                 "--password-stdin"], input="zed's password 1\n", env=env)
    assert added.exit_code == 0, added.output
    short = runner.invoke(main, [*config, "users", "add", "yan", "--role", "auditor", "--password-stdin"], input="short\n", env=env)
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    agent = runner.invoke(main, [*config, "users", "add", "yan", "--role", "agent", "--password-stdin"], input="long enough pw\n", env=env)
    assert agent.exit_code != 0 and "--extension" in agent.output
    accounts = Accounts()
    assert accounts.login("zed", "zed's password 1", "127.0.0.1").viewer is not None
    assert runner.invoke(main, [*config, "users", "disable", "zed"], env=env).exit_code == 0
    assert accounts.login("zed", "zed's password 1", "127.0.0.1").viewer is None
    reset = runner.invoke(main, [*config, "users", "reset", "zed", "--password-stdin"], input="a new password\n", env=env)
    assert reset.exit_code == 0, reset.output
    result = accounts.login("zed", "a new password", "127.0.0.1")
    assert result.viewer is not None and result.viewer.extension == "2002"
    stored = str(accounts.get("zed").password_hash)
    assert stored.startswith("$argon2id$") and "a new password" not in stored


def test_disabling_a_user_ends_their_session_at_once(app: App) -> None:
    accounts = Accounts()
    result = accounts.login("sue", PASSWORD, "127.0.0.1")
    assert accounts.session(result.token) is not None
    accounts.disable("sue")
    assert accounts.session(result.token) is None


def test_the_call_search_walks_an_index_for_each_filter(app: App, alice: Person) -> None:
    db = app.database()
    for filters, index in ((CallFilters(agent="2001"), "portal_gate_agent"), (CallFilters(purpose="marketing"), "portal_gate_purpose"),
                           (CallFilters(decision="block"), "portal_gate_decision"), (CallFilters(number=ALICE), "number")):
        rows, _ = search(filters, None)
        from livecall_ari.gate.models import GateDecision
        from livecall_ari.protection.registry import pk

        query = GateDecision.select()
        for field, value in (("agent", filters.agent), ("purpose", filters.purpose), ("decision", filters.decision),
                             ("number", filters.number)):
            if value:
                query = query.where(getattr(GateDecision, field) == value)
        sql, params = query.order_by(pk(GateDecision).desc()).limit(51).sql()
        plan = " ".join(str(r) for r in db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
        assert "USING INDEX" in plan and index in plan, (filters, plan)
    rows, more = search(CallFilters(), "2001", limit=1)
    assert [r.number for r in rows] == [ALICE] and more is None
    assert json.loads(rows[0].evidence)["called"] == ALICE


def test_failures_against_one_account_never_lock_out_another_behind_the_same_address(app: App) -> None:
    # Behind a proxy (or on loopback) every user shares one address: an attacker hammering one
    # account must not keep the others out (issue 16).
    async def steps(c: httpx.AsyncClient) -> tuple[list[int], httpx.Response, httpx.Response]:
        codes = [(await login(c, "sue", f"guess {i}")).status_code for i in range(12)]
        other = await login(c, "root")
        again = await login(c, "sue")
        return codes, other, again

    codes, other, again = run(app, steps)
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert other.status_code == 303
    assert again.status_code == 429


def test_an_account_backs_off_for_every_address_after_many_failures_from_many(app: App) -> None:
    from livecall_ari.portal.auth import ACCOUNT_MAX_FAILURES

    accounts = Accounts()
    for i in range(ACCOUNT_MAX_FAILURES):
        assert accounts.login("sue", "guess", f"192.0.2.{i}").viewer is None
    assert accounts.login("sue", PASSWORD, "198.51.100.7").retry_after > 0
    assert accounts.login("root", PASSWORD, "192.0.2.1").viewer is not None
