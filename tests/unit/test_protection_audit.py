"""The audit trail on a real SQLite database: appends chain, and `audit verify` catches an entry
edited, removed (in the middle or at the end), reordered or falsely marked redacted, by editing
the rows directly as someone with database access would."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from livecall_ari.app import App
from livecall_ari.protection import audit
from livecall_ari.protection.core import GENESIS
from tests.unit.protection_data import NOW, livecall, make_app


@pytest.fixture
def app(tmp_path: Path) -> App:
    application = make_app(tmp_path)
    for i in range(5):
        audit.append("sue", "recording.play", audit.subject_for_recording(i), {"n": i}, at=NOW + dt.timedelta(minutes=i))
    yield application  # type: ignore[misc]
    application.close()


def tamper(tmp_path: Path, *statements: str) -> None:
    conn = sqlite3.connect(tmp_path / "livecall.db")
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()


def verify(tmp_path: Path) -> tuple[int, str]:
    result = livecall(tmp_path, "audit", "verify")
    return result.returncode, result.stdout + result.stderr


def test_an_untouched_trail_verifies(app: App, tmp_path: Path) -> None:
    entries = audit.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS and all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:]))
    code, output = verify(tmp_path)
    assert code == 0 and "5 entries verified" in output


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", "entry 3: time, actor, action or sequence changed"),
    ("UPDATE audit_log SET subject = 'recording:99' WHERE seq = 2", "entry 2: subject or details changed"),
    ("UPDATE audit_log SET details = '{\"n\":7}' WHERE seq = 4", "entry 4: subject or details changed"),
    ("UPDATE audit_log SET at = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 1", "entry 1: time, actor, action or sequence changed"),
])
def test_an_edited_entry_is_caught(app: App, tmp_path: Path, sql: str, expected: str) -> None:
    tamper(tmp_path, sql)
    code, output = verify(tmp_path)
    assert code == 1 and expected in output and "tampered with" in output


def test_a_removed_entry_is_caught(app: App, tmp_path: Path) -> None:
    tamper(tmp_path, "DELETE FROM audit_log WHERE seq = 3")
    code, output = verify(tmp_path)
    assert code == 1 and "entry 3 missing" in output and "entry 4: does not follow" in output


def test_a_removed_last_entry_is_caught_by_the_head(app: App, tmp_path: Path) -> None:
    tamper(tmp_path, "DELETE FROM audit_log WHERE seq = 5")
    code, output = verify(tmp_path)
    assert code == 1 and "entries removed at the end" in output


def test_a_removed_entry_with_the_rest_renumbered_is_caught(app: App, tmp_path: Path) -> None:
    tamper(tmp_path, "DELETE FROM audit_log WHERE seq = 3", "UPDATE audit_log SET seq = seq - 1 WHERE seq > 3",
           "UPDATE audit_head SET seq = 4")
    code, output = verify(tmp_path)
    assert code == 1 and "entry 3: does not follow" in output


def test_reordered_entries_are_caught(app: App, tmp_path: Path) -> None:
    tamper(tmp_path, "UPDATE audit_log SET seq = 100 WHERE seq = 2", "UPDATE audit_log SET seq = 2 WHERE seq = 3",
           "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    code, output = verify(tmp_path)
    assert code == 1 and "entry 2: does not follow" in output and "entry 2: time, actor, action or sequence changed" in output


def test_an_entry_falsely_marked_redacted_is_caught(app: App, tmp_path: Path) -> None:
    tamper(tmp_path, "UPDATE audit_log SET redacted = 1, subject = '[erased]', salt = '' WHERE seq = 2")
    code, output = verify(tmp_path)
    assert code == 1 and "entry 2: marked redacted but no erasure entry redacted it" in output


def test_redaction_by_an_erasure_keeps_the_chain_valid(app: App) -> None:
    audit.append("2001", "objection.add", audit.subject_for_number("+442079460018"), {"reason": "call 020 7946 0018"})
    seqs = audit.redact_mentions(["+442079460018", "020 7946 0018"], "dpo", {"erasure_job": 1})
    assert seqs == [6]
    entries = audit.entries()
    assert entries[5].redacted and entries[5].subject == "[erased]" and entries[5].salt == ""
    assert entries[6].action == "erasure.redact"
    assert audit.verify().ok


def test_list_changes_from_screening_are_audited(app: App, tmp_path: Path) -> None:
    assert livecall(tmp_path, "objections", "add", "020 7946 0020", "--by", "sam", "--reason", "call 17").returncode == 0
    assert livecall(tmp_path, "objections", "remove", "02079460020", "--by", "sam").returncode == 0
    assert livecall(tmp_path, "consent", "add", "02079460021", "--evidence", "form 9", "--by", "sam").returncode == 0
    assert livecall(tmp_path, "consent", "withdraw", "02079460021", "--by", "sam").returncode == 0
    (tmp_path / "tps.txt").write_bytes(b"02079460030\r\n")
    assert livecall(tmp_path, "lists", "import", "tps", str(tmp_path / "tps.txt")).returncode == 0
    entries = audit.entries(after=5)
    assert [(e.actor, e.action, e.subject) for e in entries[:4]] == [
        ("sam", "objection.add", "number:+442079460020"), ("sam", "objection.remove", "number:+442079460020"),
        ("sam", "consent.add", "number:+442079460021"), ("sam", "consent.withdraw", "number:+442079460021"),
    ]
    assert entries[4].action == "list.import" and entries[4].subject == "list:tps" and '"count":1' in entries[4].details_json
    assert audit.verify().ok


# Anchors outside the database (issue 16): the key file and the anchor file beside the settings
# and in the data folder; the attacks below write the database (and the anchor file) directly.

def _tampering_head(tmp_path: Path) -> tuple[int, str, str]:
    conn = sqlite3.connect(tmp_path / "livecall.db")
    row = conn.execute("SELECT seq, entry_hash, mac FROM audit_head WHERE id = 1").fetchone()
    conn.close()
    return int(row[0]), str(row[1]), str(row[2])


def tamper_cut_tail_to(tmp_path: Path, seq: int, head: tuple[int, str, str] | None = None) -> None:
    """Delete the entries after ``seq`` and move the head back: to ``head`` (a head row saved
    earlier, MAC and all) or, without one, to entry ``seq``'s hash with the MAC left as it was."""
    conn = sqlite3.connect(tmp_path / "livecall.db")
    with conn:
        digest = conn.execute("SELECT entry_hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (seq,))
        if head is None:
            conn.execute("UPDATE audit_head SET seq = ?, entry_hash = ? WHERE id = 1", (seq, digest))
        else:
            conn.execute("UPDATE audit_head SET seq = ?, entry_hash = ?, mac = ? WHERE id = 1", head)
    conn.close()


def test_every_entry_and_the_head_carry_a_mac_and_anchors_are_checked(app: App, tmp_path: Path) -> None:
    assert all(len(e.mac) == 64 for e in audit.entries())
    assert (tmp_path / "audit.key").stat().st_mode & 0o077 == 0
    assert livecall(tmp_path, "audit", "anchor").returncode == 0
    anchors = (tmp_path / "audit-anchors.jsonl").read_text().splitlines()
    assert [json.loads(a)["kind"] for a in anchors] == ["keyed", "anchor"] and json.loads(anchors[1])["seq"] == 5
    assert (tmp_path / "audit-anchors.jsonl").stat().st_mode & 0o077 == 0
    code, output = verify(tmp_path)
    assert code == 0 and "5 entries verified" in output and "2 anchors checked" in output


def test_a_cut_tail_with_the_head_moved_back_is_caught_by_the_head_mac(app: App, tmp_path: Path) -> None:
    # Database write access, no key: the head can be moved back but not re-sealed.
    tamper_cut_tail_to(tmp_path, 3)
    code, output = verify(tmp_path)
    assert code == 1 and "the trail's head (entry 3) has no valid MAC" in output


def test_a_cut_tail_with_a_saved_head_replayed_is_caught_by_the_anchor(tmp_path: Path) -> None:
    # Database write access and a copy of the head row taken earlier: only the anchor, written
    # after the entries that were cut, shows it.
    app = make_app(tmp_path)
    for i in range(3):
        audit.append("sue", "recording.play", audit.subject_for_recording(i), {"n": i})
    saved = _tampering_head(tmp_path)
    for i in range(3, 5):
        audit.append("sue", "recording.play", audit.subject_for_recording(i), {"n": i})
    assert audit.anchor() is not None
    app.close()

    tamper_cut_tail_to(tmp_path, 3, saved)
    code, output = verify(tmp_path)
    assert code == 1 and "entries removed at the end: the anchor of" in output and "counted 5 entries, the trail has 3" in output


def test_what_a_database_writer_can_still_hide_a_cut_after_the_newest_anchor(tmp_path: Path) -> None:
    # The stated limit (docs/data-protection.md): entries written after the newest anchor can be
    # cut by someone who saved the head row from before them. serve anchors every hour.
    app = make_app(tmp_path)
    for i in range(3):
        audit.append("sue", "recording.play", audit.subject_for_recording(i), {"n": i})
    assert audit.anchor() is not None
    saved = _tampering_head(tmp_path)
    audit.append("sue", "recording.play", audit.subject_for_recording(9), {"n": 9})
    app.close()

    tamper_cut_tail_to(tmp_path, 3, saved)
    code, _ = verify(tmp_path)
    assert code == 0


def test_a_rewritten_trail_with_every_hash_recomputed_fails_its_macs(app: App, tmp_path: Path) -> None:
    from livecall_ari.protection.core import content_hash, entry_hash

    # tampering through sqlite3 on the database file, as the tests above (SQLite only)
    conn = sqlite3.connect(tmp_path / "livecall.db")
    rows = conn.execute("SELECT seq, at, actor, action, subject, details, salt FROM audit_log ORDER BY seq").fetchall()
    prev = GENESIS
    with conn:
        for seq, at, actor, action, subject, details, salt in rows:
            actor = "mallory" if seq == 2 else actor
            content = content_hash(salt, subject, details)
            digest = entry_hash(seq, at, actor, action, content, prev)
            conn.execute("UPDATE audit_log SET actor = ?, content_hash = ?, prev_hash = ?, entry_hash = ? WHERE seq = ?",
                         (actor, content, prev, digest, seq))
            prev = digest
        conn.execute("UPDATE audit_head SET entry_hash = ? WHERE id = 1", (prev,))
    conn.close()
    code, output = verify(tmp_path)
    assert code == 1 and "entry 2: its MAC does not match" in output and "the trail's head (entry 5) has no valid MAC" in output


def test_an_edited_or_removed_anchor_file_is_reported(app: App, tmp_path: Path) -> None:
    # File access only: the anchors cannot be forged; removing them is itself reported.
    assert livecall(tmp_path, "audit", "anchor").returncode == 0
    anchors = tmp_path / "audit-anchors.jsonl"
    lines = anchors.read_text().splitlines()
    forged = json.loads(lines[1]) | {"seq": 2}
    anchors.write_text("\n".join([lines[0], json.dumps(forged)]) + "\n")
    code, output = verify(tmp_path)
    assert code == 1 and "audit-anchors.jsonl:2: the anchor's MAC does not match" in output

    anchors.unlink()
    code, output = verify(tmp_path)
    assert code == 1 and "no record of when the audit key was first used" in output
