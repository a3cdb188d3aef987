"""A bad list line is quoted at most 200 characters wherever it is shown: the parser's report,
the CLI's messages and the portal's reply, even when the "line" is a whole 50 MB file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from livecall_ari.screening.parsers import QUOTE_LIMIT, BadLine, parse_chunk
from tests.unit.protection_data import cli_env, make_app


def test_a_long_bad_line_is_kept_to_its_first_200_characters() -> None:
    parsed = parse_chunk(b"02079460001 \r\n" + b"9" * 5000 + b"\r\nabc\r\n", 1)

    assert [(b.line, len(b.text), b.cut) for b in parsed.bad] == [(2, QUOTE_LIMIT, True), (3, 3, False)]
    assert parsed.bad[0].describe("f.txt") == f"f.txt:2: is longer than 12 characters: '{'9' * 200}'… (cut at 200 characters)"
    assert parsed.bad[1].describe("f.txt").endswith(": 'abc'")


def test_a_bad_line_of_exactly_200_characters_is_not_marked_cut() -> None:
    line = BadLine.of(7, b"x" * 200 + b"\r\n", "bad")
    assert (line.text, line.cut, line.shown) == ("x" * 200, False, "x" * 200)


def test_the_cli_quotes_a_50_mb_line_in_200_characters(tmp_path: Path) -> None:
    make_app(tmp_path).close()
    huge = tmp_path / "tps.txt"
    with open(huge, "wb") as f:
        f.write(b"02079460001 \r\n")
        for _ in range(50):
            f.write(b"7" * (1 << 20))  # one 50 MB line, no line end until the last
        f.write(b"\r\n02079460002 \r\n")

    done = subprocess.run([sys.executable, "-m", "livecall_ari.cli", "lists", "import", "tps", str(huge), "--max-bad-lines", "0"],
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=120)

    assert done.returncode != 0
    assert len(done.stderr) < 2000, len(done.stderr)
    assert f"tps.txt:2: is longer than 12 characters: '{'7' * 200}'… (cut at 200 characters)" in done.stderr


def test_the_portal_reply_quotes_a_bad_line_in_200_characters(tmp_path: Path) -> None:
    from livecall_ari.portal.auth import Accounts
    from tests.unit.test_fuzz_portal import PASSWORD, client_for, log_in

    application = make_app(tmp_path)
    Accounts().add("root", "admin", PASSWORD, "")
    content = b"02079460001 \r\n" + b"8" * (3 << 20) + b"\r\n"
    try:
        with client_for(application) as client:
            csrf = log_in(client, "root")
            done = client.post("/lists/import", headers={"x-requested-with": "fetch"},
                               data={"csrf": csrf, "list": "tps", "kind": "full", "list_date": ""},
                               files={"file": ("tps.txt", content)})
    finally:
        application.close()

    assert done.status_code == 200, done.text[:300]
    assert "8" * 200 + "…" in done.text and "8" * 201 not in done.text
    assert len(done.text) < 20_000


def test_an_over_long_line_is_read_in_bounded_memory_and_the_lines_after_it_still_count() -> None:
    import io

    from livecall_ari.screening.lists import LONG_LINE, _chunks

    data = b"02079460001 \r\n" + b"5" * (LONG_LINE * 40) + b"\r\n02079460002 \r\n0207946"
    chunks = [chunk for chunk, _ in _chunks(io.BytesIO(data), 1000)]

    assert max(len(c) for c in chunks) <= LONG_LINE + 1000
    lines = b"".join(chunks).split(b"\n")
    assert lines == [b"02079460001 \r", b"5" * LONG_LINE, b"02079460002 \r", b"0207946"]


def test_the_portal_copies_an_upload_privately(tmp_path: Path) -> None:
    import io
    import stat

    from starlette.datastructures import UploadFile

    from livecall_ari.portal.lists import copy_private

    upload = UploadFile(io.BytesIO(b"02079460001 \r\n" * 1000), filename="tps.txt")
    copy_private(upload, tmp_path / "tps.txt")

    assert (tmp_path / "tps.txt").read_bytes() == b"02079460001 \r\n" * 1000
    assert stat.S_IMODE((tmp_path / "tps.txt").stat().st_mode) == 0o600
