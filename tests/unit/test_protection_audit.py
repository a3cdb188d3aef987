"""The audit trail on a real SQLite database: appends chain, and `audit verify` catches an entry
edited, removed (in the middle or at the end), reordered or falsely marked redacted, by editing
the rows directly as someone with database access would."""

from __future__ import annotations

import datetime as dt
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
