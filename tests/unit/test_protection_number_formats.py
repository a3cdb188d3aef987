"""Numbers stored as the number they are (E.164) and found, exported and erased whatever form
they were dialled in; erasure replaces each mention whole, never a part of a longer number."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.app import App
from livecall_ari.charges.models import CdrRow
from livecall_ari.gate.models import GateDecision
from livecall_ari.protection.dsar import gather
from livecall_ari.protection.mentions import like_pattern, replace_mentions
from livecall_ari.protection.registry import subject_calls
from livecall_ari.recording.models import NoticeEvent, Recording
from livecall_ari.screening.numbers import NumberParser
from livecall_ari.storage.numbers import normalise_columns, stored_number
from tests.unit.protection_data import ALICE, BOB, NOW, add_person, everything_mentioning, make_app
from tests.unit.test_protection_erasure import eraser

PARSE = NumberParser().parse
NSN = ALICE[3:]  # 2079460018
# Every way the one number reaches LiveCall: as dialled, behind an outside-line prefix, as a
# phone or a spreadsheet writes it.
FORMS = ["02079460018", "+442079460018", "00442079460018", "442079460018", "902079460018", "900442079460018",
         "020 7946 0018", "(020) 7946 0018", "020-7946-0018", "+44 (0)20 7946 0018", "0044 20 7946 0018", "2079460018"]


def spread(nsn: str) -> re.Pattern[str]:
    """The number's significant digits with anything short between them: any form of it."""
    return re.compile(r"\D{0,3}".join(nsn))


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path)
    yield application  # type: ignore[misc]
    application.close()


@pytest.mark.parametrize("form", FORMS)
def test_each_form_is_stored_as_e164_and_replaced_whole(form: str) -> None:
    if form not in ("442079460018", "900442079460018", "902079460018"):  # not numbers without the context
        assert stored_number(form) == ALICE
    for text in (form, f'"2001","{form}","x"', f"PJSIP/{form}@trunk,60,U(x^1700000000.1^{form}^2001)", f"call {form} back"):
        replaced = replace_mentions(text, ALICE, "erased:ab12", PARSE)
        assert "erased:ab12" in replaced and not spread(NSN).search(replaced), (text, replaced)
        # Replaced whole: nothing of the form's prefix is left stuck to the pseudonym.
        assert not re.search(r"[0-9+(]erased:", replaced), replaced


@pytest.mark.parametrize("text", [
    "+442079460019", "0012079460018", "02079460017", "1700000000.12 60", "20794600180", "2079460018999",
])
def test_other_numbers_and_longer_digit_runs_are_left_alone(text: str) -> None:
    assert replace_mentions(text, ALICE, "erased:ab12", PARSE) == text


def test_what_surrounds_a_mention_is_kept() -> None:
    line = '"","2001","0044 20 7946 0018","livecall-agents","Dial","PJSIP/02079460018@trunk,60",1700000000.12 60 +442079460019'
    assert replace_mentions(line, ALICE, "E", PARSE) == '"","2001","E","livecall-agents","Dial","PJSIP/E@trunk,60",1700000000.12 60 +442079460019'


@given(
    st.sampled_from(FORMS),
    st.lists(st.sampled_from(["Dial", ",", "^", "60", "1700000000.1", "+442079460019", " ", "x(", ")", '"', "2001", "@trunk"]),
             max_size=8),
    st.lists(st.sampled_from(["Dial", ",", "^", "60", "1700000000.1", "+442079460019", " ", ")", '"', "2001", "@trunk"]),
             max_size=8),
)
def test_a_mention_anywhere_in_a_text_goes_and_the_rest_stays(form: str, before: list[str], after: list[str]) -> None:
    head, tail = "".join(before) + ",", ";" + "".join(after)
    text = head + form + tail
    assert replace_mentions(text, ALICE, "erased:ab12", PARSE) == head + "erased:ab12" + tail
    assert like_pattern(ALICE).strip("%") in text


