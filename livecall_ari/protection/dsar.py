"""Subject access: everything held about one telephone number, in one zip.

The zip holds ``manifest.json`` (the request, every file with its SHA-256 and record count),
``summary.html`` (the same, readable), ``data/<table>.json`` for each table holding the number
(registry.py: calls and decisions, recordings, notices, objections, consents, charges, and any
table with a ``number`` column), ``data/linked/<table>.json`` for tables tied to the number's
calls (monitoring sessions), ``recordings/`` with the audio (decrypted when sealed), and
``access-log.json``: the audit entries about those recordings, calls and the number. Rows are
selected by the number (or the number's own call ids, never one shared with another number),
so nothing about anyone else goes in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import peewee

from livecall_ari import config
from livecall_ari.protection import audit
from livecall_ari.protection.core import BASIS_TITLES, dsar_deadline
from livecall_ari.protection.crypto import KeyRing, plaintext_chunks
from livecall_ari.protection.models import DsarRequest
from livecall_ari.protection.registry import (
    linked_files, linked_tables, number_forms, personal_tables, q, recording_linked_tables, select_rows,
    subject_calls, subject_where,
)
from livecall_ari.objects.services import fetch_to, object_of
from livecall_ari.objects.store import Store, StoreError
from livecall_ari.recording.paths import RecordingsFolder

UTC = dt.timezone.utc


@dataclass
class SubjectData:
    e164: str
    tables: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)
    linked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    linked_by: dict[str, str] = field(default_factory=dict)  # table -> column, when not call_id
    call_ids: list[str] = field(default_factory=list)
    access_log: list[dict[str, Any]] = field(default_factory=list)
    linked_audio: list[str] = field(default_factory=list)  # e.g. monitoring recordings of the calls

    @property
    def recordings(self) -> list[dict[str, Any]]:
        return self.tables.get("recordings", ("", []))[1]


def gather(db: peewee.Database, e164: str, call_basis: Callable[[str, str], tuple[str, str]],
           organisation: str | None = None) -> SubjectData:
    """Every row about ``e164``; ``call_basis(call_id, purpose)`` adds each call's lawful basis.
    With ``organisation`` (its ``[organisation] id``), only what is that organisation's: another
    organisation sharing the database is another controller, whose rows are not this one's to
    disclose (registry.owned)."""
    data = SubjectData(e164)
    for table in personal_tables(db):
        where, params = subject_where(db, table, e164, organisation)
        rows = select_rows(db, table.table, where, params)
        if table.table == "gate_decisions":
            for row in rows:
                row["lawful_basis"], row["lawful_basis_source"] = call_basis(str(row["call_id"]), str(row["purpose"]))
        data.tables[table.table] = (table.title, rows)
    data.call_ids = subject_calls(db, e164, organisation)
    if data.call_ids:
        marks = ", ".join([db.param] * len(data.call_ids))
        for name in linked_tables(db):
            linked = select_rows(db, name, f"{q('call_id')} IN ({marks})", data.call_ids)
            if linked:
                data.linked[name] = linked
    recording_ids = [r["id"] for r in data.recordings]
    if recording_ids:
        marks = ", ".join([db.param] * len(recording_ids))
        for name in recording_linked_tables(db):
            linked = select_rows(db, name, f"{q('recording')} IN ({marks})", recording_ids)
            if linked:
                data.linked[name] = linked
                data.linked_by[name] = "recording"
    subjects = [audit.subject_for_number(f) for f in number_forms(e164)]
    subjects += [audit.subject_for_recording(r["id"]) for r in data.recordings]
    subjects += [audit.subject_for_call(c) for c in data.call_ids]
    texts = [json.dumps(f) for f in number_forms(e164)] + [f'"call_id":{json.dumps(c)}' for c in data.call_ids]
    data.access_log = [audit.as_dict(e) for e in audit.entries_about(subjects, texts, organisation)]
    data.linked_audio = [path for _table, _column, path in linked_files(db, data.call_ids)]
    return data


def log_request(settings: config.Settings, e164: str, received_at: dt.datetime, by: str) -> DsarRequest:
    """Record a request and its deadline: one calendar month, past weekends and bank holidays."""
    from livecall_ari.screening.hours import BankHolidays

    holidays = BankHolidays(settings.screening.nation)
    due = dsar_deadline(received_at, lambda d: holidays.name(d) is not None)
    row: DsarRequest = DsarRequest.create(
        number=e164, received_at=received_at.astimezone(UTC).replace(tzinfo=None), due_on=due, logged_by=by,
        organisation=settings.organisation.id,
    )
    audit.append(by, "dsar.log", audit.subject_for_number(e164), {"request": row.id, "due_on": due.isoformat()})
    return row


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


def export(
    data: SubjectData, out: Path, request: DsarRequest, keys: KeyRing | None, organisation: str,
    contact: str, now: dt.datetime, actor: str, *, folder: RecordingsFolder, objects: Store | None = None,
) -> dict[str, Any]:
    """Write the zip (atomically: a temporary file renamed) and return its manifest. Audio is
    read only from inside the recordings ``folder``: a path leading outside it is refused (an
    ERROR in the log) and the recording is listed as without audio."""
    files: list[dict[str, Any]] = []
    from livecall_ari.storage.private import private_dir, private_file

    tmp = out.with_name(out.name + ".part")
    private_dir(out.parent)
    # It holds the person's decrypted recordings: private from the first byte.
    with zipfile.ZipFile(private_file(tmp), "w", zipfile.ZIP_DEFLATED) as zf:

        def put(name: str, payload: bytes, records: int | None = None) -> None:
            zf.writestr(name, payload)
            files.append({"path": name, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(), "records": records})

        for table, (title, rows) in data.tables.items():
            put(f"data/{table}.json", _json({"table": table, "title": title, "rows": rows}), len(rows))
        for table, rows in data.linked.items():
            put(f"data/linked/{table}.json", _json({"table": table, "linked_by": data.linked_by.get(table, "call_id"), "rows": rows}), len(rows))
        put("access-log.json", _json(data.access_log), len(data.access_log))
        missing = []
        audio = [(f"recordings/{rec['id']}-", rec) for rec in data.recordings]
        audio += [("recordings/linked/", {"id": path, "file": path}) for path in data.linked_audio]
        for prefix, rec in audio:
            # Audio uploaded to the object store (objects/) is read from there, whichever PBX recorded it.
            stored = object_of(int(rec["id"])) if prefix != "recordings/linked/" and rec.get("file") else None
            source: Path | None
            if stored is not None:
                if objects is None:
                    raise StoreError('recordings are in object storage but [storage] backend is not "s3"')
                source = fetch_to(objects, stored, private_file(out.with_name(f"{out.name}.audio")))
                label = PurePosixPath(str(rec["file"])).name
            else:
                confined = folder.locate(str(rec["file"]), f"export the audio of recording {rec['id']}") if rec.get("file") else None
                source = None if confined is None else confined.host
                label = "" if source is None else source.name
            if source is None or not source.exists():
                missing.append(rec["id"])
                continue
            name = f"{prefix}{label}"
            hasher, size = hashlib.sha256(), 0
            with zf.open(zipfile.ZipInfo(name, date_time=now.timetuple()[:6]), "w") as member:
                for block in plaintext_chunks(source, keys):
                    member.write(block)
                    hasher.update(block)
                    size += len(block)
            files.append({"path": name, "bytes": size, "sha256": hasher.hexdigest(), "records": None})
            if stored is not None:
                source.unlink()  # the sealed copy fetched from the store
        manifest = {
            "subject_access_export": data.e164,
            "organisation": organisation,
            "contact": contact,
            "request": {"id": int(request.id), "received_at": str(request.received_at), "due_on": str(request.due_on)},
            "generated_at": now.astimezone(UTC).isoformat(timespec="seconds"),
            "generated_by": actor,
            "calls": data.call_ids,
            "counts": {t: len(rows) for t, (_title, rows) in data.tables.items()}
            | {f"linked/{t}": len(rows) for t, rows in data.linked.items()} | {"access_log": len(data.access_log)},
            "recordings_without_audio": missing,
            "files": list(files),
        }
        zf.writestr("summary.html", summary_html(data, manifest))
        zf.writestr("manifest.json", _json(manifest))
    os.replace(tmp, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    with DsarRequest._meta.database.atomic():
        DsarRequest.update(status="exported", exported_at=now.astimezone(UTC).replace(tzinfo=None), export_file=str(out.resolve()),
                           export_sha256=digest).where(DsarRequest.id == request.id).execute()
        audit.append(actor, "dsar.export", audit.subject_for_number(data.e164),
                     {"request": int(request.id), "sha256": digest, "counts": manifest["counts"]}, at=now)
    return manifest


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>None held.</p>"
    names = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if row.get(n) is None else str(row.get(n)))}</td>" for n in names) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(data: SubjectData, manifest: dict[str, Any]) -> str:
    """A readable page: what is held, why (lawful basis), recordings, who accessed them."""
    e = html.escape
    sections = []
    for table, (title, rows) in data.tables.items():
        sections.append(f"<h2>{e(title)} ({len(rows)})</h2>{_table(rows)}")
    for table, rows in data.linked.items():
        sections.append(f"<h2>{e(table.replace('_', ' ').capitalize())}, linked to your calls ({len(rows)})</h2>{_table(rows)}")
    bases = sorted({str(r.get("lawful_basis")) for rows in [data.recordings, data.tables.get("gate_decisions", ("", []))[1]]
                    for r in rows if r.get("lawful_basis")})
    basis_text = "".join(f"<li>{e(BASIS_TITLES.get(b, b))}</li>" for b in bases) or "<li>none recorded</li>"
    access = [{k: v for k, v in entry.items() if k != "entry_hash"} for entry in data.access_log]
    files = "".join(f"<li>{e(f['path'])} ({f['bytes']} bytes, SHA-256 {e(f['sha256'])})</li>" for f in manifest["files"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your data held by {e(manifest['organisation'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:90%}}
td,th{{border:1px solid #999;padding:2px 6px;text-align:left}}</style></head><body>
<h1>Personal data held about {e(data.e164)}</h1>
<p>{e(manifest['organisation'])} prepared this copy on {e(manifest['generated_at'])} in answer to your subject access
request {manifest['request']['id']} (received {e(manifest['request']['received_at'])}, due {e(manifest['request']['due_on'])}).
Questions: {e(manifest['contact'] or 'write to us at the address on our website')}.</p>
<h2>Why we hold it</h2><ul>{basis_text}</ul>
{''.join(sections)}
<h2>Who listened to or downloaded your recordings, and other actions on your data ({len(access)})</h2>{_table(access)}
<h2>Files in this export</h2><ul>{files}</ul>
<p>You may ask us to correct or erase this data, object to its use, or complain to the Information
Commissioner's Office (ico.org.uk, 0303 123 1113).</p>
</body></html>
"""
