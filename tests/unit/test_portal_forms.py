"""Refused forms keep what was typed and say beside the field what is wrong; the audit trail is
searched by a number as people write it, and its details wrap (issue 19 items 3 and 4). Through
the real ASGI app on a real database, with test_fuzz_portal's client and users."""

from __future__ import annotations

import re

from livecall_ari.portal.dataprotection import audit_subjects, detail_pairs
from livecall_ari.protection import audit
from livecall_ari.screening.numbers import NumberParser
from tests.unit.test_fuzz_portal import PortalClient, admin, alice, app  # noqa: F401  (fixtures)

parse = NumberParser("").parse


def field(page: str, name: str, form_action: str) -> re.Match[str] | None:
    form = re.search(rf'<form[^>]*action="{re.escape(form_action)}".*?</form>', page, re.S)
    assert form is not None, form_action
    return re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*>', form.group(0))


def test_a_refused_objection_keeps_the_number_and_evidence_and_names_the_field(admin: tuple[PortalClient, str]) -> None:
    client, csrf = admin
    done = client.post("/lists/objections", data={"csrf": csrf, "action": "add", "number": "020 7946 01",
                                                  "reason": "Said no on the phone, 3 Nov"})
    assert done.status_code == 422
    number = field(done.text, "number", "/lists/objections")
    evidence = field(done.text, "reason", "/lists/objections")
    assert number is not None and 'value="020 7946 01"' in number.group(0) and 'aria-invalid="true"' in number.group(0)
    assert evidence is not None and 'value="Said no on the phone, 3 Nov"' in evidence.group(0)
    assert 'aria-invalid' not in evidence.group(0)
    error = re.search(r'<span class="field-error" id="o-number-error" data-error-for="number">([^<]+)</span>', done.text)
    assert error is not None and "Not a telephone number" in error.group(1)
    assert 'aria-describedby="o-number-error"' in number.group(0)
    assert "Said no on the phone" not in client.get("/lists").text.split('id="h-objections"')[1].split("</table>")[0]


def test_a_refused_consent_names_each_missing_field(admin: tuple[PortalClient, str]) -> None:
    client, csrf = admin
    done = client.post("/lists/consents", data={"csrf": csrf, "action": "add", "number": "02079460123", "evidence": "",
                                                "scope": "claims"})
    assert done.status_code == 422
    assert re.search(r'data-error-for="evidence">Give the evidence', done.text)
    assert 'data-error-for="number"' not in done.text
    assert re.search(r'<option selected>claims</option>', done.text)
    number = field(done.text, "number", "/lists/consents")
    assert number is not None and 'value="02079460123"' in number.group(0)


def test_a_refused_breach_keeps_every_field(admin: tuple[PortalClient, str]) -> None:
    client, csrf = admin
    done = client.post("/protection/breaches", data={
        "csrf": csrf, "title": "Laptop left on a train", "aware_at": "", "nature": "A laptop with exports",
        "subjects": "about forty", "records": "12", "measures": "Remote wipe", "notifiable": "no"})
    assert done.status_code == 422
    assert re.search(r'data-error-for="subjects">A whole number', done.text)
    title = field(done.text, "title", "/protection/breaches")
    assert title is not None and 'value="Laptop left on a train"' in title.group(0)
    assert ">A laptop with exports</textarea>" in done.text and ">Remote wipe</textarea>" in done.text
    assert '<option value="no" selected>' in done.text and "<details class=\"card\" open>" in done.text


def test_a_refused_subject_access_request_keeps_the_number(admin: tuple[PortalClient, str]) -> None:
    client, csrf = admin
    done = client.post("/protection/dsar", data={"csrf": csrf, "number": "0207 946", "received": "2026-11-02"})
    assert done.status_code == 422
    number = field(done.text, "number", "/protection/dsar")
    received = field(done.text, "received", "/protection/dsar")
    assert number is not None and 'value="0207 946"' in number.group(0) and 'aria-invalid="true"' in number.group(0)
    assert received is not None and 'value="2026-11-02"' in received.group(0)


def test_an_audit_search_reads_a_number_as_people_write_it() -> None:
    for written in ("02079460014", "+44 20 7946 0014", "(020) 7946 0014", "0044 20 7946 0014", "number:020 7946 0014",
                    "number:+442079460014"):
        assert audit_subjects(written, parse) == ["number:+442079460014"], written
    assert audit_subjects("recording:12", parse) == ["recording:12"]
    assert audit_subjects("1700000000.1", parse) == ["1700000000.1", "call:1700000000.1", "recording:1700000000.1",
                                                     "agent:1700000000.1"]


def test_the_audit_page_finds_entries_by_a_number_as_typed(admin: tuple[PortalClient, str]) -> None:
    client, _ = admin
    audit.append("dpo", "dsar.log", "number:+442079460014", {"request": 7, "note": "x" * 300})
    for written in ("02079460014", "+44 20 7946 0014"):
        page = client.get("/audit", params={"subject": written})
        assert page.status_code == 200 and "number:+442079460014" in page.text and "dsar.log" in page.text, written
    assert "dsar.log" not in client.get("/audit", params={"subject": "02079460015"}).text


def test_audit_details_are_shown_as_name_and_value_lines() -> None:
    assert detail_pairs('{"request":7,"due_on":"2026-12-01","files":["a","b"]}') == [
        ("request", "7"), ("due_on", "2026-12-01"), ("files", '["a", "b"]')]
    assert detail_pairs("not json") == [("", "not json")]
