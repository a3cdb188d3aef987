"""The CDR parser processes: several children give the chunks one process gives, in file order."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from livecall_ari.charges.chunks import Chunk, ParserProcess, ParserSettings, parse_chunks
from tests.unit.test_charges_store import lines, record

SETTINGS = ParserSettings(ZoneInfo("Europe/London"), "", 6, "default")


def in_one_process(path: Path, per_chunk: int) -> list[Chunk]:
    with path.open("rb") as f:
        return list(parse_chunks(f, 0, 0, SETTINGS.parser(str(path)), per_chunk))


def in_children(path: Path, per_chunk: int, processes: int, offset: int = 0, line_no: int = 0) -> list[Chunk]:
    with path.open("rb") as f:
        parsers = ParserProcess(f, str(path), SETTINGS, offset, line_no, per_chunk, processes=processes)
        try:
            return list(parsers)
        finally:
            parsers.close()


def summary(chunks: list[Chunk]) -> list[tuple[object, ...]]:
    return [(c.start_offset, c.end_offset, c.end_line_no, c.lines, c.records, c.bad, c.incomplete, c.rows) for c in chunks]


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_children_give_the_chunks_of_one_process_in_order(tmp_path: Path, processes: int) -> None:
    path = tmp_path / "Master.csv"
    text = lines([record(i, billsec=i % 5) for i in range(1000)])
    path.write_text(text[:5000] + "not,a,cdr\n" + text[5000:] + text[:30])  # a bad line, half a line at the end
    alone = in_one_process(path, 64)
    split = in_children(path, 64, processes)
    assert summary(split) == summary(alone)
    assert split[-1].incomplete and sum(c.lines for c in split) == 1001
    assert [c.start_offset for c in split[1:]] == [c.end_offset for c in split[:-1]]


def test_children_resume_from_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(lines([record(i) for i in range(500)]))
    first = in_one_process(path, 100)
    resumed = in_children(path, 100, 2, first[1].end_offset, first[1].end_line_no)
    assert summary(resumed) == summary(first[2:])


def test_a_file_that_grows_while_read_is_taken_up_to_where_every_child_agrees(tmp_path: Path) -> None:
    """A child that saw the end earlier than another ends the import there: chunks the other
    parsed from a longer file are not taken (the next import reads them)."""
    path = tmp_path / "Master.csv"
    records = [record(i) for i in range(1000)]
    path.write_text(lines(records[:250]))
    with path.open("rb") as f:
        parsers = ParserProcess(f, str(path), SETTINGS, 0, 0, 100, processes=2)
        got: list[Chunk] = []
        try:
            for chunk in parsers:
                got.append(chunk)
                if len(got) == 1:
                    with path.open("a") as out:
                        out.write(lines(records[250:]))
        finally:
            parsers.close()
    assert [c.start_offset for c in got[1:]] == [c.end_offset for c in got[:-1]]
    assert sum(c.records for c in got) in range(250, 1001, 50)
    assert got[-1].end_line_no == sum(c.lines for c in got)
