"""Two organisations' services sharing one database (issue 16 part 5): each portal shows only its
own organisation's records on every route, the tables that had no organisation column included
(subject access requests, breaches, the audit trail; supervision sessions by the call they
joined), and a user of one organisation cannot log into the other's portal. Through the real
ASGI app on a real database, with test_fuzz_portal's client and users."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from starlette.routing import Route

from livecall_ari.app import App
from livecall_ari.portal.auth import Accounts
from livecall_ari.protection import audit, breaches
from livecall_ari.protection.dsar import log_request
from livecall_ari.protection.models import AuditEntry, Breach, DsarRequest, ErasureJob, LegalHoldRecord, RetentionRun
from livecall_ari.protection.retention import add_hold
from livecall_ari.supervision.models import SupervisionSession
from livecall_ari.supervision.services import Session
from livecall_ari.supervision.store import DatabaseSessionStore
from livecall_ari.web.app import WebDependencies, build_asgi
from tests.unit.protection_data import NOW, Person
from tests.unit.test_fuzz_portal import (  # noqa: F401  (app, alice: fixtures)
    OTHER_ORG, PASSWORD, add_other_organisations_records, alice, app, client_for, log_in,
)

B_NUMBER = "+442079460066"


def other_organisations_app(app: App) -> App:
    """The other organisation's service: the same database, its own [organisation] id."""
    s = app.settings
    return App(dataclasses.replace(s, organisation=dataclasses.replace(s.organisation, id=OTHER_ORG, name="Other Org Ltd")))


def register_records(app: App, number: str, mark: str, call_id: str, agent: str) -> None:
    """A subject access request (with its export), a breach, an audit entry and a supervision
    session, written through the service functions as ``app``'s organisation's service does."""
    at = NOW
    request = log_request(app.settings, number, at, f"dpo-{mark}")
    export = app.settings.data_path() / f"export-{mark}.zip"
    export.write_bytes(f"{mark} subject access export".encode())
    DsarRequest.update(export_file=str(export), status="exported").where(DsarRequest.id == request.id).execute()
    breaches.add_breach(breaches.BreachFacts(f"{mark} breach", at, f"{mark} laptop lost", notifiable=False),
                        f"dpo-{mark}", at, app.settings.organisation.id)
    audit.append(f"dpo-{mark}", "note.add", f"number:{number}", {"note": f"{mark} audit note"}, at=at)
    # As the supervision service of this organisation stores them (supervision/plugin.py).
    DatabaseSessionStore(app.settings.organisation.id).save(Session(
        f"session-{mark}", f"{mark}-supervisor", agent, "phone", "listen", "listen", "ended", at, call_id=call_id))
    # A legal hold, an erasure and a retention run, as the DPO's commands file them.
    org = app.settings.organisation.id
    add_hold("call", f"{mark}-held-call", f"{mark} claim", f"dpo-{mark}", at, org)
    certificate = app.settings.data_path() / f"erasure-{mark}.json"
    certificate.write_text(f'{{"erased_by": "{mark} erasure"}}')
    ErasureJob.create(request_hash=f"{mark}-hash", pseudonym=f"{mark}-pseudonym", requested_by=f"dpo-{mark}",
                      started_at=at.replace(tzinfo=None), certificate=str(certificate), organisation=org)
    RetentionRun.create(started_at=at.replace(tzinfo=None), dry_run=True, actor=f"retention-{mark}", organisation=org)


def every_get_path(app: App, own_call: str, other_call: str, other_recording: int) -> list[str]:
    """Every page the portal serves to a GET (the live board's event stream excepted: it never
    ends), ids filled with the other organisation's, and this organisation's own call's page."""
    paths = [f"/calls/{own_call}"]
    for route in build_asgi(WebDependencies(app)).routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()) or route.path == "/live/events":
            continue
        path = route.path.replace("{recording_id}", str(other_recording)).replace("{call_id}", other_call)
        paths.append(re.sub(r"\{[a-z_]+(:int)?\}", "1", path))
    assert {"/coaching", "/protection", "/audit", "/protection/dsar/1/download"} <= set(paths) and len(paths) > 12
    return paths