def test_every_record_stores_the_number_it_is_and_old_rows_are_migrated(app: App) -> None:
    db = app.database()
    GateDecision.create(call_id="c1", agent="2001", dialled="00442079460018", number="00442079460018", purpose="service",
                        decision="allow", entry="stasis", decided_at=NOW.replace(tzinfo=None))
    Recording.create(call_id="c1", agent="2001", number="0044 20 7946 0018", purpose="service", started_at=NOW.replace(tzinfo=None))
    Recording.create(call_id="c2", agent="2001", number="2002", purpose="training", started_at=NOW.replace(tzinfo=None))
    assert [r.number for r in Recording.select().order_by(Recording.call_id)] == [ALICE, "2002"]  # an extension as it is
    assert GateDecision.get().number == ALICE and GateDecision.get().dialled == "00442079460018"  # the raw form kept beside
    # Looked up in any form, found by the one value.
    assert Recording.select().where(Recording.number == "020 7946 0018").count() == 1
    # Rows written before: the migration rewrites them.
    NoticeEvent.create(call_id="c1", number=ALICE, prompt="p", played=True, started_at=NOW.replace(tzinfo=None))
    db.execute_sql("UPDATE recording_notices SET number = '02079460018'")  # plain SQL: as stored before
    db.execute_sql("UPDATE recordings SET number = '00442079460018' WHERE call_id = 'c1'")
    assert Recording.select().where(Recording.number == ALICE).count() == 0
    normalise_columns(db, ("recordings", "number"), ("recording_notices", "number"))
    assert [r.number for r in NoticeEvent.select()] == [ALICE]
    assert Recording.get(Recording.call_id == "c1").number == ALICE


def test_a_call_dialled_0044_is_exported_and_erased_whole(app: App, tmp_path: Path) -> None:
    alice = add_person(app, tmp_path, ALICE, 1)
    add_person(app, tmp_path, BOB, 2)
    # A second call of Alice's, dialled the international way, and a refused one with hyphens,
    # whose CDR holds the extension the dialplan went to ("invalid").
    GateDecision.create(call_id="c44", agent="2001", dialled="00442079460018", number="00442079460018", purpose="service",
                        decision="allow", entry="stasis", decided_at=NOW.replace(tzinfo=None))
    audio = alice.audio.with_name("c44.wav")
    audio.write_bytes(b"RIFF 0044")
    Recording.create(call_id="c44", agent="2001", number="00442079460018", purpose="service", file=str(audio), state="complete",
                     started_at=NOW.replace(tzinfo=None))
    GateDecision.create(call_id="cx", agent="2001", dialled="invalid:02079460018", number="invalid:02079460018",
                        purpose="service", decision="block", reasons="invalid_number", entry="stasis",
                        decided_at=NOW.replace(tzinfo=None))
    start = int(NOW.timestamp())
    CdrRow.create(account="default", start_utc=start, record_key=44, end_utc=start, duration=0, billsec=0, number="invalid",
                  number_class="internal", uniqueid="cx", call_id="cx", line_no=3,
                  cdr_line='"","2001","0207-946-0018","livecall-gate","","PJSIP/2001","","Playback","livecall/reason-invalid_number"')
    assert set(subject_calls(app.database(), ALICE)) == {alice.call_id, "c44", "cx"}
    data = gather(app.database(), ALICE, lambda call_id, purpose: ("contract", "test"))
    assert sorted(r["call_id"] for r in data.recordings) == sorted([alice.call_id, "c44"])

    eraser(app, tmp_path).run(ALICE, NOW)

    assert not audio.exists() and not alice.audio.exists()
    assert everything_mentioning(app, ALICE) == []
    cells = [str(v) for table in app.database().get_tables()
             for row in app.database().execute_sql(f'SELECT * FROM "{table}"').fetchall() for v in row]
    assert not [c for c in cells if spread(NSN).search(c)]
    assert not [c for c in cells if re.search(r"[0-9+]erased:", c)]  # no "00erased:", "9erased:"
    kept = {r.call_id: (r.dialled, r.number) for r in GateDecision.select()}
    pseudonym = kept["c44"][1]
    assert pseudonym.startswith("erased:") and kept["c44"] == (pseudonym, pseudonym)
    assert kept["cx"] == ("invalid:" + pseudonym, pseudonym)
    assert len(everything_mentioning(app, BOB)) >= 10
