"""Bad input to the pure parsers (issue 9): dial strings, both TPS layouts and change files, CDR
lines. Whatever the bytes, each parser returns a value or raises its own error with a message a
person can act on; nothing else escapes, nothing hangs, and what it accepts is well-formed."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from livecall_ari.charges.cdr import CdrFieldError, LocalTimes, parse_fields
from livecall_ari.charges.classify import NumberClassifier
from livecall_ari.charges.lines import LineParser
from livecall_ari.gate.core import CallAttempt
from livecall_ari.screening.numbers import EMERGENCY_NUMBERS, NumberParser, e164_to_key, key_to_e164
from livecall_ari.screening.parsers import RECORD_WIDTH, format_record, parse_bytes

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONDON = ZoneInfo("Europe/London")
PARSER = NumberParser("9")

# Characters that turn up in what phones and dialplans send: digits, dial-string punctuation,
# Asterisk's separators, controls and a few non-ASCII digits (Arabic-Indic, full-width).
DIAL_CHARS = st.sampled_from(list("0123456789+*#-() .,;|/&!\\\"'\t\r\n\x00") + ["٣", "０", "é", "\u200b"])
dial_strings = st.one_of(st.text(DIAL_CHARS, max_size=40), st.text(max_size=40))


@FUZZ
@given(dial_strings)
@example("9" * 5000)  # a long string must not take long
@example("+44" + "٣" * 10)
def test_any_dial_string_parses_to_a_valid_number_or_none(dialled: str) -> None:
    started = time.perf_counter()
    number = PARSER.parse(dialled)
    assert time.perf_counter() - started < 1.0
    if number is not None:
        assert number.e164.startswith("+") and number.e164[1:].isdigit() and number.e164.isascii()
        assert e164_to_key(number.e164) == number.key and key_to_e164(number.key) == number.e164
    PARSER.callback_caller_id(dialled)
    assert isinstance(PARSER.display(dialled), str)


@FUZZ
@given(dial_strings, st.sampled_from(["marketing", "service", "claims", "internal", "bogus", ""]),
       st.one_of(st.none(), dial_strings))
def test_screening_decides_any_dial_string_and_refusals_say_why(dialled: str, purpose: str, caller_id: str | None) -> None:
    import datetime as dt

    from tests.unit.test_screening_rules import lists, screener

    attempt = CallAttempt("1.1", "1001", dialled, purpose, dt.datetime(2025, 1, 15, 10, tzinfo=dt.timezone.utc), caller_id)
    decision = screener(prefix="9").screen(attempt, lists())
    assert decision.verdict in ("allow", "block")
    assert decision.allowed or decision.reasons
    if decision.allowed and purpose == "marketing" and PARSER.display(dialled) not in EMERGENCY_NUMBERS:
        assert PARSER.parse(dialled) is not None  # an invalid number never gets through


def _well_formed(records: list[str], crlf: bool) -> bytes:
    end = "\r\n" if crlf else "\n"
    return "".join(r + end for r in records).encode("latin-1")


uk_national = st.from_regex(r"\A0[1-3789][0-9]{8,9}\Z", fullmatch=True)


@FUZZ
@given(st.lists(uk_national, max_size=20), st.booleans(), st.booleans())
def test_both_tps_layouts_round_trip(numbers: list[str], with_spaces: bool, crlf: bool) -> None:
    records = [format_record(n, with_spaces) for n in numbers]
    assert all(len(r) == RECORD_WIDTH for r in records)
    parsed = parse_bytes(_well_formed(records, crlf))
    assert parsed.bad == []
    assert sorted(key_to_e164(int(k)) for k in parsed.additions) == sorted("+44" + n[1:] for n in numbers)


@FUZZ
@given(st.binary(max_size=600), st.booleans())
@example(b"\r\n" * 7, False)
@example(b"0207 3787244\r\n" + b"\x00" * 12 + b"\r\n", False)
@example(b"+\n-\nA\n 01635506160 X\n", True)
def test_any_bytes_as_a_tps_file_give_keys_and_bad_lines_with_reasons(data: bytes, delta: bool) -> None:
    parsed = parse_bytes(data, delta)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert parsed.lines == lines
    assert len(parsed.additions) + len(parsed.deletions) + len(parsed.bad) <= lines
    for key in list(parsed.additions) + list(parsed.deletions):
        e164 = key_to_e164(int(key))
        assert e164.startswith("+44") and len(e164) in (12, 13)
    for bad in parsed.bad:
        assert 1 <= bad.line <= lines and bad.problem
        assert bad.describe("tps.txt").startswith(f"tps.txt:{bad.line}: ")
    assert sorted({b.line for b in parsed.bad}) == [b.line for b in parsed.bad]


@FUZZ
@given(st.lists(st.one_of(uk_national, st.text(st.sampled_from("0123456789 AD+-x\t"), max_size=16)), max_size=15))
def test_a_change_file_is_split_into_additions_deletions_and_explained_bad_lines(records: list[str]) -> None:
    data = "".join(r + "\r\n" for r in records).encode()
    parsed = parse_bytes(data, delta=True)
    assert parsed.lines == len(records)
    good = len(parsed.additions) + len(parsed.deletions)
    blank = sum(1 for r in records if not r.strip())
    assert good + len(parsed.bad) + blank >= len(records) - blank  # nothing vanishes unexplained
    assert good + len(parsed.bad) <= len(records)


# CDR lines: fields that are nearly right, and plain garbage.
cdr_times = st.one_of(
    st.just(""), st.just("2025-06-02 10:00:00"), st.just("2025-03-30 01:30:00"), st.just("2025-10-26 01:30:00"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z", fullmatch=True),
    st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{0,6})?\Z", fullmatch=True), st.text(max_size=20),
)
cdr_counts = st.one_of(st.integers(0, 10**6).map(str), st.just("12.5"), st.just("-1"), st.just("1e3"), st.text(max_size=6))


@st.composite
def cdr_rows(draw: st.DrawFn) -> list[str]:
    width = draw(st.sampled_from([18, 21, 24, 0, 1, 17, 19, 25]))
    row = [draw(st.text(max_size=12)) for _ in range(width)]
    if width >= 18:
        row[2] = draw(dial_strings)
        row[9], row[10], row[11] = draw(cdr_times), draw(cdr_times), draw(cdr_times)
        row[12], row[13] = draw(cdr_counts), draw(cdr_counts)
    return row


@FUZZ
@given(cdr_rows())
def test_any_cdr_columns_give_a_record_or_a_field_error(row: list[str]) -> None:
    try:
        record = parse_fields(row, LocalTimes(LONDON))
    except CdrFieldError as exc:
        assert str(exc)
        return
    assert record.end >= record.start and record.duration >= 0 and record.billsec >= 0


def _csv_line(row: list[str]) -> str:
    """One file line (a newline inside a field would make it two)."""
    return ",".join('"' + f.replace('"', '""').replace("\n", " ").replace("\r", " ") + '"' for f in row)


@FUZZ
@given(st.lists(st.one_of(cdr_rows().map(_csv_line), st.text(max_size=80).map(lambda t: t.replace("\n", " "))),
                max_size=12), st.integers(1, 10**6))
@example(['"unterminated, "x', '"a","b"'], 1)
def test_any_cdr_lines_give_rows_or_numbered_bad_lines(lines: list[str], first: int) -> None:
    text = "".join(line + "\n" for line in lines)
    parser = LineParser(LocalTimes(LONDON), NumberClassifier(), "default", "Master.csv")
    out = parser.parse(text, first)
    assert out.lines == len(lines)
    assert len(out.rows) + len(out.bad) == len(lines)  # every line is a row or a reported bad line
    for number, message in out.bad:
        assert first <= number < first + len(lines) and message
    for row in out.rows:
        assert first <= int(row[-1]) < first + len(lines)  # type: ignore[call-overload]


@pytest.mark.parametrize("width", [0, 1, 30])
def test_a_cdr_row_of_the_wrong_width_says_how_many_columns_it_expected(width: int) -> None:
    with pytest.raises(CdrFieldError, match=r"expected 18 columns .* got %d" % width):
        parse_fields(["x"] * width, LocalTimes(LONDON))
