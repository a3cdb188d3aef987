"""A TPS import killed halfway, then run again (issue 9, faults): the re-run completes, and the
list in force holds every number of the file once: nothing lost, nothing doubled, one audit
entry for the file. (test_screening_lists.py checks that the old list stays in force meanwhile.)"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from livecall_ari.app import App
from livecall_ari.protection import audit
from livecall_ari.screening.models import ListVersion
from livecall_ari.screening.services import list_files
from tests.conftest import kill_when_paused
from tests.unit.test_screening_lists import NOW, app, cli_env, keys_of, livecall, write_list  # noqa: F401

NEW = [f"0207{i:07d}" for i in range(1_000_000, 1_020_000)]


def imports_of(path: Path) -> list[dict[str, object]]:
    found = [json.loads(e.details_json) for e in audit.entries() if e.action == "list.import"]
    return [d for d in found if d["file"] == str(path)]


# Before the new file is in place, and after its version (and its audit entry) is committed.
@pytest.mark.parametrize("stage", ["written", "committed"])
def test_a_full_import_killed_halfway_and_run_again_holds_every_number_once(app: App, tmp_path: Path, stage: str) -> None:  # noqa: F811
    files = list_files(app)
    files.import_file("tps", write_list(tmp_path / "old.txt", ["02079460001", "02079460002"]), delta=False,
                      list_date=dt.date(2025, 3, 1), now=NOW)
    new = write_list(tmp_path / "new.txt", NEW)

    kill_when_paused(["lists", "import", "tps", str(new)], cli_env(tmp_path, LIVECALL_IMPORT_PAUSE_AT=stage), stage)
    rerun = livecall(tmp_path, "lists", "import", "tps", str(new))

    assert rerun.returncode == 0, rerun.stderr
    current = files.current("tps")
    assert current is not None and current.keys.shape[0] == len(NEW)
    assert keys_of(files) == {int("44" + n[1:]) for n in NEW}
    assert not list((tmp_path / "lists").glob("*.tmp"))
    # Every version put in force is audited, in the transaction that did it: the re-run's, and
    # the killed run's when it got that far.
    entries = imports_of(new)
    assert [e["count"] for e in entries] == [len(NEW)] * (2 if stage == "committed" else 1)
    assert [e["version"] for e in entries] == [v.id for v in ListVersion.select().where(ListVersion.source == str(new))]


@pytest.mark.parametrize("stage", ["committing", "committed"])
def test_a_change_file_killed_halfway_and_run_again_is_applied_once(app: App, tmp_path: Path, stage: str) -> None:  # noqa: F811
    files = list_files(app)
    files.import_file("tps", write_list(tmp_path / "full.txt", NEW), delta=False, list_date=dt.date(2025, 3, 1), now=NOW)
    # A change file: "+"/"-" records (the TPS layout) adding two numbers and deleting one.
    change = tmp_path / "change.txt"
    from livecall_ari.screening.parsers import format_record

    change.write_bytes("".join(f"{sign}{format_record(n, False)}\r\n" for sign, n in
                               [("+", "02079460101"), ("+", "02079460102"), ("-", NEW[0])]).encode())
    expected = {int("44" + n[1:]) for n in [*NEW[1:], "02079460101", "02079460102"]}

    kill_when_paused(["lists", "import", "tps", "--delta", str(change)], cli_env(tmp_path, LIVECALL_IMPORT_PAUSE_AT=stage), stage)
    rerun = livecall(tmp_path, "lists", "import", "tps", "--delta", str(change))

    assert rerun.returncode == 0, rerun.stderr
    assert keys_of(files) == expected
    current = files.current("tps")
    assert current is not None and current.keys.shape[0] == len(expected)
