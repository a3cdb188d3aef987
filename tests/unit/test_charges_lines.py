"""The batch line parser gives, line by line, what the reference parser gives."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from livecall_ari.charges.cdr import CdrFieldError, LocalTimes, format_local
from livecall_ari.charges.classify import EXTERNAL, NumberClassifier
from livecall_ari.charges.lines import LineParser, ParsedLines

LONDON = ZoneInfo("Europe/London")
SOURCE = "/var/log/asterisk/cdr-csv/Master.csv"


def parser() -> LineParser:
    return LineParser(LocalTimes(LONDON), NumberClassifier(), "default", SOURCE)


def reference(text: str, first_no: int) -> ParsedLines:
    """Line by line, each line alone through csv and the reference row: the old importer."""
    p = parser()
    out = ParsedLines()
    for i, line in enumerate(text.split("\n")[:-1]):
        no = first_no + i
        try:
            fields = next(csv.reader([line + "\n"], strict=True))
        except csv.Error as exc:
            out.bad.append((no, f"not a CSV line: {exc}"))
            continue
        except StopIteration:
            fields = []
        if not fields:
            out.bad.append((no, "empty line"))
            continue
        try:
            out.rows.append(p.reference_row(fields, line.rstrip("\r\n"), no))
        except CdrFieldError as exc:
            out.bad.append((no, str(exc)))
    return out


def line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(fields)
    return out.getvalue()


# 2024-10-27 01:xx happens twice in London, 2024-03-31 01:xx never.
instants = st.one_of(
    st.integers(1717400000, 1717400000 + 30 * 86400),
    st.integers(1729987200, 1729999999),
    st.integers(1711846800 - 7200, 1711846800 + 7200),
)
numbers = st.one_of(
    st.sampled_from(["07700900123", "01632960001", "02079460000", "08001111111", "2001", "s", "999", "0033140000000",
                     "0012125550100", "+447700900123", "0800111111", "", "0770 090 0123"]),
    st.from_regex(r"0[1-9]\d{9}", fullmatch=True),
)  # fmt: skip


@st.composite
def cdr_line(draw: st.DrawFn) -> str:
    start = draw(instants)
    ring, billsec = draw(st.integers(0, 60)), draw(st.integers(0, 4000))
    answer = "" if billsec == 0 else format_local(start + ring, LONDON)
    kind = draw(st.sampled_from(["master", "master", "master", "epoch", "newcdr", "bad", "junk"]))
    fields = [
        draw(st.sampled_from(["acc1", "acc2", ""])), "2001", draw(numbers), "ctx", '"Agent" <2001>',
        f"PJSIP/2001-{start:08x}", f"PJSIP/trunk-{start:08x}", "Dial", "x,60", format_local(start, LONDON), answer,
        format_local(start + ring + billsec, LONDON), str(ring + billsec), str(billsec), "ANSWERED", "DOCUMENTATION",
        draw(st.sampled_from([f"{start}.1", f"{start + 3600}.2", "pbx-1.3"])), "",
    ]  # fmt: skip
    if kind == "epoch":
        fields[9:12] = [f"{start}.5", f"{start + ring}.0" if billsec else "0.000000", f"{start + ring + billsec}.9"]
        fields += ["peer", "linked", "1", "call-7", draw(st.sampled_from(["sales", "inbound"])), "allow"]
    elif kind == "newcdr":
        fields += ["peer", "linked", "1"]
    elif kind == "bad":
        index = draw(st.sampled_from([9, 10, 11, 12, 13]))
        fields[index] = draw(st.sampled_from(["", "2024-13-01 10:00:00", "x", "12.5", "2024-06-03 10:00:61", "-1"]))
    elif kind == "junk":
        return draw(st.sampled_from(["\n", "not,a,cdr\n", '"broken,"quote\n', '"open quote,a\n', "a\rb\n"]))
    return line(fields)


@settings(max_examples=150, deadline=None)
@given(st.lists(cdr_line(), min_size=0, max_size=120), st.integers(1, 10**6))
def test_batches_give_the_rows_and_bad_lines_of_the_reference(lines: list[str], first_no: int) -> None:
    text = "".join(lines)
    got = parser().parse(text, first_no)
    want = reference(text, first_no)
    assert got.rows == want.rows
    assert got.bad == want.bad
    assert got.lines == len(lines)


def test_a_big_batch_of_ordinary_lines_goes_the_quick_way_and_agrees() -> None:
    fields = [
        "acc1", "2001", "", "ctx", '"Agent" <2001>', "", "PJSIP/trunk", "Dial", "x", "", "", "", "", "", "ANSWERED",
        "DOCUMENTATION", "", "",
    ]  # fmt: skip
    lines = []
    for i in range(3000):
        start = 1729980000 + i * 7  # across the night the clocks went back
        row = list(fields)
        row[2], row[5], row[16] = f"07{i % 9 + 1}00900{i:03d}"[:11], f"PJSIP/2001-{i:08x}", f"{start}.{i}"
        row[9], row[10], row[11] = format_local(start, LONDON), format_local(start + 3, LONDON), format_local(start + 70, LONDON)
        row[12], row[13] = "70", "67"
        lines.append(line(row))
    text = "".join(lines)
    p = parser()
    p.parse(text, 1)  # hours and prefixes now known
    got = p.parse(text, 1)
    assert got.rows == reference(text, 1).rows and not got.bad
    assert len(got.rows) == 3000


def test_a_fastagi_secret_in_lastdata_is_not_stored() -> None:
    # A CDR whose last application was AGI() carries the FastAGI URL, secret and all (issue 13).
    secret = "Ab-_9x.y~z0123456789"
    fields = [
        "acc1", "2001", "02079460018", "ctx", '"Agent" <2001>', "PJSIP/2001-00000001", "", "AGI",
        f"agi://127.0.0.1:4573/screen?secret={secret},02079460018,marketing,2001,anonymous",
        format_local(1717400000, LONDON), "", format_local(1717400005, LONDON), "5", "0", "NO ANSWER", "DOCUMENTATION",
        "1717400000.1", "",
    ]  # fmt: skip
    [row] = parser().parse(line(fields), 7).rows
    stored = str(row[11])
    assert secret not in stored and "screen?secret=[secret],02079460018" in stored


def test_a_call_to_one_of_the_organisations_dids_is_never_billed() -> None:
    # The inbound context marks its calls (CDR livecall_purpose "inbound"): the DID is the
    # "dialled number" of such a CDR, and the caller pays for that call, not the account.
    start = 1717400000
    fields = [
        "acc1", "02079460018", "01134961001", "from-trunk", '"PSTN caller" <02079460018>', "PJSIP/carrier-00000001",
        "PJSIP/1001-00000002", "Dial", "PJSIP/1001,30", format_local(start, LONDON), format_local(start + 2, LONDON),
        format_local(start + 62, LONDON), "62", "60", "ANSWERED", "DOCUMENTATION", f"{start}.1", "", "", f"{start}.1", "4",
        f"{start}.1", "inbound", "",
    ]  # fmt: skip
    outbound = fields[:22] + ["sales", "allow"]
    outbound[2], outbound[3] = "02079460018", "livecall-allowed"
    many = [line(fields)] * 20 + [line(outbound)] * 20  # the column-wise path, and one row alone
    for text in (line(fields), "".join(many)):
        rows = parser().parse(text, 1).rows
        assert {(r[6], r[7]) for r in rows[:1]} == {("+441134961001", "inbound")}
    assert "inbound" not in EXTERNAL
    classes = [r[7] for r in parser().parse("".join(many), 1).rows]
    assert classes == ["inbound"] * 20 + ["landline"] * 20
