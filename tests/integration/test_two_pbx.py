"""Two PBXs, each with its own `livecall serve`, sharing one PostgreSQL database (issue 9): an
objection taken on one PBX blocks the very next call on the other, and each PBX's CDRs are
rated once each. The pair and the database: tests/integration/multi.py."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import pytest

from livecall_ari.app import App
from livecall_ari.charges.cdr import LocalTimes, parse_fields
from livecall_ari.config import load
from livecall_ari.screening.services import list_files
from tests.conftest import until
from tests.integration.harness import livecall, load_fresh_lists, open_for_marketing
from tests.integration.multi import PbxService, TwoPbxs

pytestmark = pytest.mark.sandbox

OBJECTS = "02079460902"  # the PSTN presses 2, the objection key, during the recording notice


@pytest.fixture
def services(pair: TwoPbxs, tmp_path: Path) -> Iterator[dict[str, PbxService]]:
    """Both PBXs' services on the shared database, each following its own PBX's CDR file.

    Each has its own lists folder (its own host's), holding the same TPS/CTPS files: the list
    files must reach every PBX's service, but the revision file each folder holds, where a
    host's writers announce their changes, is that host's alone.
    """
    marketing = open_for_marketing(tmp_path)
    envs = {
        pbx.name: {**pbx.env, **marketing, "LIVECALL_DATABASE_URL": pair.database.url,
                   "LIVECALL_SCREENING_LISTS_DIR": str(tmp_path / pbx.name / "lists"),
                   "LIVECALL_CHARGES_CDR_FILE": str(pbx.cdr_file)}
        for pbx in (pair.first, pair.second)
    }
    first, second = (PbxService(pbx, envs[pbx.name]) for pbx in (pair.first, pair.second))
    load_fresh_lists(first, tmp_path)  # type: ignore[arg-type]  # creates the schema too
    (tmp_path / "second" / "lists").mkdir(parents=True)
    for f in (tmp_path / "first" / "lists").glob("*.list"):
        shutil.copy2(f, tmp_path / "second" / "lists" / f.name)
    started = []
    try:
        for service in (first, second):
            started.append(service)  # stopped afterwards even if it never registers
            service.start()
        yield {"first": first, "second": second}
    finally:
        for service in started:
            service.stop()


def decisions(pair: TwoPbxs, number: str) -> list[dict[str, Any]]:
    return pair.database.rows("SELECT * FROM gate_decisions WHERE number = %s ORDER BY id", (number,))


def made_by(services: dict[str, PbxService], decision: dict[str, Any]) -> str:
    """Which PBX's service took the decision (each logs its decisions with the call id)."""
    found = [name for name, s in services.items() if f'"call_id": "{decision["call_id"]}"' in s.log]
    assert len(found) == 1, (decision, found)
    return found[0]


def test_an_objection_on_one_pbx_blocks_the_very_next_call_on_the_other(pair: TwoPbxs, services: dict[str, PbxService]) -> None:
    first = pair.first.call(OBJECTS, scenario="agent_call_refused.xml")  # ends after the objection
    second = pair.second.call(OBJECTS, scenario="agent_call_refused.xml")

    assert first.refused_cause == 21, first.errors
    assert second.returncode == 0 and second.refused_cause == 21 and not second.answered, second.errors
    rows = decisions(pair, "+442079460902")
    assert [(made_by(services, d), d["decision"], d["reasons"]) for d in rows] == [
        ("first", "allow", ""), ("second", "block", "objection")]
    [objection] = pair.database.rows("SELECT * FROM screening_objections WHERE number = 442079460902")
    assert rows[0]["call_id"] in objection["reason"] and objection["recorded_by"] == "called party"


def test_a_change_announced_on_one_host_only_is_in_force_on_the_other_within_the_second(
    pair: TwoPbxs, services: dict[str, PbxService]
) -> None:
    """The second PBX's decider has just looked (a call a moment ago); the first PBX's side
    records an objection the way its service does, announced in the first host's revision
    file only; the second PBX's next call, well within a second, is refused."""
    allowed = "02079460018"
    before = pair.second.start_call(allowed, hold_ms=300)
    until(lambda: decisions(pair, "+442079460018"), timeout=10, interval=0.01, what="the second PBX's decision")
    looked = time.monotonic()
    app = App(load(environ={**os.environ, **services["first"].env}))
    try:
        list_files(app).store.add_objection("default", 442079460019, dt.datetime.now(dt.timezone.utc), "pbx1 test", "")
    finally:
        app.close()
    refused = pair.second.start_call("02079460019", scenario="agent_call_refused.xml")
    [decided] = until(lambda: decisions(pair, "+442079460019"), timeout=10, interval=0.01, what="the decision")
    after = time.monotonic() - looked

    assert before.wait().answered
    assert (made_by(services, decided), decided["decision"], decided["reasons"]) == ("second", "block", "objection"), (
        f"the call was decided {after:.2f} s after the second PBX's previous decision")
    assert refused.wait().refused_cause == 21


def _cdr_lines(path: Path, numbers: set[str]) -> list[Any]:
    """The records of ``numbers`` in a PBX's own CDR file (LiveCall's cdr_custom record, whose
    times are epoch seconds: the zone given does not matter)."""
    times = LocalTimes(ZoneInfo("UTC"))
    with path.open(newline="") as f:
        return [r for r in (parse_fields(row, times) for row in csv.reader(f) if len(row) == 24) if r.dst in numbers]


def test_each_pbxs_cdrs_are_rated_once_each(pair: TwoPbxs, services: dict[str, PbxService]) -> None:
    # The same numbers from both PBXs at the same moment (same counters, same seconds): one
    # number each PBX alone, one both.
    both, only_first, only_second = (f"0161496{n:04d}" for n in random.sample(range(10000), 3))
    calls = [pair.first.start_call(both, agent="1002", hold_ms=1500), pair.second.start_call(both, agent="1002", hold_ms=1500),
             pair.first.start_call(only_first, agent="1002", hold_ms=1000),
             pair.second.start_call(only_second, agent="1002", hold_ms=2000)]
    assert all(c.wait().answered for c in calls)

    numbers = {both, only_first, only_second}
    written = {pbx.name: _cdr_lines(pbx.cdr_file, numbers) for pbx in (pair.first, pair.second)}
    answered = {name: [r for r in records if r.billsec > 0] for name, records in written.items()}
    assert sorted(r.dst for r in answered["first"]) == sorted([both, only_first]), written["first"]
    assert sorted(r.dst for r in answered["second"]) == sorted([both, only_second]), written["second"]

    def stored() -> list[dict[str, Any]]:
        return pair.database.rows(
            "SELECT uniqueid, number, billsec FROM cdr_records WHERE number = ANY(%s) ORDER BY uniqueid",
            (["+44" + n[1:] for n in numbers],))

    expected = sorted((r.uniqueid, "+44" + r.dst[1:], r.billsec) for records in written.values() for r in records)
    rows = until(lambda: len(r := stored()) >= len(expected) and r, timeout=20, what="every CDR of both PBXs stored")
    assert sorted((r["uniqueid"], r["number"], r["billsec"]) for r in rows) == expected
    # Each PBX's records carry its own system name (Asterisk's systemname, from the settings).
    for pbx in (pair.first, pair.second):
        assert all(r.uniqueid.startswith(pbx.settings.system_name() + "-") for r in written[pbx.name])

    # The statement of the shared database: each answered call once.
    today = dt.datetime.now(dt.timezone.utc).date()
    out = livecall("charges", "--account", "SANDBOX", "--from", (today - dt.timedelta(days=1)).isoformat(),
                   "--to", (today + dt.timedelta(days=1)).isoformat(), "--json", env=services["first"].env).stdout
    lines = [line for line in json.loads(out)["lines"] if line["number"] in {"+44" + n[1:] for n in numbers}]
    assert sorted(line["number"] for line in lines) == sorted("+44" + n[1:] for n in (both, both, only_first, only_second))
