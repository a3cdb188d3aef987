"""Accounts, subscriptions and VAT invoices through the CLI and the portal, on a real database:
plans from subscriptions, trials, gap-free invoice numbers (two processes at once), credit
notes, and the PDF's text read back with pdftotext."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from livecall_ari.app import App
from livecall_ari.charges import billing
from livecall_ari.charges.invoice_pdf import render_pdf
from livecall_ari.charges.subscriptions import new_customer
from livecall_ari.cli import main
from livecall_ari.portal.auth import Accounts
from livecall_ari.web.app import WebDependencies, build_asgi
from tests.unit.protection_data import cli_env, make_app

SETTINGS = """
[invoicing]
supplier_name = "LiveCall Telecom Ltd"
supplier_address = "2 Low Street, York, YO1 1AA"
vat_number = "GB123456789"
"""
PASSWORD = "a long enough password"
_uid = iter(range(1, 10**6))


def cdr(account: str, dst: str, start: str, billsec: int) -> str:
    """A stock Master.csv line (local times) of an answered call."""
    begin = dt.datetime.fromisoformat(start)
    answer, end = begin + dt.timedelta(seconds=5), begin + dt.timedelta(seconds=5 + billsec)
    n = next(_uid)
    return (f'"{account}","2001","{dst}","livecall-agents","x","PJSIP/2001-{n}","PJSIP/trunk-{n}","Dial","x",'
            f'"{begin}","{answer}","{end}",{billsec + 5},{billsec},"ANSWERED","DOCUMENTATION","1748941200.{n}",""\n')


CALLS = [
    cdr("acc1", "02079460000", "2025-05-20 10:00:00", 60),   # before the subscription: 10p, no fee
    cdr("acc1", "02079460000", "2025-06-10 10:00:00", 60),   # the one trial call
    cdr("acc1", "02079460000", "2025-06-20 10:00:00", 120),  # in June's bundle
    cdr("acc1", "07700900123", "2025-07-05 10:00:00", 60),   # mobile: 20p
    cdr("acc1", "02079460000", "2025-07-25 10:00:00", 60),   # after the end: 10p, no fee
    cdr("acc2", "07700900123", "2025-06-03 09:00:00", 30),
]


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {"LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def ok(tmp_path: Path, *args: str) -> str:
    code, out, err = run(tmp_path, *args)
    assert code == 0, err
    return out


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path)
    with (tmp_path / "livecall.toml").open("a") as f:
        f.write(SETTINGS)
    (tmp_path / "Master.csv").write_text("".join(CALLS))
    ok(tmp_path, "cdr", "import", str(tmp_path / "Master.csv"))
    ok(tmp_path, "accounts", "add", "acc1", "--name", "Acme Windows Ltd", "--address", "1 High Street, Leeds, LS1 1AA",
       "--plan", "monthly", "--from", "2025-06-10", "--trial-calls", "1")
    ok(tmp_path, "accounts", "end", "acc1", "--on", "2025-07-15")
    ok(tmp_path, "accounts", "add", "acc2", "--name", "Bloggs & Co", "--address", "9 Side Road, Hull",
       "--plan", "daily", "--from", "2025-06-01")
    return application


def test_charges_follow_the_subscription_and_the_plan_option_quotes(app: App, tmp_path: Path) -> None:
    data = json.loads(ok(tmp_path, "charges", "--account", "acc1", "--from", "2025-05-01", "--to", "2025-07-31", "--json"))
    # June: 21 of 30 days (3500 x 21/30 = 2450); July: 15 of 31 days (1693.5 -> 1694); none in May.
    assert [(f["date"], f["pence"]) for f in data["fees"]] == [("2025-06-10", 2450), ("2025-07-01", 1694)]
    assert [(line["date"], line["trial"], line["pence"], line["bundle_seconds"]) for line in data["lines"]] == [
        ("2025-05-20", False, 10, 0), ("2025-06-10", True, 0, 0), ("2025-06-20", False, 0, 120),
        ("2025-07-05", False, 20, 0), ("2025-07-25", False, 10, 0)]
    assert (data["plan"], data["net_pence"]) == ("monthly", 2450 + 1694 + 40)
    # Split anywhere, the statements add up (June's fee is on the first; its bundle, trial and the
    # rest of June's calls are known to the second).
    halves = [json.loads(ok(tmp_path, "charges", "--account", "acc1", "--from", a, "--to", b, "--json"))
              for a, b in (("2025-05-01", "2025-06-15"), ("2025-06-16", "2025-07-31"))]
    assert [h["net_pence"] for h in halves] == [10 + 2450, 1694 + 20 + 10]
    assert [line["trial"] for h in halves for line in h["lines"]] == [line["trial"] for line in data["lines"]]
    text = ok(tmp_path, "charges", "--account", "acc1", "--from", "2025-06-01", "--to", "2025-06-30")
    assert re.search(r"2025-06-10 .*0p  trial", text)
    quote = json.loads(ok(tmp_path, "charges", "--account", "acc1", "--from", "2025-05-01", "--to", "2025-07-31",
                          "--plan", "daily", "--json"))  # fmt: skip
    assert quote["plan"] == "daily" and len(quote["fees"]) == 5 and not any(line["trial"] for line in quote["lines"])

    accounts = json.loads(ok(tmp_path, "accounts", "list", "--json"))
    assert [(a["account"], a["trial_calls_left"]) for a in accounts] == [("acc1", 0), ("acc2", 0)]
    assert accounts[0]["subscriptions"] == [{"plan": "monthly", "from": "2025-06-10", "to": "2025-07-15"}]
    out = ok(tmp_path, "accounts", "change", "acc1", "--plan", "daily", "--from", "2025-07-01")
    assert "monthly from 2025-06-10 to 2025-06-30, daily from 2025-07-01 to 2025-07-15" in out
    july = json.loads(ok(tmp_path, "charges", "--account", "acc1", "--from", "2025-07-01", "--to", "2025-07-31", "--json"))
    assert [(f["date"], f["pence"]) for f in july["fees"]] == [("2025-07-05", 800)]  # a day fee, no month fee
    code, _, err = run(tmp_path, "accounts", "add", "acc1", "--name", "X", "--address", "Y", "--plan", "daily",
                       "--from", "2025-01-01")  # fmt: skip
    assert code == 1 and "already exists" in err


def pdf_text(path: Path) -> str:
    assert path.read_bytes().startswith(b"%PDF-")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


# Skipped on a developer's machine without poppler-utils; in CI (scripts/setup installs it) a
# missing pdftotext fails instead.
@pytest.mark.skipif(shutil.which("pdftotext") is None and os.environ.get("CI") != "true",
                    reason="pdftotext (poppler-utils, scripts/setup) is missing")
def test_invoice_is_issued_once_corrected_by_a_credit_note_and_printed(app: App, tmp_path: Path) -> None:
    args = ("invoice", "--account", "acc1", "--month", "2025-06", "--date", "2025-07-02", "--json")
    first = json.loads(ok(tmp_path, *args, "--pdf", str(tmp_path / "inv.pdf")))
    assert {k: first[k] for k in ("number", "account", "month", "net_pence", "vat_pence", "total_pence")} == {
        "number": 1, "account": "acc1", "month": "2025-06", "net_pence": 2450, "vat_pence": 490, "total_pence": 2940}
    assert json.loads(ok(tmp_path, *args))["number"] == 1  # the same invoice, not a new number
    assert json.loads(ok(tmp_path, "invoice", "--account", "acc2", "--month", "2025-06", "--json",
                         "--date", "2025-07-02"))["number"] == 2  # fmt: skip

    text = pdf_text(tmp_path / "inv.pdf")
    for expected in ("VAT invoice INV-000001", "LiveCall Telecom Ltd", "2 Low Street", "GB123456789",
                     "Acme Windows Ltd", "1 High Street", "LS1 1AA", "Invoice date: 2 Jul 2025", "Tax point: 2 Jul 2025",
                     "monthly fee June 2025 (21/30 days)", "trial", "£24.50", "£4.90", "£29.40"):  # fmt: skip
        assert expected in text, expected
    assert re.search(r"20%\s+£24\.50\s+£4\.90\s+£29\.40", text)

    corrected = json.loads(ok(tmp_path, *args, "--correct", "the address was wrong"))
    assert corrected["number"] == 3 and corrected["credit_note"]["number"] == 1
    assert corrected["credit_note"]["total_pence"] == -2940 and corrected["credit_note"]["credits"]["number"] == 1
    assert json.loads(ok(tmp_path, *args))["number"] == 3
    ok(tmp_path, "invoice", "--account", "acc1", "--month", "2025-06", "--pdf", str(tmp_path / "inv3.pdf"))
    assert "VAT invoice INV-000003" in pdf_text(tmp_path / "inv3.pdf")
    credit = tmp_path / "cn.pdf"
    credit_note = billing.document(app.database(), "credit_note", 1)
    assert credit_note is not None
    credit.write_bytes(render_pdf(credit_note))
    assert re.search(r"Credits invoice INV-000001 of 2 Jul 2025\. Reason: the address was wrong", pdf_text(credit))

    code, _, err = run(tmp_path, "invoice", "--account", "acc1", "--month", "2025-07", "--date", "2025-07-31")
    assert code == 1 and "invoice it from the day after" in err
    code, _, err = run(tmp_path, "invoice", "--account", "nobody", "--month", "2025-06")
    assert code == 1 and "no account 'nobody'" in err
    code, _, err = run(tmp_path, "invoice", "--account", "acc1", "--month", "2025-04", "--date", "2025-07-02")
    assert code == 1 and "nothing to invoice for 2025-04" in err

    # A new address goes on invoices issued from now on; the issued ones keep theirs.
    ok(tmp_path, "accounts", "change", "acc1", "--address", "5 New Road, Leeds, LS2 2BB")
    fixed = json.loads(ok(tmp_path, *args, "--correct", "moved"))
    assert fixed["customer"]["address"] == ["5 New Road", "Leeds", "LS2 2BB"] and fixed["number"] == 4
    earlier = billing.document(app.database(), "invoice", 3)
    assert earlier is not None and earlier["customer"]["address"][0] == "1 High Street"
    code, _, err = run(tmp_path, "accounts", "change", "acc1", "--plan", "daily")
    assert code == 1 and "--plan and --from go together" in err
    code, _, err = run(tmp_path, "invoice", "--account", "acc1", "--month", "2025-6")
    assert code == 1 and "expected YYYY-MM" in err


CHILD = """
import json, sys, datetime as dt
from livecall_ari.app import App
from livecall_ari.charges import billing
app = App.from_config()
numbers = {a: billing.issue_invoice(app, a, "2025-06", dt.date(2025, 7, 2), now=dt.datetime.now(dt.timezone.utc)).invoice["number"]
           for a in sys.argv[1:]}
