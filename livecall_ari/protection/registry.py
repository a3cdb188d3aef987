"""Where personal data about a telephone number lives: a small registry of tables, plus any
table found to have a ``number`` column, plus any table linked to the number's calls by
``call_id`` (monitoring sessions, say). Subject access and erasure both walk it, so a
capability that adds a table with a ``number`` column is covered without touching this file;
one that stores numbers another way adds a :class:`PersonalTable` entry here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

import peewee
import phonenumbers
from phonenumbers import PhoneNumberFormat

# Tables that describe the processing itself, never the person's data, or that erasure
# treats its own way (the audit trail is redacted, never rewritten).
OWN_TABLES = frozenset({
    "audit_log", "audit_head", "schema_migrations", "protection_call_bases", "protection_basis_changes",
    "protection_suppressions", "protection_erasure_jobs", "protection_retention_runs", "screening_state",
})


@dataclass(frozen=True)
class PersonalTable:
    table: str
    number_column: str
    stores: str  # "e164" (text) or "key" (integer of the E.164 digits)
    title: str
    on_erase: str  # "delete", "pseudonymise" or "recordings" (files first, then rows)


BUILTIN = (
    PersonalTable("gate_decisions", "number", "e164", "Calls and the gate's decisions", "pseudonymise"),
    PersonalTable("recordings", "number", "e164", "Recordings", "recordings"),
    PersonalTable("recording_notices", "number", "e164", "Recording notices played", "delete"),
    PersonalTable("screening_objections", "number", "key", "Objections to marketing calls", "delete"),
    PersonalTable("screening_consents", "number", "key", "Consents to calls", "delete"),
    PersonalTable("cdr_records", "number", "e164", "Call detail records (charges)", "pseudonymise"),
    PersonalTable("protection_dsar_requests", "number", "e164", "Subject access requests", "pseudonymise"),
)


def number_forms(e164: str) -> tuple[str, ...]:
    """Every way the number is likely written: E.164, digits, international (00), national and
    spaced forms. Columns of numbers hold E.164 (storage/numbers.py); the other forms find
    what a table discovered by its ``number`` column keeps as dialled."""
    forms = [e164, e164.lstrip("+"), "00" + e164.lstrip("+")]
    try:
        parsed = phonenumbers.parse(e164, None)
        national = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
        forms += [national.replace(" ", ""), national, phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)]
    except phonenumbers.NumberParseException:
        pass
    return tuple(dict.fromkeys(f for f in forms if f))


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def columns(db: peewee.Database, table: str) -> list[peewee.ColumnMetadata]:
    return list(db.get_columns(table))


def is_text(column: peewee.ColumnMetadata) -> bool:
    kind = (column.data_type or "").upper()
    return not kind or any(word in kind for word in ("CHAR", "TEXT", "CLOB"))


def personal_tables(db: peewee.Database) -> list[PersonalTable]:
    """The registry's tables that exist, then every other table with a ``number`` column."""
    existing = set(db.get_tables())
    found = [t for t in BUILTIN if t.table in existing]
    known = {t.table for t in found} | OWN_TABLES
    for table in sorted(existing - known):
        for column in columns(db, table):
            if column.name == "number":
                text = is_text(column)
                found.append(PersonalTable(table, "number", "e164" if text else "key", table.replace("_", " "),
                                           "pseudonymise" if text else "delete"))
    return found


def linked_tables(db: peewee.Database) -> list[str]:
    """Tables without a number column that point at calls (``call_id``): found through the calls."""
    personal = {t.table for t in personal_tables(db)} | OWN_TABLES
    return [t for t in sorted(set(db.get_tables()) - personal) if any(c.name == "call_id" for c in columns(db, t))]


def recording_linked_tables(db: peewee.Database) -> list[str]:
    """Tables that point at recordings by id (an integer ``recording`` column) and are found
    neither by number nor by call: coaching comments and scorecards, say. What they hold is
    about the recording's call, so it goes with the recording."""
    found = {t.table for t in personal_tables(db)} | OWN_TABLES | set(linked_tables(db))
    return [
        t for t in sorted(set(db.get_tables()) - found)
        if any(c.name == "recording" and not is_text(c) for c in columns(db, t))
    ]  # fmt: skip


def delete_recording_linked(db: peewee.Database, recording_ids: list[int]) -> dict[str, int]:
    """Delete what :func:`recording_linked_tables` hold about these recordings: rows deleted
    per table (only tables that had some)."""
    deleted: dict[str, int] = {}
    if not recording_ids:
        return deleted
    marks = ", ".join([db.param] * len(recording_ids))
    for table in recording_linked_tables(db):
        cursor = execute(db, f"DELETE FROM {q(table)} WHERE {q('recording')} IN ({marks})", recording_ids)
        if cursor.rowcount:
            deleted[table] = cursor.rowcount
    return deleted


def match(table: PersonalTable, e164: str, param: str) -> tuple[str, list[Any]]:
    """SQL condition and parameters selecting ``table``'s rows about the number."""
    if table.stores == "key":
        return f"{q(table.number_column)} = {param}", [int(e164.lstrip("+"))]
    forms = number_forms(e164)
    return f"{q(table.number_column)} IN ({', '.join([param] * len(forms))})", list(forms)


def plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def select_rows(db: peewee.Database, table: str, where: str, params: Iterable[Any]) -> list[dict[str, Any]]:
    cursor = execute(db, f"SELECT * FROM {q(table)} WHERE {where}", params)
    names = [d[0] for d in cursor.description]
    return [{n: plain(v) for n, v in zip(names, row)} for row in cursor.fetchall()]


