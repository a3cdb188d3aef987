"""The CDR line parser: layouts, local times and the clocks changing, bad fields."""

from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecall_ari.charges.cdr import (
    LIVECALL_FIELDS,
    MASTER_FIELDS,
    NEWCDR_FIELDS,
    CdrFieldError,
    LocalTimes,
    format_local,
    parse_fields,
)

LONDON = ZoneInfo("Europe/London")
UTC = dt.timezone.utc


def master_row(start: str = "2024-06-03 10:00:00", answer: str = "2024-06-03 10:00:05",
               end: str = "2024-06-03 10:01:10", duration: str = "70", billsec: str = "65",
               dst: str = "07700900123", accountcode: str = "acc1") -> list[str]:  # fmt: skip
    return [
        accountcode, "2001", dst, "livecall-agents", '"Agent" <2001>', "PJSIP/2001-00000001",
        "PJSIP/trunk-00000002", "Dial", "PJSIP/x@trunk,60", start, answer, end, duration, billsec,
        "ANSWERED", "DOCUMENTATION", "1717405200.1", "",
    ]  # fmt: skip


def epoch(y: int, mo: int, d: int, h: int, mi: int, s: int, zone: dt.tzinfo = UTC, fold: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=zone, fold=fold).timestamp())


def test_master_csv_line_times_are_london_local_time() -> None:
    r = parse_fields(master_row(), LocalTimes(LONDON))
    # June: BST, UTC+1.
    assert r.start == epoch(2024, 6, 3, 9, 0, 0)
    assert r.answer == epoch(2024, 6, 3, 9, 0, 5)
    assert r.end == epoch(2024, 6, 3, 9, 1, 10)
    assert (r.duration, r.billsec, r.dst, r.accountcode) == (70, 65, "07700900123", "acc1")
    assert r.clid == '"Agent" <2001>'
    assert r.linkedid == r.call_id == ""


def test_winter_time_is_utc() -> None:
    r = parse_fields(master_row("2024-01-10 10:00:00", "", "2024-01-10 10:00:30", "30", "0"), LocalTimes(LONDON))
    assert r.start == epoch(2024, 1, 10, 10, 0, 0)
    assert r.answer is None


def test_configured_utc_zone() -> None:
    r = parse_fields(master_row(), LocalTimes(ZoneInfo("UTC")))
    assert r.start == epoch(2024, 6, 3, 10, 0, 0)


def test_newcdrcolumns_and_livecall_layouts() -> None:
    times = LocalTimes(LONDON)
    r21 = parse_fields(master_row() + ["peer", "linked-1", "7"], times)
    assert r21.linkedid == "linked-1" and r21.call_id == ""
    row = master_row()
    row[9:12] = ["1717405200.123456", "1717405205.000001", "1717405270.5"]
    r24 = parse_fields(row + ["peer", "linked-1", "7", "call-42", "marketing", "allow"], times)
    assert (r24.start, r24.answer, r24.end) == (1717405200, 1717405205, 1717405270)
    assert (r24.linkedid, r24.call_id, r24.purpose, r24.decision) == ("linked-1", "call-42", "marketing", "allow")
    assert len(LIVECALL_FIELDS) == 24 and len(NEWCDR_FIELDS) == 21 and len(MASTER_FIELDS) == 18


def test_epoch_zero_answer_means_not_answered() -> None:
    row = master_row()
    row[9:12] = ["1717405200.1", "0.000000", "1717405230.1"]
    assert parse_fields(row, LocalTimes(LONDON)).answer is None


def test_the_same_call_has_the_same_key_in_both_layouts() -> None:
    times = LocalTimes(LONDON)
    master = parse_fields(master_row(), times)
    row = master_row()
    row[9:12] = [f"{master.start}.250000", f"{master.answer}.1", f"{master.end}.9"]
    custom = parse_fields(row + ["", "l", "1", "c", "p", "d"], times)
    assert master.key() == custom.key()
    other = parse_fields(master_row(dst="07700900124"), times)
    assert other.key() != master.key()


def test_clocks_going_back_the_duration_decides_which_0130() -> None:
    times = LocalTimes(LONDON)
    # 27 Oct 2024: 01:00-01:59 happens twice (BST, then GMT). A 10-minute call from 01:55 BST
    # ends at 01:05 GMT: the end reads earlier than the start.
    r = parse_fields(
        master_row("2024-10-27 01:55:00", "2024-10-27 01:55:00", "2024-10-27 01:05:00", "600", "600"), times
    )
    assert r.start == epoch(2024, 10, 27, 0, 55, 0)
    assert r.end == epoch(2024, 10, 27, 1, 5, 0)
    assert r.answer == r.start
    # A 1-hour call from 01:30 BST to 01:30 GMT.
    r = parse_fields(
        master_row("2024-10-27 01:30:00", "2024-10-27 01:30:00", "2024-10-27 01:30:00", "3600", "3600"), times
    )
    assert r.end - r.start == 3600
    assert r.start == epoch(2024, 10, 27, 0, 30, 0)
    # Both in the first 01:xx when the duration says so (the earlier reading wins ties).
    r = parse_fields(
        master_row("2024-10-27 01:10:00", "2024-10-27 01:10:00", "2024-10-27 01:20:00", "600", "600"), times
    )
    assert r.start == epoch(2024, 10, 27, 0, 10, 0)


