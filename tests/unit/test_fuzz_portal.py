"""Bad input to the portal (issue 9), through the real ASGI app (httpx's ASGI transport, server
errors raised into the test) on a real database: any form, upload, query string or URL is
answered with a page or a clear refusal, never a server error; paths that climb out of a folder
and another organisation's calls and recordings are refused as if they did not exist."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from livecall_ari.app import App
from livecall_ari.gate.models import GateDecision
from livecall_ari.portal.auth import Accounts
from livecall_ari.protection.registry import row_id
from livecall_ari.recording.models import Recording
from livecall_ari.web.app import WebDependencies, build_asgi
from tests.unit.protection_data import ALICE, NOW, Person, add_person, make_app

PASSWORD = "a long enough password"


def fuzz(examples: int) -> settings:
    """Few examples each: every one goes through the whole app, and logins hash with argon2."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# Text as a browser (or an attacker) may send it: anything but lone surrogates.
any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=80)
OTHER_ORG = "other-org"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = make_app(tmp_path)
    accounts = Accounts()
    for name, role, ext in (("sue", "supervisor", "2101"), ("ann", "agent", "2001"), ("root", "admin", "")):
        accounts.add(name, role, PASSWORD, ext)
    yield application
    application.close()


@pytest.fixture
def alice(app: App, tmp_path: Path) -> Person:
    return add_person(app, tmp_path, ALICE, 1)


class PortalClient:
    """A synchronous face on httpx's ASGI transport, so hypothesis drives plain function calls."""

    def __init__(self, app: App) -> None:
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8089")
        self.cookies = self._client.cookies

    def __enter__(self) -> "PortalClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.get(url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.post(url, **kwargs))


def client_for(app: App) -> PortalClient:
    return PortalClient(app)


def log_in(client: PortalClient, user: str) -> str:
    """Log ``user`` in; their CSRF token for forms."""
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": token.group(1)})
    assert done.status_code == 303, done.text
    page = client.get("/lists")
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def admin(app: App, alice: Person) -> Iterator[tuple[PortalClient, str]]:
    with client_for(app) as client:
        yield client, log_in(client, "root")


def refused_or_served(status: int) -> bool:
    return status < 500


@fuzz(8)
@given(username=any_text, password=any_text, csrf=any_text, next_=any_text)
@example(username="root", password=PASSWORD, csrf="", next_="//evil.example/")
@example(username="root\x00", password="\udc00".encode("utf-8", "surrogatepass").decode("utf-8", "replace"), csrf="x",
         next_="/\t/evil.example")
def test_any_login_form_is_answered_and_never_sends_you_off_site(app: App, username: str, password: str, csrf: str,
                                                               next_: str) -> None:
    with client_for(app) as client:
        form = client.get("/login", params={"next": next_})
        assert form.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        for given_csrf in (csrf, token.group(1)):
            done = client.post("/login", data={"username": username, "password": password, "csrf": given_csrf, "next": next_})
            assert done.status_code in (303, 400, 401, 429), done.status_code
            if done.status_code == 303:
                location = done.headers["location"]
                assert location.startswith("/") and not location.startswith("//") and "\\" not in location


@fuzz(20)
@given(action=st.one_of(st.sampled_from(["add", "remove", "withdraw"]), any_text), number=any_text, reason=any_text,
       evidence=any_text, scope=st.one_of(st.sampled_from(["marketing", "claims", "all"]), any_text),
       path=st.sampled_from(["/lists/objections", "/lists/consents"]))
@example(action="add", number="020 7946 0123", reason="<script>alert(1)</script>", evidence="", scope="", path="/lists/objections")
def test_any_list_form_is_answered_with_a_message(admin: tuple[PortalClient, str], action: str, number: str, reason: str,
                                                  evidence: str, scope: str, path: str) -> None:
    client, csrf = admin
    done = client.post(path, data={"csrf": csrf, "action": action, "number": number, "reason": reason,
                                   "evidence": evidence, "scope": scope})
    if done.status_code == 422:  # a refused form: the page again, what was typed kept, the problem beside its field
        assert "Nothing changed" in done.text and 'class="field-error"' in done.text and "<script>alert" not in done.text
        return
    assert done.status_code == 303 and done.headers["location"].startswith("/lists?message=")
    page = client.get(done.headers["location"])
    assert page.status_code == 200 and "<script>alert" not in page.text