def owned(db: peewee.Database, table: str, organisation: str | None) -> tuple[str, list[Any]]:
    """SQL condition on ``table`` leaving out the rows of another organisation (services of
    several organisations may share a database; each is a controller of its own data, so a
    subject access export or an erasure for one never reaches the other's rows):

    - a table with an ``organisation`` column: this organisation's rows and those from before
      the column (``""``), as the portal shows them;
    - else a table with a ``call_id``: every row but those of another organisation's calls (its
      gate decision says whose): a row whose call nothing names (a CDR of a call that never
      passed the gate) stays in, as nothing says it is someone else's;
    - else a table with an integer ``recording`` (coaching comments, scorecards): every row but
      those about another organisation's recordings;
    - else every row.

    ``organisation`` None (or empty): every row, as before organisations shared databases."""
    if not organisation:
        return "1 = 1", []
    p = db.param
    found = {c.name: c for c in columns(db, table)}
    if "organisation" in found:
        return f"{q('organisation')} IN ({p}, {p})", [organisation, ""]
    tables = db.get_tables()
    if "call_id" in found and "gate_decisions" in tables:
        return (f"({q('call_id')} IS NULL OR {q('call_id')} NOT IN (SELECT {q('call_id')} FROM {q('gate_decisions')} "
                f"WHERE {q('call_id')} IS NOT NULL AND {q('organisation')} NOT IN ({p}, {p})))", [organisation, ""])
    recording = found.get("recording")
    if recording is not None and not is_text(recording) and "recordings" in tables and table != "recordings":
        # What is kept about a recording (coaching comments, scorecards) is its call's organisation's.
        return (f"({q('recording')} IS NULL OR {q('recording')} NOT IN (SELECT {q('id')} FROM {q('recordings')} "
                f"WHERE {q('organisation')} NOT IN ({p}, {p})))", [organisation, ""])
    return "1 = 1", []


def of_organisation(field: Any, organisation: str | None) -> Any:
    """:func:`owned` for a model with its own ``organisation`` column, as a peewee condition."""
    return field.in_([organisation, ""]) if organisation else peewee.SQL("1 = 1")


def subject_where(db: peewee.Database, table: PersonalTable, e164: str, organisation: str | None) -> tuple[str, list[Any]]:
    """``table``'s rows about the number that are ``organisation``'s (:func:`owned`)."""
    where, params = match(table, e164, db.param)
    mine, more = owned(db, table.table, organisation)
    return f"({where}) AND {mine}", [*params, *more]


def subject_calls(db: peewee.Database, e164: str, organisation: str | None = None) -> list[str]:
    """Call ids of the number's calls (``organisation``'s only, when given), leaving out any
    call id also used with another (valid) number."""
    param = db.param
    ids: set[str] = set()
    others: set[str] = set()
    for table in personal_tables(db):
        if not any(c.name == "call_id" for c in columns(db, table.table)):
            continue
        where, params = subject_where(db, table, e164, organisation)
        for row in select_rows(db, table.table, where, params):
            if row.get("call_id"):
                ids.add(str(row["call_id"]))
    for table in personal_tables(db):
        if not ids or not any(c.name == "call_id" for c in columns(db, table.table)):
            continue
        where, params = match(table, e164, param)
        marks = ", ".join([param] * len(ids))
        cursor = execute(
            db, f"SELECT DISTINCT call_id, {q(table.number_column)} FROM {q(table.table)} "
                f"WHERE call_id IN ({marks}) AND NOT ({where})", [*ids, *params]
        )
        # Only another valid number makes a call someone else's: a CDR of a refused call holds
        # its extension ("invalid"), a role-play call an agent's extension.
        others.update(str(r[0]) for r in cursor.fetchall() if is_number(r[1]))
    return sorted(ids - others)


def is_number(value: Any) -> bool:
    """Whether a number column's value is a telephone number (an integer key, or text that is
    a valid number), rather than an extension, a pseudonym or a refused dial string."""
    from livecall_ari.storage.numbers import stored_number

    return isinstance(value, int) or (isinstance(value, str) and stored_number(value).startswith("+"))


def pk(model: type[peewee.Model]) -> Any:
    """A model's primary key field (other capabilities' models leave ``id`` implicit)."""
    return model._meta.primary_key


def row_id(row: peewee.Model) -> int:
    return int(row.get_id())  # type: ignore[no-untyped-call]


def execute(db: peewee.Database, sql: str, params: Iterable[Any] = ()) -> Any:
    """Run one statement and return the cursor (peewee leaves ``execute_sql`` untyped)."""
    return db.execute_sql(sql, list(params))  # type: ignore[no-untyped-call]


# Columns of linked tables (monitoring sessions...) that may name an audio file of the call.
FILE_COLUMNS = ("recording", "file")


def linked_files(db: peewee.Database, call_ids: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, path) of the files named by rows linked to ``call_ids``: paths as Asterisk
    wrote them, which may lie in a chroot (``[asterisk] root``), so whether each exists is for the
    caller to find out through the recordings folder (recording.paths)."""
    found: list[tuple[str, str, str]] = []
    if not call_ids:
        return found
    marks = ", ".join([db.param] * len(call_ids))
    for table in linked_tables(db):
        names = {c.name for c in columns(db, table)}
        for column in FILE_COLUMNS:
            if column not in names:
                continue
            for row in select_rows(db, table, f"{q('call_id')} IN ({marks})", call_ids):
                value = row.get(column)
                if isinstance(value, str) and value.startswith("/"):
                    found.append((table, column, value))
    return found