def test_a_call_wholly_in_the_repeated_hour_is_placed_by_its_uniqueid() -> None:
    times = LocalTimes(LONDON)
    row = master_row("2024-10-27 01:10:00", "2024-10-27 01:10:00", "2024-10-27 01:20:00", "600", "600")
    second = epoch(2024, 10, 27, 1, 10, 0)  # 01:10 GMT, the second 01:10
    row[16] = f"{second}.7"
    r = parse_fields(row, times)
    assert (r.start, r.end) == (second, second + 600)
    row[16] = f"pbx1-{second - 3600}.7"  # systemname prefix; the first 01:10
    assert parse_fields(row, times).start == second - 3600


def test_a_time_that_never_happened_is_an_error() -> None:
    with pytest.raises(CdrFieldError, match="start: 2024-03-31 01:30 never happened"):
        parse_fields(master_row("2024-03-31 01:30:00", "", "2024-03-31 02:31:00", "60", "0"), LocalTimes(LONDON))


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (12, "ten", "duration: expected a number of seconds, got 'ten'"),
        (13, "-5", "billsec: expected a number of seconds"),
        (9, "2024-13-03 10:00:00", "start: not a date and time"),
        (9, "", "start: empty"),
        (11, "yesterday", "end: expected 'YYYY-MM-DD HH:MM:SS' or epoch seconds"),
        (10, "2024-06-03 10:00:61", "answer: bad minutes or seconds"),
        (11, "2024-06-03 09:00:00", "end: 2024-06-03 09:00:00 is before start"),
    ],
)
def test_bad_fields_name_the_field(index: int, value: str, message: str) -> None:
    row = master_row()
    row[index] = value
    with pytest.raises(CdrFieldError, match=message.replace("(", r"\(")):
        parse_fields(row, LocalTimes(LONDON))


def test_wrong_column_count() -> None:
    with pytest.raises(CdrFieldError, match="got 17"):
        parse_fields(master_row()[:17], LocalTimes(LONDON))


def test_high_resolution_seconds_are_truncated() -> None:
    row = master_row(duration="70.250000", billsec="65.999")
    r = parse_fields(row, LocalTimes(LONDON))
    assert (r.duration, r.billsec) == (70, 65)


# Property: whatever Asterisk writes round-trips through the CSV line and the parser.

instants = st.integers(min_value=epoch(2020, 1, 1, 0, 0, 0), max_value=epoch(2030, 12, 31, 0, 0, 0))
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    start=st.one_of(instants, st.integers(epoch(2024, 10, 27, 0, 0, 0), epoch(2024, 10, 27, 1, 59, 59))),
    ring=st.integers(0, 120),
    billsec=st.integers(0, 7200),
    seq=st.integers(0, 10**6),
    fields=st.lists(text, min_size=9, max_size=9),
)
def test_round_trip_through_a_csv_line(start: int, ring: int, billsec: int, seq: int, fields: list[str]) -> None:
    answer = start + ring if billsec else None
    end = start + ring + billsec
    row = [
        fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[7], fields[8],
        format_local(start, LONDON), format_local(answer, LONDON) if answer is not None else "",
        format_local(end, LONDON), str(ring + billsec), str(billsec), "ANSWERED", "DOCUMENTATION", f"{start}.{seq}", "",
    ]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL).writerow(row)
    parsed_row = next(csv.reader(io.StringIO(out.getvalue())))
    r = parse_fields(parsed_row, LocalTimes(LONDON))
    # Exact, including the hour the clocks go back: the duration tells the two readings apart.
    assert (r.start, r.answer, r.end) == (start, answer, end)
    assert r.uniqueid == f"{start}.{seq}" and r.dst == fields[2]


@settings(max_examples=300, deadline=None)
@given(st.lists(text, min_size=0, max_size=26))
def test_any_columns_give_a_record_or_a_field_error(row: list[str]) -> None:
    try:
        r = parse_fields(row, LocalTimes(LONDON))
    except CdrFieldError as exc:
        assert str(exc)
    else:
        assert len(row) in (18, 21, 24) and r.end >= r.start
