"""``livecall cdr import`` and ``livecall charges``, and the cdr_custom template's columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from livecall_ari.asterisk.render import render_all
from livecall_ari.charges.cdr import LIVECALL_FIELDS
from livecall_ari.cli import main
from livecall_ari.config import Settings

LINES = (
    '"acc1","2001","07700900123","livecall-agents","x","PJSIP/2001-01","PJSIP/trunk-02","Dial","x",'
    '"2025-06-03 10:00:00","2025-06-03 10:00:05","2025-06-03 10:01:10",70,65,"ANSWERED","DOCUMENTATION","1748941200.1",""\n'
    '"acc1","2001","02079460000","livecall-agents","x","PJSIP/2001-03","PJSIP/trunk-04","Dial","x",'
    '"2025-06-04 11:00:00","2025-06-04 11:00:05","2025-06-04 11:02:05",125,120,"ANSWERED","DOCUMENTATION","1749031200.3",""\n'
    "oops\n"
)


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    env = {"LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path / "data")}
    result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_import_then_statement(tmp_path: Path) -> None:
    cdrs = tmp_path / "Master.csv"
    cdrs.write_text(LINES)
    code, out, err = run(tmp_path, "cdr", "import", str(cdrs))
    assert code == 0
    assert "3 lines read: 2 new records, 0 already imported, 1 bad lines" in out
    assert f"{cdrs.resolve()}:3: expected 18 columns" in err
    code, out, _ = run(tmp_path, "cdr", "import", "--json", str(cdrs))
    assert json.loads(out)["inserted"] == 0

    code, out, _ = run(tmp_path, "charges", "--account", "acc1", "--from", "2025-06-01", "--to", "2025-06-30",
                       "--json", "--csv", str(tmp_path / "s.csv"), "--html", str(tmp_path / "s.html"))  # fmt: skip
    assert code == 0
    data = json.loads(out)
    # Daily plan: mobile 65 s -> 2 min x 20p; landline 120 s -> 2 min x 10p; two days x 800p.
    assert [(line["class"], line["billed_seconds"], line["pence"]) for line in data["lines"]] == [
        ("mobile", 120, 40),
        ("landline", 120, 20),
    ]
    assert [f["pence"] for f in data["fees"]] == [800, 800]
    assert (data["net_pence"], data["vat_pence"], data["total_pence"]) == (1660, 332, 1992)
    assert data["lines"][0]["date"] == "2025-06-03" and data["lines"][0]["number"] == "+447700900123"
    assert (tmp_path / "s.csv").read_text().splitlines()[-1].split(",")[9] == "1992"
    assert "£19.92" in (tmp_path / "s.html").read_text()

    code, out, _ = run(tmp_path, "charges", "--account", "acc1", "--from", "2025-06-01", "--to", "2025-06-30",
                       "--plan", "monthly", "--json")  # fmt: skip
    assert json.loads(out)["net_pence"] == 3500 + 40  # landline minutes in the bundle


def test_charges_errors_are_messages(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "charges", "--account", "a", "--from", "2025-06-30", "--to", "2025-06-01")
    assert code == 1 and "ends (2025-06-01) before it starts (2025-06-30)" in err
    (tmp_path / "livecall.toml").write_text('[charges]\ntariff_file = "/nonexistent.toml"\n')
    code, _, err = run(tmp_path, "charges", "--account", "a", "--from", "2025-06-01", "--to", "2025-06-30")
    assert code == 1 and "/nonexistent.toml: cannot read the tariff" in err


def _top_level_fields(mapping: str) -> list[str]:
    fields, depth, current = [], 0, ""
    for ch in mapping:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            fields.append(current)
            current = ""
        else:
            current += ch
    return fields + [current]


def test_the_cdr_custom_template_writes_the_24_columns_the_parser_reads() -> None:
    rendered = {f.name: f.text for f in render_all(Settings())}["cdr_custom_livecall.conf"]
    assert "[mappings]" in rendered
    mapping = re.search(r"^livecall\.csv => (.*)$", rendered, re.M)
    assert mapping is not None
    fields = _top_level_fields(mapping.group(1))
    names = [re.search(r"CDR\((\w+)", f).group(1) for f in fields]  # type: ignore[union-attr]
    expected = [{"call_id": "livecall_call_id", "purpose": "livecall_purpose", "decision": "livecall_decision"}.get(n, n)
                for n in LIVECALL_FIELDS]  # fmt: skip
    assert names == expected
    assert [f for f in fields if ",u)" in f] == ["${CDR(start,u)}", "${CDR(answer,u)}", "${CDR(end,u)}"]
