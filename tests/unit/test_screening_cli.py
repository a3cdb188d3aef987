"""The screening commands, run through click against a real SQLite database in a temp dir."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from livecall_ari.cli import main

MONDAY_10AM = "2025-03-03T10:00:00+00:00"


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path)}

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def lists_file(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_bytes("".join(line + "\r\n" for line in lines).encode())
    return str(path)


def test_import_status_and_screen_json(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("lists", "import", "tps", lists_file(tmp_path, "tps-2025-03-01.txt", ["0207 9460018", "0207 9460017"]))
    assert result.exit_code == 0, result.output
    assert "version" in result.output and "with spaces" in result.output and "2 numbers" in result.output
    assert run("lists", "import", "ctps", lists_file(tmp_path, "c.txt", ["02079460019 "]), "--list-date", "2025-03-02").exit_code == 0

    status = json.loads(run("lists", "status", "--json").output)
    assert status["lists"]["tps"]["snapshot_date"] == "2025-03-01"
    assert status["lists"]["tps"]["count"] == 2
    assert status["lists"]["ctps"]["snapshot_date"] == "2025-03-02"
    assert status["lists"]["tps"]["verdict"] in ("fresh", "stale")
    assert "tps: version" in run("lists", "status").output

    blocked = json.loads(run("screen", "020 7946 0018", "--at", MONDAY_10AM, "--caller-id", "02079460000", "--json").output)
    assert blocked["decision"] == "block" and blocked["reasons"] == ["tps"] and blocked["number"] == "+442079460018"
    allowed = json.loads(run("screen", "+44 20 7946 0020", "--at", MONDAY_10AM, "--caller-id", "02079460000", "--json").output)
    assert allowed["decision"] == "allow" and allowed["reasons"] == [] and allowed["evidence"]["tps_version"] == "1"
    withheld = json.loads(run("screen", "02079460020", "--at", MONDAY_10AM, "--caller-id", "anonymous", "--json").output)
    assert withheld["reasons"] == ["caller_id"]
    night = json.loads(run("screen", "02079460020", "--at", "2025-03-03T21:00", "--caller-id", "02079460000", "--json").output)
    assert night["reasons"] == ["outside_hours"]
    text = run("screen", "02079460018", "--at", MONDAY_10AM, "--caller-id", "02079460000").output
    assert text.startswith("block +442079460018: tps")


def test_screen_without_lists_blocks_marketing_as_stale(run) -> None:  # type: ignore[no-untyped-def]
    decision = json.loads(run("screen", "02079460020", "--at", MONDAY_10AM, "--caller-id", "02079460000", "--json").output)
    assert decision["decision"] == "block" and decision["reasons"] == ["stale_list"]
    service = json.loads(run("screen", "02079460020", "--purpose", "service", "--json").output)
    assert service["decision"] == "allow"


def test_objections_and_consent_commands(run) -> None:  # type: ignore[no-untyped-def]
    added = run("objections", "add", "020 7946 0020", "--reason", "asked on call 17", "--by", "sam")
    assert added.exit_code == 0 and "+442079460020" in added.output
    listed = json.loads(run("objections", "list", "--json").output)
    assert [(o["number"], o["reason"], o["recorded_by"]) for o in listed] == [("+442079460020", "asked on call 17", "sam")]
    assert run("objections", "remove", "02079460020").exit_code == 0
    assert json.loads(run("objections", "list", "--json").output) == []
    assert len(json.loads(run("objections", "list", "--all", "--json").output)) == 1
    again = run("objections", "remove", "02079460020")
    assert again.exit_code == 1 and "not on the objection list" in again.output

    assert run("consent", "add", "02079460018").exit_code == 2  # evidence is required
    assert run("consent", "add", "02079460018", "--evidence", "form 9", "--scope", "claims").exit_code == 0
    consents = json.loads(run("consent", "list", "02079460018", "--json").output)
    assert consents[0]["scope"] == "claims" and consents[0]["withdrawn_at"] is None
    # An objection withdraws the consent.
    run("objections", "add", "02079460018")
    consents = json.loads(run("consent", "list", "--json").output)
    assert consents[0]["withdrawn_at"] is not None and consents[0]["withdrawal"].startswith("objection")
    assert run("consent", "withdraw", "02079460018").exit_code == 1


def test_bad_input_is_reported_with_file_and_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = lists_file(tmp_path, "bad.txt", ["02079460018", "0207946001x", "2079460018"])
    result = run("lists", "import", "tps", bad, "--max-bad-lines", "1")
    assert result.exit_code == 1
    assert f"{bad}:2: contains a character" in result.output
    assert f"{bad}:3: does not start with 0" in result.output
    assert "the list in force is kept" in result.output
    invalid = run("objections", "add", "12345")
    assert invalid.exit_code == 2 and "not a valid telephone number" in invalid.output


def test_bad_screening_settings_name_the_field(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "livecall.toml").write_text('[screening]\nnation = "Atlantis"\n')
    result = run("screen", "02079460018")
    assert result.exit_code == 1 and "[screening] nation" in result.output


def test_naive_at_is_london_time(run) -> None:  # type: ignore[no-untyped-def]
    summer = json.loads(run("screen", "02079460020", "--at", "2025-07-01T09:30", "--json").output)
    assert dt.datetime.fromisoformat(summer["at"]).utcoffset() == dt.timedelta(hours=1)