def walk(app: App, user: str, paths: list[str], secrets: list[str], own: str) -> None:
    with client_for(app) as client:
        log_in(client, user)
        for path in paths:
            page = client.get(path)
            assert page.status_code < 500, (path, page.status_code)
            text = page.content.decode(errors="replace")
            leaked = [s for s in secrets if s in text and s not in path]  # a 404 may echo what was asked
            assert not leaked, (user, path, leaked)
        # The walk saw something: this organisation's own breach is there, for the roles that see it.
        page = client.get("/protection")
        assert page.status_code == 403 or f"{own} breach" in page.text


@pytest.fixture
def two_organisations(app: App, alice: Person, tmp_path: Path) -> tuple[App, str, int]:
    """Our records, then the other organisation's, each written by its own service."""
    Accounts().add("dee", "auditor", PASSWORD, "")
    register_records(app, alice.e164, "OWN", alice.call_id, "2001")
    other = other_organisations_app(app)
    other.database()  # the other service's audit entries are marked as its own from here on
    call_id, recording_id, _ = add_other_organisations_records(tmp_path)
    # The other PBX had a call with the same id and agent extension as ours: its session stays its own.
    register_records(other, B_NUMBER, "OTHER-ORG", alice.call_id, "2001")
    Accounts(organisation=OTHER_ORG).add("bea", "admin", PASSWORD, "")
    other.close()
    app.close()
    app.database()  # ours again
    return other, call_id, recording_id


def test_the_new_rows_carry_the_organisation_of_the_service_that_wrote_them(two_organisations: tuple[App, str, int]) -> None:
    assert {(r.organisation, r.logged_by) for r in DsarRequest.select()} == {("default", "dpo-OWN"), (OTHER_ORG, "dpo-OTHER-ORG")}
    assert {(r.organisation, r.title) for r in Breach.select()} == {("default", "OWN breach"), (OTHER_ORG, "OTHER-ORG breach")}
    notes = {str(e.actor): str(e.organisation) for e in AuditEntry.select().where(AuditEntry.action == "note.add")}
    assert notes == {"dpo-OWN": "default", "dpo-OTHER-ORG": OTHER_ORG}
    sessions = {str(r.supervisor): str(r.organisation) for r in SupervisionSession.select()}
    assert sessions == {"OWN-supervisor": "default", "OTHER-ORG-supervisor": OTHER_ORG}
    assert {(str(r.placed_by), str(r.organisation)) for r in LegalHoldRecord.select()} == {
        ("dpo-OWN", "default"), ("dpo-OTHER-ORG", OTHER_ORG)}
    assert audit.verify().ok


@pytest.mark.parametrize("user", ["root", "sue", "ann", "dee"])
def test_every_route_shows_this_organisation_only_its_own_records(app: App, alice: Person, user: str,
                                                                 two_organisations: tuple[App, str, int]) -> None:
    _, call_id, recording_id = two_organisations
    secrets = ["OTHER-ORG", B_NUMBER, "020 7946 0066", "+442079460077", call_id]
    walk(app, user, every_get_path(app, alice.call_id, call_id, recording_id), secrets, "OWN")
    with client_for(app) as client:
        log_in(client, user)
        assert "OWN-supervisor" in client.get(f"/calls/{alice.call_id}").text  # our own session on our call


def test_the_other_organisations_admin_sees_none_of_ours(app: App, alice: Person, two_organisations: tuple[App, str, int]) -> None:
    other, call_id, _ = two_organisations
    try:
        secrets = ["OWN", alice.e164, alice.call_id, "020 7946 0018"]
        walk(other, "bea", every_get_path(other, call_id, alice.call_id, alice.recording_id), secrets, "OTHER-ORG")
        with client_for(other) as client:
            log_in(client, "bea")
            page = client.get("/protection").text
            assert "OTHER-ORG breach" in page and B_NUMBER in page  # its own are there
            assert "OTHER-ORG audit note" in client.get("/audit", params={"subject": "020 7946 0066"}).text
    finally:
        other.close()
        app.close()
        app.database()


