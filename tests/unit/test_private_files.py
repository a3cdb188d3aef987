"""Private files (issue 16): under a umask of 022 (a common default), the data folder is 0700 and
what LiveCall writes of people (the SQLite database and its WAL, list files, a subject access
export, an erasure certificate, the audit anchors) is 0600; the doctor says when one is not."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from livecall_ari import config
from livecall_ari.app import App
from tests.unit.protection_data import ALICE, add_person, cli_env, make_app


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cli(tmp_path: Path, data: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "livecall_ari.cli", *args], env={**cli_env(tmp_path), "LIVECALL_DATA_DIR": str(data)},
                          capture_output=True, text=True, preexec_fn=lambda: os.umask(0o022), check=False)
    assert done.returncode == 0, (args, done.stderr)


@pytest.fixture
def loose_umask() -> Iterator[int]:
    old = os.umask(0o022)
    yield old
    os.umask(old)


def test_what_livecall_writes_of_people_is_private_whatever_the_umask(tmp_path: Path, loose_umask: int) -> None:
    data = tmp_path / "data"  # made by LiveCall
    make_app(tmp_path).close()  # the settings file and the recordings folder, as the tests make them
    settings = config.load(tmp_path / "livecall.toml", environ={"LIVECALL_DATA_DIR": str(data)})
    app = App(settings)
    add_person(app, tmp_path, ALICE, 1)
    app.close()
    (tmp_path / "tps.txt").write_bytes(b"02079460030\r\n")

    _cli(tmp_path, data, "lists", "import", "tps", str(tmp_path / "tps.txt"))
    _cli(tmp_path, data, "audit", "anchor")
    _cli(tmp_path, data, "dsar", "export", "020 7946 0018", "--out", str(data / "dsar-exports" / "alice.zip"))
    _cli(tmp_path, data, "erase", "020 7946 0018", "--yes")

    written = list(data.rglob("*"))
    names = {p.relative_to(data).parts[0] for p in written}
    assert {"livecall.db", "lists", "dsar-exports", "erasure-certificates", "audit-anchors.jsonl"} <= names, names
    assert _mode(data) == 0o700
    loose = [f"{p} {_mode(p):o}" for p in written if _mode(p) & 0o077]
    assert not loose, loose


def test_the_doctor_warns_about_a_data_folder_others_can_read(tmp_path: Path, loose_umask: int) -> None:
    from livecall_ari.asterisk.doctor import private_data_check

    app = make_app(tmp_path)  # its data folder is tmp_path (0700), which holds the test's settings file
    (tmp_path / "livecall.toml").chmod(0o600)  # as `livecall init` writes it
    try:
        assert private_data_check(app).ok, private_data_check(app).detail
        (tmp_path / "livecall.db").chmod(0o644)
        check = private_data_check(app)
        assert not check.ok and check.warning and f"{tmp_path / 'livecall.db'} (644)" in check.detail
    finally:
        app.close()