@fuzz(12)
@given(content=st.one_of(st.binary(max_size=400), st.lists(st.from_regex(r"\A0[1-3][0-9]{9}\Z", fullmatch=True), max_size=5)
                         .map(lambda ns: "".join(n + "\r\n" for n in ns).encode())),
       filename=any_text, name=st.one_of(st.sampled_from(["tps", "ctps"]), any_text),
       kind=st.sampled_from(["full", "delta", "", "x"]), list_date=st.one_of(st.just(""), st.just("2025-06-01"), any_text))
@example(content=b"0207 3787244\r\n", filename="../../../../etc/passwd", name="tps", kind="full", list_date="2025-06-01")
@example(content=b"0207 3787244\r\n", filename="..", name="tps", kind="full", list_date="2025-99-01")
def test_any_upload_is_imported_or_refused_with_a_reason(admin: tuple[PortalClient, str], tmp_path: Path, content: bytes,
                                                         filename: str, name: str, kind: str, list_date: str) -> None:
    client, csrf = admin
    done = client.post("/lists/import", headers={"x-requested-with": "fetch"},
                       data={"csrf": csrf, "list": name, "kind": kind, "list_date": list_date},
                       files={"file": (filename, content, "text/plain")})
    assert done.status_code in (200, 422), done.status_code
    if done.status_code == 422:
        assert "Not imported" in done.text or "Choose the list" in done.text or "nothing was imported" in done.text \
            or "no numbers" in done.text or "list in force is kept" in done.text, done.text[:500]
    # Whatever the file was called, nothing was written outside the lists folder and the temp upload.
    assert not (tmp_path.parent / "passwd").exists() and not Path("/etc/passwd.tmp").exists()


@fuzz(20)
@given(params=st.dictionaries(st.sampled_from(["number", "agent", "purpose", "decision", "from", "to", "before"]),
                              st.one_of(any_text, st.integers(-2**70, 2**70).map(str)), max_size=7))
@example(params={"before": str(2**64)})
@example(params={"before": "-1", "from": "2025-02-30", "to": "9999-12-31"})
def test_any_call_search_is_a_page(admin: tuple[PortalClient, str], params: dict[str, str]) -> None:
    client, _ = admin
    page = client.get("/calls", params=params)
    assert page.status_code == 200


@fuzz(15)
@given(params=st.dictionaries(st.sampled_from(["account", "from", "to", "plan", "month"]), any_text, max_size=5),
       which=st.sampled_from(["/charges", "/charges/statement.csv", "/charges/statement.html"]))
@example(params={"from": "2025-06-30", "to": "2025-06-01"}, which="/charges")
@example(params={"from": "0001-01-01", "to": "9999-12-31"}, which="/charges/statement.csv")
def test_any_charges_query_is_a_statement_or_a_clear_refusal(admin: tuple[PortalClient, str], params: dict[str, str],
                                                            which: str) -> None:
    client, _ = admin
    page = client.get(which, params=params)
    assert page.status_code in (200, 400), page.status_code


ids = st.one_of(st.integers(-2**70, 2**70).map(str), any_text.filter(lambda t: t not in ("", ".", "..")).map(lambda t: quote(t, safe="")))


