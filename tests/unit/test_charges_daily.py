"""Daily-plan statements from calls grouped by the database are those of the per-call rater."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from livecall_ari.app import App
from livecall_ari.charges import daily, services
from livecall_ari.charges.cdr import CdrRecord, master_fields
from livecall_ari.charges.rating import BILLING_ZONE, rate, statement_window
from livecall_ari.charges.tariff import default_tariff_text, parse_tariff
from livecall_ari.config import Settings

LONDON = ZoneInfo("Europe/London")
NUMBERS = [
    "07700900{:03d}", "0207946{:04d}", "0303123{:04d}", "0800111{:04d}", "0845555{:04d}", "0909876{:04d}",
    "0701234{:04d}", "0761234{:04d}", "0551234{:04d}", "2{:03d}", "999", "0033140{:06d}", "001212555{:04d}",
    "0061255501{:03d}", "00353{:08d}",
]  # fmt: skip
# Prices change on the day the clocks go back (per second from then, with a minimum charge and
# a dearer day), and VAT changes on the day they go forward.
TARIFF = parse_tariff(
    default_tariff_text()
    + """
[[daily]]
from = 2025-10-26
day_fee_pence = 900
landline_per_minute = "10.5"
mobile_per_minute = 21
increment_seconds = 1
minimum_charge_pence = "1.5"

[[vat]]
from = 2025-03-30
percent = "17.5"
"""
)


def generated(seed: int, around: list[dt.datetime], n: int) -> list[CdrRecord]:
    """Calls in the days around each moment, mostly near local midnights and clock changes."""
    rng = random.Random(seed)
    starts = sorted(int(moment.timestamp()) + rng.randrange(-3 * 86400, 3 * 86400) for moment in around for _ in range(n))
    records = []
    for i, start in enumerate(starts):
        billsec = rng.choice([0, 1, 59, 60, 61, 119, 600, rng.randrange(1, 4000)])
        pattern = rng.choice(NUMBERS)
        dst = pattern.format(rng.randrange(1000)) if "{" in pattern else pattern
        records.append(CdrRecord(
            f"acc{rng.randrange(4)}", "2001", dst, "ctx", '"Agent" <2001>', f"PJSIP/2001-{i:08x}", f"PJSIP/trunk-{i:08x}",
            "Dial", "x", start, start + 3 if billsec else None, start + 3 + billsec, 3 + billsec, billsec,
            "ANSWERED" if billsec else "NO ANSWER", "DOCUMENTATION", f"{start}.{i}", "",
        ))  # fmt: skip
    return records


@pytest.fixture
def app(tmp_path: Path) -> App:
    a = App(Settings(data_dir=str(tmp_path / "data")))
    yield a
    a.close()


@pytest.mark.parametrize("split", [False, True], ids=["one query", "parts on threads"])
def test_grouped_daily_statements_are_the_per_call_ones_across_clock_changes(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    if split:  # the grouping query in parts on threads, whatever the number of calls
        monkeypatch.setattr(services, "_SPLIT_FROM_CALLS", 1)
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    moments = [dt.datetime(2025, 3, 30, 1, 0, tzinfo=LONDON), dt.datetime(2025, 10, 26, 1, 30, tzinfo=LONDON)]
    path = tmp_path / "Master.csv"
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in generated(7, moments, 1500):
        w.writerow(master_fields(r, LONDON))
    path.write_text(out.getvalue())
    assert services.import_cdrs(app, path).bad_count == 0
    db = app.database()
    ranges = [
        (dt.date(2025, 3, 27), dt.date(2025, 4, 2)), (dt.date(2025, 3, 30), dt.date(2025, 3, 30)),
        (dt.date(2025, 3, 31), dt.date(2025, 10, 25)), (dt.date(2025, 10, 25), dt.date(2025, 10, 26)),
        (dt.date(2025, 10, 26), dt.date(2025, 10, 31)), (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
    ]  # fmt: skip
    for first, last in ranges:
        grouped = services.all_statements(app, first, last, "daily", keep_lines=False, rate_with=TARIFF)
        start, end = statement_window("daily", first, last)
        assert daily.groups_sql("cdr_records", "?", BILLING_ZONE, TARIFF.daily, start, end) is not None
        assert sum(s.calls for s in grouped.values()) > 0 or first == dt.date(2025, 3, 31)
        if split and (first, last) == ranges[-1]:
            parts = services._parts(db, start, end)
            assert len(parts) == 3 and parts[0][0] == start and parts[-1][1] == end, parts
        for account, statement in grouped.items():
            calls = list(services.account_calls(db, account, start, end))
            assert statement == rate(calls, TARIFF, "daily", first, last, account, keep_lines=False), (account, first)


def test_offset_changes_are_the_quarter_hours_where_the_offset_changes() -> None:
    start = int(dt.datetime(2025, 3, 29, tzinfo=dt.timezone.utc).timestamp())
    end = int(dt.datetime(2025, 10, 27, tzinfo=dt.timezone.utc).timestamp())
    assert daily.offset_changes(LONDON, start, end) == [(start, 0), (1743296400, 3600), (1761440400, 0)]
    assert daily.offset_changes(ZoneInfo("UTC"), start, end) == [(start, 0)]


def test_a_window_near_1970_is_rated_call_by_call() -> None:
    assert daily.groups_sql("cdr_records", "?", LONDON, TARIFF.daily, 0, 86400) is None
