"""List imports on a real SQLite database and lists directory: full, change files, refusals,
an import killed halfway, and the live decider picking changes up from other processes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livecall_ari import config
from livecall_ari.app import App
from livecall_ari.gate.core import CallAttempt
from livecall_ari.screening.lists import ImportRefused, ListFiles
from livecall_ari.screening.parsers import format_record
from livecall_ari.screening.services import build_decider, list_files
from tests.conftest import kill_when_paused

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday, 10:00 GMT


# These tests replace lists of a few numbers with others: the guard on shrinking lists (tested
# on its own below) would refuse most of them.
NO_SHRINK_GUARD = {"LIVECALL_SCREENING_MAX_SHRINK_PERCENT": "100"}


@pytest.fixture
def app(tmp_path: Path) -> App:
    settings = config.load(tmp_path / "livecall.toml", environ={"LIVECALL_DATA_DIR": str(tmp_path), **NO_SHRINK_GUARD})
    application = App(settings)
    yield application  # type: ignore[misc]
    application.close()


def write_list(path: Path, nationals: list[str], with_spaces: bool = False) -> Path:
    path.write_bytes("".join(format_record(n, with_spaces) + "\r\n" for n in nationals).encode())
    return path


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(LIVECALL_CONFIG=str(tmp_path / "livecall.toml"), LIVECALL_DATA_DIR=str(tmp_path), **NO_SHRINK_GUARD, **extra)
    return env


def livecall(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livecall_ari.cli", *args], env=cli_env(tmp_path), capture_output=True, text=True, check=False
    )


def keys_of(files: ListFiles, name: str = "tps") -> set[int]:
    current = files.current(name)
    assert current is not None
    return set(current.keys.tolist())


def test_full_import_replaces_the_list_and_keeps_first_seen_dates(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    first = files.import_file("tps", write_list(tmp_path / "a.txt", ["02079460001", "02079460002"]),
                              delta=False, list_date=dt.date(2025, 1, 1), now=NOW)
    assert (first.count, first.added, first.removed, first.record_format) == (2, 2, 0, "without spaces")
    second = files.import_file("tps", write_list(tmp_path / "tps-2025-02-01.txt", ["0207 9460002", "0207 9460003"], True),
                               delta=False, list_date=None, now=NOW)
    assert second.snapshot_date == dt.date(2025, 2, 1)  # from the file name
    assert (second.added, second.removed, second.record_format) == (1, 1, "with spaces")
    current = files.current("tps")
    assert current is not None and current.snapshot.version == second.version
    assert current.first_seen(442079460001) is None
    assert current.first_seen(442079460002) == dt.date(2025, 1, 1)
    assert current.first_seen(442079460003) == dt.date(2025, 2, 1)


def test_a_change_file_adds_and_deletes(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    files.import_file("ctps", write_list(tmp_path / "full.txt", ["02079460001", "02079460002"]), delta=False,
                      list_date=dt.date(2025, 1, 1), now=NOW)
    change = tmp_path / "changes.txt"
    change.write_bytes(b"02079460001  D\r\n02079460009  A\r\n02079460008  D\r\n")
    report = files.import_file("ctps", change, delta=True, list_date=dt.date(2025, 1, 8), now=NOW)
    assert (report.kind, report.added, report.removed, report.count) == ("delta", 1, 1, 2)
    assert keys_of(files, "ctps") == {442079460002, 442079460009}
    current = files.current("ctps")
    assert current is not None and current.snapshot.snapshot_date == dt.date(2025, 1, 8)
    assert current.first_seen(442079460002) == dt.date(2025, 1, 1)


def test_chunk_boundaries_do_not_split_or_lose_lines(app: App, tmp_path: Path) -> None:
    numbers = [f"0207946{i:04d}" for i in range(997)]
    files = ListFiles(app.database(), tmp_path / "lists", chunk_bytes=100)  # many tiny chunks, cut mid-line
    report = files.import_file("tps", write_list(tmp_path / "t.txt", numbers), delta=False, list_date=None, now=NOW)
    assert report.lines == 997 and report.count == 997
    assert keys_of(files) == {int("44" + n[1:]) for n in numbers}


def test_too_many_bad_lines_refuses_the_file_and_keeps_the_old_list(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    files.max_bad_lines = 2
    files.import_file("tps", write_list(tmp_path / "old.txt", ["02079460001"]), delta=False, list_date=None, now=NOW)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"02079460005 \r\nnot a number\r\n02079460006 \r\n0207946000x \r\n12079460007 \r\n")
    with pytest.raises(ImportRefused, match="more than 2 bad lines") as refused:
        files.import_file("tps", bad, delta=False, list_date=None, now=NOW)
    assert [b.describe("bad.txt").split(": ")[0] for b in refused.value.bad] == ["bad.txt:2", "bad.txt:4", "bad.txt:5"]
    assert keys_of(files) == {442079460001}
    files.max_bad_lines = 5  # under the limit: imported, the bad lines reported
    report = files.import_file("tps", bad, delta=False, list_date=None, now=NOW)
    assert report.bad_count == 3 and keys_of(files) == {442079460005, 442079460006}


def test_an_empty_file_never_replaces_a_list(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    files.import_file("tps", write_list(tmp_path / "old.txt", ["02079460001"]), delta=False, list_date=None, now=NOW)
    (tmp_path / "empty.txt").write_bytes(b"\r\n")
    with pytest.raises(ImportRefused, match="no numbers"):
        files.import_file("tps", tmp_path / "empty.txt", delta=False, list_date=None, now=NOW)
    assert keys_of(files) == {442079460001}


def test_superseded_files_are_removed_keeping_the_previous_version(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    for i in range(4):
        files.import_file("tps", write_list(tmp_path / f"{i}.txt", [f"0207946000{i}"]), delta=False, list_date=None, now=NOW)
    assert len(list((tmp_path / "lists").glob("tps-*.list"))) == 2
    assert keys_of(files) == {442079460003}


@pytest.mark.parametrize("stage", ["parsed", "written", "committing"])
def test_an_import_killed_halfway_leaves_the_old_list_in_force(app: App, tmp_path: Path, stage: str) -> None:
    files = list_files(app)
    files.import_file("tps", write_list(tmp_path / "old.txt", ["02079460001", "02079460002"]), delta=False,
                      list_date=dt.date(2025, 3, 1), now=NOW)
    files.import_file("ctps", write_list(tmp_path / "ctps.txt", ["02079460019"]), delta=False,
                      list_date=dt.date(2025, 3, 1), now=NOW)
    decider = build_decider(app)
    assert decider.decide(CallAttempt("c", "a", "02079460001", "marketing", NOW, "+442079460000")).reasons == ("tps",)
    new = write_list(tmp_path / "new.txt", [f"0207{i:07d}" for i in range(1_000_000, 1_200_000)])
    kill_when_paused(["lists", "import", "tps", str(new)], cli_env(tmp_path, LIVECALL_IMPORT_PAUSE_AT=stage), stage)
    assert keys_of(files) == {442079460001, 442079460002}
    assert decider.decide(CallAttempt("c", "a", "02079460001", "marketing", NOW, "+442079460000")).reasons == ("tps",)
    assert decider.decide(CallAttempt("c", "a", "02071000000", "marketing", NOW, "+442079460000")).allowed
    if stage == "written":
        assert list((tmp_path / "lists").glob("*.tmp"))  # the new file was there, half done
    # The next import cleans up after the dead one and goes through.
    files.import_file("tps", write_list(tmp_path / "next.txt", ["02079460003"]), delta=False, list_date=None, now=NOW)
    assert not list((tmp_path / "lists").glob("*.tmp"))
    assert len(list((tmp_path / "lists").glob("tps-*.list"))) == 2


def test_the_live_decider_sees_cli_changes_on_the_next_call(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    files.import_file("tps", write_list(tmp_path / "tps.txt", ["02079460018"]), delta=False, list_date=dt.date(2025, 3, 1), now=NOW)
    files.import_file("ctps", write_list(tmp_path / "ctps.txt", ["02079460019"]), delta=False, list_date=dt.date(2025, 3, 1), now=NOW)
    decider = build_decider(app)

    def decide(number: str) -> tuple[str, ...]:
        return decider.decide(CallAttempt("c", "a", number, "marketing", NOW, "+442079460000", "default")).reasons

    assert decide("02079460020") == ()
    view = decider.lists.current()
    assert decider.lists.current() is view  # nothing changed: nothing reloaded

    assert livecall(tmp_path, "objections", "add", "020 7946 0020", "--reason", "asked on call 9").returncode == 0
    assert decide("02079460020") == ("objection",)
    assert livecall(tmp_path, "objections", "remove", "020 7946 0020").returncode == 0
    assert decide("02079460020") == ()

    assert decide("02079460018") == ("tps",)
    assert livecall(tmp_path, "consent", "add", "020 7946 0018", "--evidence", "web form 77").returncode == 0
    time.sleep(0.01)  # the consent is recorded at the CLI's clock; decide just after it
    later = dt.datetime.now(UTC)
    assert decider.decide(CallAttempt("c", "a", "02079460018", "service", later)).allowed
    consent_reasons = decider.decide(CallAttempt("c", "a", "02079460018", "marketing", later, "+442079460000")).reasons
    assert "tps" not in consent_reasons
    assert livecall(tmp_path, "consent", "withdraw", "020 7946 0018").returncode == 0
    assert "tps" in decider.decide(CallAttempt("c", "a", "02079460018", "marketing", dt.datetime.now(UTC), "+442079460000")).reasons

    write_list(tmp_path / "tps2.txt", ["02079460020"])
    done = livecall(tmp_path, "lists", "import", "tps", str(tmp_path / "tps2.txt"), "--list-date", "2025-03-02")
    assert done.returncode == 0, done.stderr
    assert decide("02079460020") == ("tps",)
    assert decide("02079460018") == ()


def test_a_write_that_was_never_announced_is_still_caught_by_the_periodic_check(app: App, tmp_path: Path) -> None:
    from livecall_ari.screening.services import LiveLists
    from livecall_ari.screening.store import ScreeningStore

    live = LiveLists(app.database(), list_files(app), recheck_seconds=0.0)
    silent = ScreeningStore(app.database())  # no revision file: as if the writer died before announcing
    silent.add_objection("default", 442079460020, NOW, "sam", "")
    assert live.current().records.objection("default", 442079460020) is not None
    announced = LiveLists(app.database(), list_files(app), recheck_seconds=3600.0)
    list_files(app).store.remove_objection("default", 442079460020, NOW, "sam")
    assert announced.current().records.objection("default", 442079460020) is None


def test_on_postgresql_a_write_from_another_host_is_seen_on_the_very_next_call(app: App, tmp_path: Path) -> None:
    """A second PBX's service (or its CLI) announces its writes in the revision file on its own
    host, which this host never sees: on PostgreSQL the decider reads the revision every call."""
    import peewee

    from livecall_ari.screening.services import LiveLists
    from livecall_ari.screening.store import ScreeningStore

    if isinstance(app.database(), peewee.SqliteDatabase):
        pytest.skip("SQLite's writers share this host and announce in the revision file (test above)")
    live = LiveLists(app.database(), list_files(app), recheck_seconds=3600.0)
    elsewhere = ScreeningStore(app.database())  # no revision file of ours: another host's writer
    assert live.current().records.objection("default", 442079460021) is None
    elsewhere.add_objection("default", 442079460021, NOW, "pbx2", "pressed 2")
    assert live.current().records.objection("default", 442079460021) is not None
    elsewhere.remove_objection("default", 442079460021, NOW, "pbx2")
    assert live.current().records.objection("default", 442079460021) is None