@fuzz(25)
@given(ident=ids, template=st.sampled_from([
    "/calls/{}", "/recordings/{}", "/recordings/{}/audio", "/recordings/{}/download", "/protection/dsar/{}/download",
    "/protection/erasures/{}/certificate",
]))
@example(ident=str(2**63), template="/recordings/{}/audio")
@example(ident=str(2**64), template="/protection/dsar/{}/download")
@example(ident="..%2F..%2Flivecall.toml", template="/recordings/{}/audio")
def test_any_id_in_a_url_is_a_page_or_not_found(admin: tuple[PortalClient, str], ident: str, template: str) -> None:
    client, _ = admin
    page = client.get(template.format(ident), headers={"range": "bytes=0-"})
    assert page.status_code in (200, 206, 303, 404), (template, ident, page.status_code)


@fuzz(15)
@given(ident=ids, path=st.sampled_from(["/recordings/{}/comments", "/recordings/{}/scorecards",
                                        "/protection/breaches/{}/reported", "/protection/dsar/{}/export"]), body=any_text)
@example(ident=str(2**64), path="/recordings/{}/comments", body="x")
def test_any_id_in_a_form_url_is_a_change_or_a_refusal(admin: tuple[PortalClient, str], ident: str, path: str, body: str) -> None:
    client, csrf = admin
    done = client.post(path.format(ident), data={"csrf": csrf, "text": body, "reference": body, "at": body, "score": body})
    assert done.status_code in (303, 400, 403, 404), (path, ident, done.status_code)


@pytest.mark.parametrize("path", [
    "/static/../livecall.toml", "/static/%2e%2e/%2e%2e/livecall.toml", "/static/..%2f..%2flivecall.toml",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static//etc/passwd", "/static/....//....//etc/passwd",
    "/static/%252e%252e/livecall.toml", "/static/..\\..\\livecall.toml",
])
def test_static_files_never_climb_out_of_their_folder(admin: tuple[PortalClient, str], path: str) -> None:
    client, _ = admin
    page = client.get(path)
    assert page.status_code == 404, (path, page.status_code)
    assert "[ari]" not in page.text and "root:" not in page.text


def test_a_recording_leg_that_climbs_out_of_the_folder_is_the_mixed_file(admin: tuple[PortalClient, str], alice: Person) -> None:
    client, _ = admin
    for leg in ("../../../../livecall.toml", "/etc/passwd", "in/../../x", "%2e%2e"):
        audio = client.get(f"/recordings/{alice.recording_id}/audio", params={"leg": leg})
        assert audio.status_code == 200 and audio.content == alice.audio_bytes


def add_other_organisations_call(tmp_path: Path) -> tuple[str, int]:
    """A call of another organisation sharing the database (two PBXs, one PostgreSQL)."""
    call_id = "1800000000.7"
    at = NOW.replace(tzinfo=None)
    GateDecision.create(call_id=call_id, agent="2001", dialled="02079460077", number="+442079460077", purpose="marketing",
                        organisation=OTHER_ORG, decision="allow", reasons="", evidence="{}", entry="stasis", decided_at=at)
    audio = tmp_path / "recordings" / "other-org.wav"
    audio.write_bytes(b"RIFF other organisation's audio")
    rec = Recording.create(call_id=call_id, organisation=OTHER_ORG, agent="2001", number="+442079460077",
                           purpose="marketing", file=str(audio), state="complete", started_at=at, duration_ms=1000,
                           size_bytes=audio.stat().st_size, lawful_basis="legitimate_interests")
    return call_id, row_id(rec)


@pytest.mark.parametrize("user", ["root", "sue", "ann"])
def test_another_organisations_calls_and_recordings_are_refused(app: App, alice: Person, tmp_path: Path, user: str) -> None:
    call_id, recording_id = add_other_organisations_call(tmp_path)
    with client_for(app) as client:
        csrf = log_in(client, user)
        listing = client.get("/calls")
        assert listing.status_code == 200 and call_id not in listing.text and "+442079460077" not in listing.text
        assert alice.call_id in listing.text  # our own call is there
        assert client.get("/calls", params={"number": "02079460077"}).text.count(call_id) == 0
        assert client.get(f"/calls/{call_id}").status_code == 404
        for suffix in ("", "/audio", "/download"):
            page = client.get(f"/recordings/{recording_id}{suffix}")
            assert page.status_code in (403, 404), (suffix, page.status_code)
            assert b"other organisation" not in page.content
        for form in ("comments", "scorecards"):
            done = client.post(f"/recordings/{recording_id}/{form}", data={"csrf": csrf, "text": "x", "score": "1"})
            assert done.status_code in (403, 404), (form, done.status_code)
        assert client.get(f"/recordings/{alice.recording_id}/audio", headers={"range": "bytes=0-"}).status_code == 206 or user == "root"


