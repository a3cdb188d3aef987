"""More than one PBX in one database: each PBX's CDR file keeps its own checkpoint, though
every PBX writes to the same path, and each PBX's records count once, though their counters
are the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from livecall_ari.app import App
from livecall_ari.charges import services, store
from livecall_ari.charges.cdr import CdrRecord
from livecall_ari.config import AsteriskSettings, DatabaseSettings, Settings
from tests.unit.test_charges_store import lines, record


def pbx_app(tmp_path: Path, name: str) -> App:
    """The service of the PBX ``name``, on the database every PBX shares."""
    return App(Settings(data_dir=str(tmp_path / name), database=DatabaseSettings(f"sqlite:///{tmp_path / 'shared.db'}"),
                        asterisk=AsteriskSettings(system_name=name)))


@pytest.fixture
def pbxs(tmp_path: Path):  # type: ignore[no-untyped-def]
    apps = pbx_app(tmp_path, "pbx1"), pbx_app(tmp_path, "pbx2")
    yield apps
    for app in apps:
        app.close()


def of(pbx: str, records: list[CdrRecord]) -> list[CdrRecord]:
    """The same calls as Asterisk with ``systemname = pbx`` writes them (its uniqueid prefix)."""
    return [r._replace(uniqueid=f"{pbx}-{r.uniqueid}") for r in records]


def checkpoints(app: App) -> dict[str, int]:
    return {str(k): int(v) for k, v in app.database().execute_sql("SELECT path, line_no FROM cdr_files").fetchall()}


def test_two_pbxs_at_the_same_path_keep_their_own_checkpoints_and_every_record(pbxs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one, two = pbxs
    path = tmp_path / "Master.csv"  # /var/log/asterisk/cdr-csv/Master.csv on each PBX's host
    calls = [record(i) for i in range(20)]  # both PBXs made the same calls, with the same counters
    first, second = lines(of("pbx1", calls[:10])), lines(of("pbx2", calls))

    path.write_text(first)
    assert services.import_cdrs(one, path).inserted == 10
    path.write_text(second)  # PBX 2's file at the same path
    assert services.import_cdrs(two, path).inserted == 20
    path.write_text(first + lines(of("pbx1", calls[10:])))  # PBX 1's file has grown
    again = services.import_cdrs(one, path)

    # PBX 1 resumes at its own checkpoint (PBX 2's did not replace it), and no record of one
    # PBX is taken for the other's: 20 + 20 rows.
    assert (again.resumed_at_line, again.lines, again.inserted) == (10, 10, 10)
    assert checkpoints(one) == {f"pbx1:{path.resolve()}": 20, f"pbx2:{path.resolve()}": 20}
    assert int(one.database().execute_sql("SELECT count(*) FROM cdr_records").fetchone()[0]) == 40


def test_a_checkpoint_saved_before_pbxs_had_names_is_taken_over_by_its_pbx(pbxs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one, two = pbxs
    path = tmp_path / "Master.csv"
    mine = lines(of("pbx1", [record(i) for i in range(10)]))
    path.write_text(mine)
    # As an earlier LiveCall left it: keyed by the path alone, 10 lines committed.
    store.import_file(one.database(), path, services.cdr_ingest(one))
    key = str(path.resolve())
    assert checkpoints(one) == {key: 10}

    # PBX 2's own file at that path does not match it: read from its start, the old one kept.
    path.write_text(lines(of("pbx2", [record(i) for i in range(3)])))
    fresh = services.import_cdrs(two, path)
    assert (fresh.resumed_at_line, fresh.inserted) == (0, 3)
    assert checkpoints(one) == {key: 10, f"pbx2:{key}": 3}
    # PBX 1's file, grown: resumed from the old checkpoint, which is PBX 1's from then on.
    path.write_text(mine + lines(of("pbx1", [record(i) for i in range(10, 15)])))
    resumed = services.import_cdrs(one, path)
    assert (resumed.resumed_at_line, resumed.inserted) == (10, 5)
    assert checkpoints(one) == {f"pbx1:{key}": 15, f"pbx2:{key}": 3}
