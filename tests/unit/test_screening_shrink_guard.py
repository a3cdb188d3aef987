"""The guard on shrinking lists (issue 16): a full import that would take away more than
``[screening] max_shrink_percent`` of the list in force is refused, the list in force kept, unless
the admin confirms it (CLI --allow-shrink, the portal's checkbox)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from livecall_ari import config
from livecall_ari.app import App
from livecall_ari.screening.lists import ShrinkRefused, shrink_refusal
from livecall_ari.screening.services import list_files
from tests.unit.test_screening_lists import NOW, keys_of, write_list

LIST = [f"0207946{i:04d}" for i in range(200)]


@pytest.fixture
def app(tmp_path: Path) -> App:
    settings = config.load(tmp_path / "livecall.toml", environ={"LIVECALL_DATA_DIR": str(tmp_path)})
    application = App(settings)
    yield application  # type: ignore[misc]
    application.close()


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "livecall_ari.cli", *args], env=env, capture_output=True, text=True)


@pytest.mark.parametrize(("in_force", "removed", "refused"), [
    (0, 0, False), (200, 0, False), (200, 10, False), (200, 11, True), (200, 200, True), (1, 1, True),
])
def test_shrink_refusal_allows_up_to_the_share_and_no_more(in_force: int, removed: int, refused: bool) -> None:
    why = shrink_refusal(in_force, removed, 5)
    assert (why is not None) == refused
    if why is not None:
        assert f"{removed:,} of the {in_force:,}" in why and "--allow-shrink" in why


def test_a_one_number_file_after_a_full_list_is_refused_and_the_list_kept(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    files.import_file("tps", write_list(tmp_path / "full.txt", LIST), delta=False, list_date=None, now=NOW)

    with pytest.raises(ShrinkRefused, match=r"remove 199 of the 200 numbers in force \(99\.5%"):
        files.import_file("tps", write_list(tmp_path / "cut.txt", LIST[:1]), delta=False, list_date=None, now=NOW)

    assert len(keys_of(files)) == 200


def test_a_change_file_that_deletes_too_much_is_refused_too(app: App, tmp_path: Path) -> None:
    files = list_files(app)
    files.import_file("tps", write_list(tmp_path / "full.txt", LIST), delta=False, list_date=None, now=NOW)
    change = tmp_path / "change.txt"
    change.write_bytes("".join(f"{n}  D\r\n" for n in LIST[:20]).encode())

    with pytest.raises(ShrinkRefused):
        files.import_file("tps", change, delta=True, list_date=dt.date(2025, 3, 4), now=NOW)

    assert len(keys_of(files)) == 200


def test_cli_refuses_with_a_clear_message_and_imports_when_confirmed(tmp_path: Path) -> None:
    full, cut = write_list(tmp_path / "full.txt", LIST), write_list(tmp_path / "cut.txt", LIST[:1])
    assert run(tmp_path, "lists", "import", "tps", str(full)).returncode == 0

    refused = run(tmp_path, "lists", "import", "tps", str(cut))
    status = run(tmp_path, "lists", "status", "--json")

    assert refused.returncode != 0
    assert "would remove 199 of the 200 numbers in force" in refused.stderr
    assert "--allow-shrink" in refused.stderr
    assert '"count": 200' in status.stdout

    confirmed = run(tmp_path, "lists", "import", "tps", str(cut), "--allow-shrink")
    assert confirmed.returncode == 0, confirmed.stderr
    assert '"count": 1' in run(tmp_path, "lists", "status", "--json").stdout


def test_the_portal_asks_for_confirmation_before_a_list_shrinks(tmp_path: Path) -> None:
    from tests.unit.protection_data import make_app
    from tests.unit.test_fuzz_portal import PASSWORD, client_for, log_in
    from livecall_ari.portal.auth import Accounts

    application = make_app(tmp_path)
    Accounts().add("root", "admin", PASSWORD, "")
    full = "".join(n + "\r\n" for n in LIST).encode()
    try:
        with client_for(application) as client:
            csrf = log_in(client, "root")
            form = {"csrf": csrf, "list": "tps", "kind": "full", "list_date": ""}
            headers = {"x-requested-with": "fetch"}
            assert client.post("/lists/import", headers=headers, data=form, files={"file": ("full.txt", full)}).status_code == 200
            page = client.get("/lists")
            assert 'name="allow_shrink"' in page.text

            refused = client.post("/lists/import", headers=headers, data=form, files={"file": ("cut.txt", b"02079460000\r\n")})
            assert refused.status_code == 422
            assert 'data-refused="shrink"' in refused.text and "remove 199 of the 200" in refused.text
            assert "200 numbers" in client.get("/lists").text

            confirmed = client.post("/lists/import", headers=headers, data={**form, "allow_shrink": "yes"},
                                    files={"file": ("cut.txt", b"02079460000\r\n")})
            assert confirmed.status_code == 200, confirmed.text[:300]
            assert 'data-count="count">1<' in confirmed.text
    finally:
        application.close()
