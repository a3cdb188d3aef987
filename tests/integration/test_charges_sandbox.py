"""CDRs written by real calls in the sandbox are rated as their numbers and durations say."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest

from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, call, livecall

pytestmark = pytest.mark.sandbox


def _statement(env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    import datetime as dt

    today = dt.datetime.now(dt.timezone.utc).date()
    span = [(today - dt.timedelta(days=1)).isoformat(), (today + dt.timedelta(days=1)).isoformat()]
    out = livecall("charges", "--account", "SANDBOX", "--from", span[0], "--to", span[1], "--json", env=env).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _lines_for(statement: dict, numbers: set[str]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {line["number"]: line for line in statement["lines"] if line["number"] in numbers}


def test_calls_in_the_sandbox_are_followed_and_rated(sandbox: SandboxInfo, make_service) -> None:  # type: ignore[no-untyped-def]
    # `livecall serve` follows LiveCall's own CDR file as Asterisk writes it.
    service: Service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_CHARGES_CDR_FILE=sandbox.data["cdr_custom"])
    landline = f"0161496{random.randrange(1000):04d}"[:11]
    mobile = f"07911{random.randrange(10**6):06d}"
    landline_e164, mobile_e164 = "+44" + landline[1:], "+44" + mobile[1:]

    assert call(sandbox, landline, agent="1002", hold_ms=2500).answered
    assert call(sandbox, mobile, agent="1002", hold_ms=1500).answered

    lines = until(lambda: len(found := _lines_for(_statement(service.env), {landline_e164, mobile_e164})) == 2 and found,
                  timeout=20, what="both calls on the statement")
    land, mob = lines[landline_e164], lines[mobile_e164]
    assert (land["class"], land["billed_seconds"], land["pence"]) == ("landline", 60, 10)
    assert (mob["class"], mob["billed_seconds"], mob["pence"]) == ("mobile", 60, 20)
    assert 2 <= land["billsec"] <= 3 and 1 <= mob["billsec"] <= 2

    # The stock Master.csv of the same calls rates the same (a separate database).
    db = Path(tempfile.mkdtemp(prefix="livecall-cdr-")) / "master.db"
    env = {"LIVECALL_DATABASE_URL": f"sqlite:///{db}"}
    livecall("cdr", "import", str(sandbox.cdr_csv), env=env)
    stock = _lines_for(_statement(env), {landline_e164, mobile_e164})
    assert {n: (l["class"], l["billsec"], l["pence"]) for n, l in stock.items()} == {
        n: (l["class"], l["billsec"], l["pence"]) for n, l in lines.items()
    }
    # Importing the same file again counts nothing twice.
    again = json.loads(livecall("cdr", "import", str(sandbox.cdr_csv), "--restart", "--json", env=env).stdout)
    assert again["inserted"] == 0 and again["duplicates"] == again["records"] > 0, again