print(json.dumps(numbers))
"""


def test_two_processes_invoicing_at_once_get_distinct_consecutive_numbers(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with (tmp_path / "livecall.toml").open("a") as f:
        f.write(SETTINGS)
    db = app.database()
    names = [f"a{i:02d}" for i in range(16)]
    for name in names:
        customer = new_customer(name, f"Customer {name}", "1 Road, Town", "monthly", dt.date(2025, 1, 1))
        billing.save_customer(db, customer, now=dt.datetime.now(dt.timezone.utc), new=True)
    db.close()
    # Both invoice every account, one in order and one from the middle on: they race for the
    # numbers, and (where their orders meet) for the same account's invoice.
    first, second = names, names[8:] + names[:8]
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, *order], env=cli_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for order in (first, second)]  # fmt: skip
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert results[0] == results[1]  # both got the one invoice of each account
    assert sorted(results[0].values()) == list(range(1, 17))  # no gap, none twice
    rows = billing.invoices(app.database(), "a00")
    assert len(rows) == 1


def test_the_portal_shows_the_subscription_trial_and_invoices_and_serves_the_same_pdf(app: App, tmp_path: Path) -> None:
    ok(tmp_path, "invoice", "--account", "acc1", "--month", "2025-06", "--date", "2025-07-02",
       "--pdf", str(tmp_path / "cli.pdf"))  # fmt: skip
    ok(tmp_path, "invoice", "--account", "acc1", "--month", "2025-06", "--date", "2025-07-03", "--correct", "typo")
    users = Accounts()
    users.add("sue", "supervisor", PASSWORD, "2101")
    users.add("ann", "agent", PASSWORD, "2001")

    async def login(c: httpx.AsyncClient, user: str) -> None:
        form = await c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        done = await c.post("/login", data={"username": user, "password": PASSWORD, "csrf": token.group(1), "next": "/calls"})
        assert done.status_code == 303

    async def steps() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8099") as c:
            await login(c, "sue")
            page = await c.get("/charges", params={"account": "acc1", "from": "2025-06-01", "to": "2025-06-30"})
            pdf = await c.get("/charges/invoices/1.pdf")
            credit = await c.get("/charges/credit-notes/1.pdf")
            missing = await c.get("/charges/invoices/99.pdf")
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8099") as c:
            await login(c, "ann")
            refused = await c.get("/charges/invoices/1.pdf")
        return {"page": page, "pdf": pdf, "credit": credit, "missing": missing, "refused": refused}

    r = asyncio.run(steps())
    page = r["page"].text
    assert r["page"].status_code == 200
    assert "monthly plan from 10 Jun 2025 to 15 Jul 2025" in page and "0 of 1" in page
    assert 'href="/charges/invoices/1.pdf"' in page and 'href="/charges/credit-notes/1.pdf"' in page
    assert "INV-000002" in page and "CN-000001 (credits INV-000001)" in page
    assert "£29.40" in page  # the statement by the subscription: June's pro-rata fee, with VAT
    assert r["pdf"].status_code == 200 and r["pdf"].headers["content-type"] == "application/pdf"
    assert 'filename="INV-000001.pdf"' in r["pdf"].headers["content-disposition"]
    assert r["pdf"].content == (tmp_path / "cli.pdf").read_bytes()  # the very same PDF as the CLI's
    assert r["credit"].status_code == 200 and r["credit"].content.startswith(b"%PDF-")
    assert r["missing"].status_code == 404 and r["refused"].status_code == 403


def test_the_call_page_prices_a_call_as_the_invoice_does(app: App, tmp_path: Path) -> None:
    # The trial call shows as free, the call in June's bundle as covered: the account's
    # subscription and trial, from the first of the month, not the default plan of one day.
    from livecall_ari.gate.models import GateDecision

    at = dt.datetime(2025, 6, 10, 9, 0)
    for n in (2, 3):
        GateDecision.create(call_id=f"1748941200.{n}", agent="2001", dialled="02079460000", number="+442079460000",
                            purpose="service", organisation="default", decision="allow", reasons="", evidence="{}",
                            entry="stasis", decided_at=at)
    Accounts().add("sue", "supervisor", PASSWORD, "2101")

    async def steps() -> list[str]:
        transport = httpx.ASGITransport(app=build_asgi(WebDependencies(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8099") as c:
            form = await c.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            await c.post("/login", data={"username": "sue", "password": PASSWORD, "csrf": token.group(1)})
            return [(await c.get(f"/calls/{call_id}")).text for call_id in ("1748941200.2", "1748941200.3")]

    trial, bundled = asyncio.run(steps())
    charges = [re.search(r'id="h-charges".*?</section>', page, re.S) for page in (trial, bundled)]
    assert charges[0] is not None and "<td>£0.00 (trial)</td>" in charges[0].group(0)
    assert charges[1] is not None and "<td>120</td><td>£0.00</td>" in charges[1].group(0)
