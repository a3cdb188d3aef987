"""One person's number dialled every way an agent can dial it, through the sandbox: every record
stores the number it is (E.164), subject access finds every call and recording, and erasure
leaves no file and nothing of the number in any table (imported CDRs included)."""

from __future__ import annotations

import json
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until
from tests.integration.harness import SandboxInfo, Service, call, livecall, start_call

pytestmark = pytest.mark.sandbox

PREFIX = "9"  # the PBX's outside-line prefix, for this test's service


def dialled_forms(national: str) -> tuple[list[str], list[str]]:
    """(answered, refused): the ways one number is dialled. The refused ones are what a phone
    sends with punctuation in the Request-URI (a space arrives escaped): the gate refuses them
    as invalid_number, and still records them."""
    rest = national[1:]
    answered = [national, "+44" + rest, "0044" + rest, PREFIX + national, PREFIX + "0044" + rest, national]
    spaced = f"{national[:3]}%20{national[3:7]}%20{national[7:]}"
    hyphens = f"{national[:4]}-{national[4:7]}-{national[7:]}"
    return answered, [spaced, hyphens]


def database_cells(service: Service) -> list[tuple[str, str, str]]:
    """(table, column, text) of every non-empty cell of every table of the service's database."""
    if service.env["LIVECALL_DATABASE_URL"].startswith("sqlite:///"):
        listing = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        listing = "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
    cells = []
    for table in (r["name"] for r in service.rows(listing)):
        for row in service.rows(f'SELECT * FROM "{table}"'):
            cells += [(table, n, v.hex() if isinstance(v, bytes) else str(v)) for n, v in row.items() if v is not None]
    return cells


def mentions(cells: list[tuple[str, str, str]], nsn: str) -> list[str]:
    """Cells holding the number in any form: its national significant digits, punctuation and
    anything between the digits aside (020 7946 0018, +44 (0)20..., 0044..., 9020...)."""
    spread = re.compile(r"\D{0,3}".join(nsn))
    return [f"{t}.{c}: {v[:120]}" for t, c, v in cells if spread.search(v)]


def unused_number(sandbox: SandboxInfo) -> str:
    """A number of 020 7946 03xx that no CDR file of the sandbox holds yet: a sandbox kept from an
    earlier run (a developer's, or a cached chroot) has that run's calls in its CDR files, which
    serve follows and the test imports, and their calls would be the number's calls too."""
    written = "".join(Path(p).read_text(errors="replace") for p in (sandbox.cdr_csv, sandbox.data["cdr_custom"])
                      if Path(p).exists())
    for suffix in random.sample(range(100), 100):
        national = f"020794603{suffix:02d}"
        if national[1:] not in written:
            return national
    pytest.fail("every number of 020 7946 0300-0399 is in the sandbox's CDR files: bring up a fresh sandbox")


def recorded_files(sandbox: SandboxInfo, rows: list[dict[str, Any]]) -> list[Path]:
    """The host paths of the recordings' files and their per-leg siblings."""
    files = []
    for row in rows:
        mixed = Path(sandbox.data["chroot"]) / str(row["file"]).lstrip("/")
        files += [mixed, *(mixed.with_name(f"{mixed.stem}-{leg}{mixed.suffix}") for leg in ("in", "out"))]
    return files


def ours(service: Service) -> list[dict[str, Any]]:
    """This test's recordings (the service also registers older files it finds on disk)."""
    return service.rows("SELECT * FROM recordings WHERE started_at >= ? AND agent = '1002' ORDER BY id", (service.started_at,))


def test_one_number_dialled_every_way_is_found_and_erased_whole(sandbox: SandboxInfo, make_service: Any, tmp_path: Path) -> None:
    service: Service = make_service(LIVECALL_GATE_DECIDER="static", LIVECALL_GATE_OUTSIDE_LINE_PREFIX=PREFIX,
                                    LIVECALL_CHARGES_CDR_FILE=sandbox.data["cdr_custom"])
    national = unused_number(sandbox)
    e164, nsn = "+44" + national[1:], national[1:]
    answered, refused = dialled_forms(national)
    for dialled in answered:
        result = call(sandbox, dialled, agent="1002", hold_ms=1500)
        assert result.answered, (dialled, result.errors)
    for dialled in refused:
        result = start_call(sandbox, dialled, agent="1002", scenario="agent_call_refused.xml").wait()
        assert result.returncode == 0 and result.refused_cause == 21, (dialled, result.errors)

    # Every decision and every recording holds the number it is, whatever was dialled.
    decisions = until(lambda: len(d := service.decisions()) == len(answered) + len(refused) and d, what="every decision")
    assert {d["number"] for d in decisions} == {e164}, [(d["dialled"], d["number"]) for d in decisions]
    assert sorted(d["reasons"] for d in decisions).count("invalid_number") == len(refused)
    recordings = until(lambda: len(r := [x for x in ours(service) if x["state"] == "complete"]) == len(answered) and r,
                       timeout=30, what="every recording complete")
    assert {r["number"] for r in recordings} == {e164}
    assert {r["number"] for r in service.rows("SELECT number FROM recording_notices")} == {e164}
    files = recorded_files(sandbox, recordings)
    assert all(f.exists() for f in files)
    # The CDRs: LiveCall's own record (followed by serve) and Asterisk's Master.csv, imported.
    call_ids = {d["call_id"] for d in decisions}
    until(lambda: len({r["call_id"] for r in service.rows("SELECT call_id FROM cdr_records")} & call_ids) >= len(answered),
          timeout=30, what="the calls' CDRs followed")
    livecall("cdr", "import", str(sandbox.cdr_csv), env=service.env)
    before = mentions(database_cells(service), nsn)
    assert any(m.startswith("cdr_records.cdr_line") and "0044" + nsn in m for m in before), before

    # Subject access, asked for in yet another form: every call, every recording with its audio.
    export = tmp_path / "dsar.zip"
    livecall("dsar", "export", f"{national[:3]} {national[3:7]} {national[7:]}", "--out", str(export), env=service.env)
    with zipfile.ZipFile(export) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        held = json.loads(zf.read("data/recordings.json"))["rows"]
        audio = [n for n in zf.namelist() if n.startswith("recordings/") and not n.startswith("recordings/linked/")]
    assert sorted(r["call_id"] for r in held) == sorted(r["call_id"] for r in recordings)
    assert set(manifest["calls"]) == call_ids and manifest["recordings_without_audio"] == []
    assert len(audio) == len(answered)

    # Erasure, asked for with brackets: every file gone, nothing of the number left anywhere.
    erased = livecall("erase", f"({national[:3]}) {national[3:7]} {national[7:]}", "--yes", env=service.env)
    assert "certificate:" in erased.stdout, erased.stdout
    assert [f for f in files if f.exists()] == []
    assert ours(service) == []
    assert mentions(database_cells(service), nsn) == []
    # What is kept for the accounts and as the gate's evidence stays, pseudonymised whole.
    kept = service.rows("SELECT dialled, number FROM gate_decisions")
    assert len(kept) == len(decisions) and all(r["number"].startswith("erased:") for r in kept)
    assert all(r["dialled"] in (r["number"], "invalid:" + r["number"]) for r in kept), kept
