"""The TPS/CTPS file parsers: both subscriber layouts, change files, bad lines, file-name dates."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from livecall_ari.screening.numbers import national_to_key
from livecall_ari.screening.parsers import date_in_name, detected_format, format_record, parse_bytes, parse_chunk

# The examples of the supplier's specification, in both layouts.
WITH_SPACES = b"0207 3787244\r\n01635 506160\r\n0191 5657153\r\n07860 338653\r\n"
WITHOUT_SPACES = b"02073787244 \r\n01635506160 \r\n01915657153 \r\n07860338653 \r\n"
KEYS = [442073787244, 441635506160, 441915657153, 447860338653]


def test_with_spaces_layout() -> None:
    parsed = parse_bytes(WITH_SPACES)
    assert parsed.additions.tolist() == KEYS
    assert parsed.bad == []
    assert detected_format(parsed.with_spaces, parsed.without_spaces) == "with spaces"


def test_without_spaces_layout() -> None:
    parsed = parse_bytes(WITHOUT_SPACES)
    assert parsed.additions.tolist() == KEYS
    assert detected_format(parsed.with_spaces, parsed.without_spaces) == "without spaces"


def test_lf_endings_trimmed_padding_and_blank_lines_are_accepted() -> None:
    parsed = parse_bytes(b"02073787244\n\n0191 5657153\r\n07860338653")
    assert sorted(parsed.additions.tolist()) == [441915657153, 442073787244, 447860338653]
    assert parsed.bad == []
    assert parsed.lines == 4


def test_bad_lines_name_the_line_and_the_problem() -> None:
    data = b"02073787244 \r\n0207378724x \r\n12073787244 \r\n0207 378 724\r\n020737 \r\n020737872441234\r\n01635506160 \r\n"
    parsed = parse_bytes(data)
    assert sorted(parsed.additions.tolist()) == [441635506160, 442073787244]
    problems = {bad.line: bad.problem for bad in parsed.bad}
    assert set(problems) == {2, 3, 4, 5, 6}
    assert "neither a digit nor a space" in problems[2]
    assert "does not start with 0" in problems[3]
    assert "more than two groups" in problems[4]
    assert "has 6 digits" in problems[5]
    assert "longer than 12" in problems[6]
    assert parsed.bad[0].describe("tps.txt") == "tps.txt:2: contains a character that is neither a digit nor a space: '0207378724x '"


def test_line_numbers_continue_across_chunks() -> None:
    parsed = parse_chunk(b"02073787244 \r\nxx\r\n", first_line=1001)
    assert [bad.line for bad in parsed.bad] == [1002]


def test_change_file_markers() -> None:
    data = b"02073787244 D\r\n01635506160 A\r\n+0191 5657153\r\n-07860 338653\r\n07700900123\r\n0207 3787244 Q\r\n"
    parsed = parse_bytes(data, delta=True)
    assert sorted(parsed.additions.tolist()) == [441635506160, 441915657153, 447700900123]
    assert sorted(parsed.deletions.tolist()) == [442073787244, 447860338653]
    assert [bad.line for bad in parsed.bad] == [6]
    assert "change marker" in parsed.bad[0].problem


def test_dates_in_file_names() -> None:
    assert date_in_name("tps-2025-03-01.txt") == dt.date(2025, 3, 1)
    assert date_in_name("TPS_20250301_full.txt") == dt.date(2025, 3, 1)
    assert date_in_name("ctps01032025.txt") == dt.date(2025, 3, 1)
    assert date_in_name("tps-2025-02-30.txt") is None
    assert date_in_name("tps.txt") is None


_national = st.one_of(
    st.from_regex(r"\A0[1-9][0-9]{9}\Z"),  # 11 digits
    st.from_regex(r"\A01[0-9]{8}\Z"),  # 10 digits
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_national, min_size=1, max_size=60), st.booleans(), st.sampled_from([3, 4]), st.booleans())
def test_either_layout_round_trips(numbers: list[str], with_spaces: bool, code_length: int, crlf: bool) -> None:
    end = "\r\n" if crlf else "\n"
    text = "".join(format_record(n, with_spaces, code_length) + end for n in numbers)
    parsed = parse_bytes(text.encode())
    assert parsed.bad == []
    assert sorted(set(parsed.additions.tolist())) == sorted({national_to_key(n) for n in numbers})
    two_groups = with_spaces  # every record then has a dialling code and a remainder
    assert (parsed.with_spaces == len(numbers)) == two_groups


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789 x+-AD", max_size=16), max_size=40), st.booleans())
def test_every_line_is_either_a_number_blank_or_reported(lines: list[str], delta: bool) -> None:
    lines = [line.replace("\n", "") for line in lines]
    parsed = parse_bytes("".join(line + "\r\n" for line in lines).encode(), delta=delta)
    blank = sum(1 for line in lines if not line.strip())
    good = parsed.with_spaces + parsed.without_spaces
    assert good + len(parsed.bad) + blank == len(lines)  # nothing silently dropped
    for bad in parsed.bad:
        assert 1 <= bad.line <= len(lines)
    for key in parsed.additions.tolist() + parsed.deletions.tolist():
        digits = str(key)
        assert digits.startswith("44") and 11 <= len(digits) <= 12


@settings(max_examples=100, deadline=None)
@given(st.lists(_national, min_size=1, max_size=40), st.lists(_national, max_size=40))
def test_change_file_round_trips(added: list[str], deleted: list[str]) -> None:
    text = "".join(format_record(n, False) + " A\r\n" for n in added) + "".join(
        format_record(n, True) + " D\r\n" for n in deleted
    )
    parsed = parse_bytes(text.encode(), delta=True)
    assert parsed.bad == []
    assert sorted(parsed.additions.tolist()) == sorted(national_to_key(n) for n in added)
    assert sorted(parsed.deletions.tolist()) == sorted(national_to_key(n) for n in deleted)