def add_other_organisations_records(tmp_path: Path) -> tuple[str, int, list[str]]:
    """Another organisation's call, recording, coaching and objection; the texts that must never
    show in this organisation's portal."""
    import datetime as dt
    import json

    from livecall_ari.portal.models import CoachingComment, Scorecard
    from livecall_ari.screening.models import ObjectionRecord

    call_id, recording_id = add_other_organisations_call(tmp_path)
    at = NOW.replace(tzinfo=None)
    CoachingComment.create(recording=recording_id, agent="2001", author="boss-b", offset_ms=0,
                           text="OTHER-ORG coaching comment", created_at=at)
    Scorecard.create(recording=recording_id, agent="2001", author="boss-b", scores=json.dumps({"greeting": 1}),
                     note="OTHER-ORG scorecard note", created_at=at - dt.timedelta(days=1))
    ObjectionRecord.create(organisation=OTHER_ORG, number=442079460066, recorded_at=at, recorded_by="boss-b",
                           reason="OTHER-ORG objection", revision=1)
    return call_id, recording_id, ["OTHER-ORG", "+442079460077", "020 7946 0077", "+442079460066", call_id]


@pytest.mark.parametrize("user", ["root", "sue", "ann", "dee"])
def test_every_page_shows_only_this_organisations_records(app: App, alice: Person, tmp_path: Path, user: str) -> None:
    # Two organisations' PBXs sharing one database: walk every page the portal serves (the
    # live board's event stream excepted: it never ends) as each role of this organisation.
    from starlette.routing import Route

    Accounts().add("dee", "auditor", PASSWORD, "")
    call_id, recording_id, secrets_of_b = add_other_organisations_records(tmp_path)
    paths = []
    for route in build_asgi(WebDependencies(app)).routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()) or route.path == "/live/events":
            continue
        path = route.path.replace("{recording_id}", str(recording_id)).replace("{call_id}", call_id)
        paths.append(re.sub(r"\{[a-z_]+(:int)?\}", "1", path))
    assert "/coaching" in paths and "/calls/{call_id}" not in paths and len(paths) > 12
    with client_for(app) as client:
        log_in(client, user)
        for path in paths:
            page = client.get(path)
            assert page.status_code < 500, (path, page.status_code)
            text = page.content.decode(errors="replace")
            leaked = [s for s in secrets_of_b if s in text and s not in path]  # a 404 may echo what was asked
            assert not leaked, (user, path, leaked)


def test_forms_from_another_site_are_refused_whatever_they_carry(admin: tuple[PortalClient, str]) -> None:
    client, csrf = admin
    for origin in ("http://evil.example", "http://127.0.0.1:8089.evil.example", "https://127.0.0.1:8089"):
        done = client.post("/lists/objections", headers={"origin": origin},
                           data={"csrf": csrf, "action": "add", "number": "02079460123", "reason": "forged"})
        assert done.status_code == 403
    assert "+442079460123" not in client.get("/lists").text


def test_an_expired_or_made_up_session_cookie_is_a_login(app: App) -> None:
    with client_for(app) as client:
        for cookie in ("", "x" * 5000, "../../etc/passwd", "\x00", "' OR 1=1 --"):
            client.cookies.set("livecall_portal", cookie)
            assert client.get("/calls").status_code == 401
            assert client.get("/calls", headers={"accept": "text/html"}).status_code == 303