def test_a_user_of_another_organisation_cannot_log_in_here(app: App, two_organisations: tuple[App, str, int]) -> None:
    with client_for(app) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        done = client.post("/login", data={"username": "bea", "password": PASSWORD, "csrf": token.group(1)})
        assert done.status_code == 401 and "Wrong user name or password" in done.text
    assert "bea" not in [str(u.username) for u in Accounts().users()]


def test_a_user_from_before_organisations_joins_the_first_it_logs_into(app: App) -> None:
    from livecall_ari.portal.models import PortalUser

    Accounts().add("old", "admin", PASSWORD, "")
    PortalUser.update(organisation="").where(PortalUser.username == "old").execute()
    assert Accounts(organisation=OTHER_ORG).login("old", PASSWORD, "127.0.0.1").viewer is not None
    assert PortalUser.get(PortalUser.username == "old").organisation == OTHER_ORG
    assert Accounts().login("old", PASSWORD, "127.0.0.1").viewer is None


def test_another_organisations_request_and_breach_are_refused_by_id(app: App, two_organisations: tuple[App, str, int]) -> None:
    theirs = DsarRequest.get(DsarRequest.organisation == OTHER_ORG)
    breach = Breach.get(Breach.organisation == OTHER_ORG)
    with client_for(app) as client:
        csrf = log_in(client, "root")
        assert client.get(f"/protection/dsar/{theirs.id}/download").status_code == 404
        done = client.post(f"/protection/dsar/{theirs.id}/export", data={"csrf": csrf})
        assert done.status_code == 303 and "No%20such%20request" in done.headers["location"]
        done = client.post(f"/protection/breaches/{breach.id}/reported", data={"csrf": csrf, "reference": "X"})
        assert done.status_code == 303 and "No%20breach" in done.headers["location"]
    assert Breach.get_by_id(breach.id).reported_at is None
    hold = LegalHoldRecord.get(LegalHoldRecord.organisation == OTHER_ORG)
    job = ErasureJob.get(ErasureJob.organisation == OTHER_ORG)
    with client_for(app) as client:
        csrf = log_in(client, "root")
        done = client.post("/protection/holds", data={"csrf": csrf, "action": "release", "hold": str(hold.id)})
        assert done.status_code == 303 and "No%20legal%20hold" in done.headers["location"]
        assert client.get(f"/protection/erasures/{job.id}/certificate").status_code == 404
    assert LegalHoldRecord.get_by_id(hold.id).released_at is None


def test_migration_adds_the_organisation_columns_to_an_older_database(tmp_path: Path) -> None:
    import peewee

    from livecall_ari.portal.models import MIGRATIONS as PORTAL
    from livecall_ari.protection.models import MIGRATIONS as PROTECTION

    db = peewee.SqliteDatabase(str(tmp_path / "old.db"))
    tables = ("audit_log", "protection_dsar_requests", "protection_breaches", "portal_users", "protection_erasure_jobs",
              "protection_legal_holds", "protection_retention_runs")
    for table in tables:
        db.execute_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, x TEXT)")
    db.execute_sql("INSERT INTO protection_breaches (x) VALUES ('from before')")
    for migration in (*PROTECTION, *PORTAL):
        if "organisation" in migration.id:
            migration.apply(db)
            migration.apply(db)  # once more: nothing to add
    for table in tables:
        assert "organisation" in {c.name for c in db.get_columns(table)}, table
    assert db.execute_sql("SELECT organisation FROM protection_breaches").fetchall() == [("",)]


def test_a_writer_that_does_not_know_the_column_still_inserts(app: App) -> None:
    # An older service sharing the database during an upgrade writes no organisation: the
    # database fills in "" (a row from before), on a new database as on a migrated one.
    db = app.database()
    mark = db.param  # a boolean as a parameter: PostgreSQL takes no 1 for TRUE
    db.execute_sql("INSERT INTO protection_breaches (title, aware_at, nature, categories, subjects, records, consequences, "
                   "measures, notifiable, ico_reference, recorded_by, recorded_at) "
                   f"VALUES ('old writer', '2026-01-01 00:00:00', 'x', '', 0, 0, '', '', {mark}, '', 'old', '2026-01-01 00:00:00')",
                   [True])
    assert Breach.get(Breach.title == "old writer").organisation == ""
