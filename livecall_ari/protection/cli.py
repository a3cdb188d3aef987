"""``livecall dsar``, ``erase``, ``retention``, ``audit``, ``lawful-basis`` (and, from
cli_register.py, ``breach``, ``privacy-notice`` and ``encryption``)."""

from __future__ import annotations


import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from livecall_ari import config
from livecall_ari.objects.plugin import store_from_settings
from livecall_ari.recording.paths import RecordingsFolder
from livecall_ari.app import App
from livecall_ari.protection import audit
from livecall_ari.protection.core import LAWFUL_BASES, PolicyError, london_date
from livecall_ari.protection.crypto import KeyFileError, recording_key_path, recording_keys
from livecall_ari.protection.models import DsarRequest, LegalHoldRecord
from livecall_ari.protection.services import call_basis, now, number_key, set_call_basis, set_recording_basis, who
from livecall_ari.storage.times import from_db

# Test hook: erasure waits on stdin at this stage ("recordings:files-deleted", "rows:before"...).
PAUSE_VARIABLE = "LIVECALL_ERASURE_PAUSE_AT"
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_by = click.option("--by", default=None, help="Who is doing this (default: the login name).")


def e164_of(app: App, number: str) -> str:
    from livecall_ari.screening.numbers import NumberParser

    parsed = NumberParser(app.settings.gate.outside_line_prefix).parse(number)
    if parsed is None:
        raise click.BadParameter(f"{number!r} is not a valid telephone number", param_hint="NUMBER")
    return parsed.e164


def parse_time(text: str | None, what: str) -> dt.datetime:
    if not text:
        return now()
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO-8601 time (2025-03-03T10:00)", param_hint=what) from None
    from zoneinfo import ZoneInfo

    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo("Europe/London"))


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


# dsar ----------------------------------------------------------------------------------------


@click.group("dsar")
def dsar_group() -> None:
    """Subject access requests: log them, export what is held, see what is due."""


@dsar_group.command("log")
@click.argument("number")
@click.option("--received", default=None, help="When the request arrived (ISO-8601; default now).")
@_by
@click.pass_obj
def dsar_log(app: App, number: str, received: str | None, by: str | None) -> None:
    """Log a request for NUMBER's data, with its one-month deadline."""
    from livecall_ari.protection.dsar import log_request

    e164 = e164_of(app, number)
    app.database()
    row = log_request(app.settings, e164, parse_time(received, "--received"), by or who())
    click.echo(f"request {row.id}: {e164}, due {row.due_on}")


@dsar_group.command("export")
@click.argument("number")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The zip to write.")
@click.option("--request", "request_id", type=int, default=None, help="The logged request (default: the open one, or a new one).")
@_by
@click.pass_obj
def dsar_export(app: App, number: str, out: Path, request_id: int | None, by: str | None) -> None:
    """Export everything held about NUMBER into a zip (manifest.json, summary.html, data, audio)."""
    from livecall_ari.protection.dsar import export, gather, log_request

    e164 = e164_of(app, number)
    db = app.database()
    actor = by or who()
    if request_id is not None:
        request = DsarRequest.get_or_none(DsarRequest.id == request_id)
        if request is None or request.number != e164:
            raise click.ClickException(f"no request {request_id} for {e164} (see `livecall dsar list`)")
    else:
        request = (DsarRequest.select().where((DsarRequest.number == e164) & (DsarRequest.status == "open"))
                   .order_by(DsarRequest.id).first()) or log_request(app.settings, e164, now(), actor)
    try:
        # Sealed recordings open with the key file whenever there is one (encryption may have
        # been switched off since); without one, a sealed file is an error that names the file.
        keys = recording_keys(app.settings) if recording_key_path(app.settings).exists() else None
        data = gather(db, e164, lambda call_id, purpose: call_basis(app.settings, call_id, purpose),
                      app.settings.organisation.id)
        p = app.settings.protection
        contact = ", ".join(x for x in (p.dpo_name, p.dpo_email, p.dpo_phone) if x)
        manifest = export(data, out, request, keys, app.settings.organisation.name, contact, now(), actor,
                          folder=RecordingsFolder.from_settings(app.settings), objects=store_from_settings(app.settings))
    except KeyFileError as exc:
        raise _fail(exc) from None
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items() if v)
    click.echo(f"{out}: request {request.id} for {e164}: {counts or 'nothing held'}; {len(manifest['files'])} files")


@dsar_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include answered requests.")
@_json
@click.pass_obj
def dsar_list(app: App, show_all: bool, as_json: bool) -> None:
    """Requests with their deadline and status (overdue first)."""
    app.database()
    today = london_date(now())
    query = DsarRequest.select().order_by(DsarRequest.due_on, DsarRequest.id)
    items = []
    for r in query:
        due = dt.date.fromisoformat(str(r.due_on))
        status = str(r.status)
        if status == "open":
            status = "overdue" if due < today else f"open, {(due - today).days} days left"
        if not show_all and r.status != "open":
            continue
        received = from_db(r.received_at)
        items.append({"id": int(r.id), "number": r.number, "received": received.date().isoformat() if received else "",
                      "due_on": due.isoformat(), "status": status})
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        click.echo(f"{item['id']}\t{item['number']}\treceived {item['received']}\tdue {item['due_on']}\t{item['status']}")
    if not items:
        click.echo("no open requests", err=True)


# erase ---------------------------------------------------------------------------------------


@click.command("erase")
@click.argument("number")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_by
@click.pass_obj
def erase(app: App, number: str, yes: bool, by: str | None) -> None:
    """Erase NUMBER's recordings and personal data, keep it suppressed, write a certificate.

    Safe to run again: a run that was interrupted is finished, a finished one sweeps anything
    recorded since."""
    from livecall_ari.protection.erasure import Erasure, ErasureRefused
    from livecall_ari.screening.services import list_files

    e164 = e164_of(app, number)
    if not yes:
        click.confirm(f"Erase every recording and record of {e164}? This cannot be undone", abort=True)
    pause_at = os.environ.get(PAUSE_VARIABLE)

    def stage(step: str) -> None:
        if step == pause_at:
            click.echo(f"paused at {step}", err=True)
            sys.stdin.readline()

    try:
        key = number_key(app.settings)
        certificates = app.settings.data_path() / "erasure-certificates"
        runner = Erasure(app.database(), key, certificates, list_files(app).store, by or who(),
                         app.settings.organisation.name, stage, folder=RecordingsFolder.from_settings(app.settings),
                         objects=store_from_settings(app.settings), organisation_id=app.settings.organisation.id)
        result = runner.run(e164, now())
    except (ErasureRefused, config.ConfigError) as exc:
        raise _fail(exc) from None
    erased = result.certificate["erased"]
    summary = ", ".join(f"{k} {v}" for step in erased.values() for k, v in step.items() if v)
    click.echo(f"erasure {result.job}{' (resumed)' if result.resumed else ''}: {summary or 'nothing held'}")
    click.echo(f"certificate: {result.certificate_file}")


# retention -----------------------------------------------------------------------------------


@click.group("retention")
def retention_group() -> None:
    """Delete what the retention policy says is due; legal holds."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@_json
@_by
@click.pass_obj
def retention_run(app: App, dry_run: bool, as_json: bool, by: str | None) -> None:
    """Apply the retention policy now."""
    from livecall_ari.protection.retention import run_retention

    try:
        result = run_retention(app, now(), dry_run=dry_run, actor=by or who())
    except config.ConfigError as exc:
        raise _fail(exc) from None
    verb = "would delete" if dry_run else "deleted"
    items: list[dict[str, Any]] = [{"kind": v.record.kind, "id": v.record.id, "call_id": v.record.call_id, "due": v.due,
              "keep_until": str(v.keep_until), "why": v.why} for v in result.verdicts if v.due or v.hold is not None]
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "deleted": result.deleted_counts(), "held": result.held, "items": items}, indent=2))
        return
    for item in items:
        what = verb if item["due"] else "kept"
        click.echo(f"{what} {item['kind'][:-1]} {item['id']} (call {item['call_id']}): {item['why']}")
    counts = result.deleted_counts()
    click.echo(f"{verb} {counts['recordings']} recordings and {counts['calls']} call records; {result.held} kept under legal hold")


@retention_group.group("hold")
def hold_group() -> None:
    """Legal holds: what they cover is never deleted by retention nor erased."""


@hold_group.command("add")
@click.argument("kind", type=click.Choice(["number", "call", "recording"]))
@click.argument("target")
@click.option("--reason", required=True, help="The claim, request or investigation.")
@_by
@click.pass_obj
def hold_add(app: App, kind: str, target: str, reason: str, by: str | None) -> None:
    """Place a hold on a NUMBER, a CALL id or a RECORDING id."""
    from livecall_ari.protection.retention import add_hold

    app.database()
    if kind == "number":
        target = e164_of(app, target)
    try:
        row = add_hold(kind, target, reason, by or who(), now(), app.settings.organisation.id)
    except ValueError as exc:
        raise _fail(exc) from None
    click.echo(f"hold {row.id}: {kind} {target}: {reason}")


@hold_group.command("remove")
@click.argument("hold_id", type=int)
@_by
@click.pass_obj
def hold_remove(app: App, hold_id: int, by: str | None) -> None:
    """Release hold HOLD_ID (it stays in the list, marked released)."""
    from livecall_ari.protection.retention import release_hold

    app.database()
    try:
        row = release_hold(hold_id, by or who(), now())
    except ValueError as exc:
        raise _fail(exc) from None
    click.echo(f"hold {hold_id} released: {row.kind} {row.target}")


@hold_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include released holds.")
@click.pass_obj
def hold_list(app: App, show_all: bool) -> None:
    """Holds in force (or all)."""
    app.database()
    query = LegalHoldRecord.select().order_by(LegalHoldRecord.id)
    if not show_all:
        query = query.where(LegalHoldRecord.released_at.is_null())
    rows = list(query)
    for r in rows:
        released = f" (released {r.released_at:%Y-%m-%d})" if r.released_at else ""
        click.echo(f"{r.id}\t{r.kind}\t{r.target}\t{r.placed_by}\t{r.reason}{released}")
    if not rows:
        click.echo("no legal holds", err=True)


# audit ---------------------------------------------------------------------------------------


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail."""


@audit_group.command("verify")
@click.pass_obj
def audit_verify(app: App) -> None:
    """Check every entry's hash, link and MAC, and the newest anchor; exit 1 on any sign of tampering."""
    app.database()
    report = audit.verify()
    for problem in report.problems:
        click.echo(f"audit: {problem}", err=True)
    if not report.ok:
        raise click.ClickException(f"the audit trail has been tampered with ({len(report.problems)} problems)")
    click.echo(f"audit: {report.entries} entries verified; head {report.head_seq} {report.head_hash}; "
               f"{report.anchors} anchors checked")


@audit_group.command("anchor")
@click.pass_obj
def audit_anchor(app: App) -> None:
    """Append the trail's head to the anchor file now (serve does it every [protection]
    audit_anchor_minutes); copy the line printed somewhere off this machine for the strongest anchor."""
    app.database()
    made = audit.anchor()
    if made is None:
        raise click.ClickException("the audit trail has no key (see the warning above): nothing anchored")
    click.echo(made.line())


@audit_group.command("show")
@click.option("--subject", default=None, help="Only entries about this subject (recording:12, call:..., number:+44...).")
@click.option("--limit", type=int, default=50, show_default=True)
@_json
@click.pass_obj
def audit_show(app: App, subject: str | None, limit: int, as_json: bool) -> None:
    """The newest entries."""
    app.database()
    found = audit.entries_about([subject], []) if subject else audit.entries()
    items = [audit.as_dict(e) for e in found[-limit:]]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for i in items:
        click.echo(f"{i['seq']}\t{i['at'][:19]}\t{i['actor']}\t{i['action']}\t{i['subject']}\t{json.dumps(i['details'])}")


# lawful basis --------------------------------------------------------------------------------


@click.group("lawful-basis")
def basis_group() -> None:
    """The lawful basis of a call or a recording."""


@basis_group.command("set")
@click.argument("args", nargs=-1, metavar="[CALL_ID] BASIS")
@click.option("--recording", "recording_id", type=int, default=None, help="A recording id instead of a call id.")
@click.option("--reason", required=True, help="Why the basis changes (kept with the change).")
@_by
@click.pass_obj
def basis_set(app: App, args: tuple[str, ...], recording_id: int | None, reason: str, by: str | None) -> None:
    """Change the lawful basis of call CALL_ID (or of --recording ID) to BASIS, with a reason.

    BASIS is one of consent, contract, legal_obligation, vital_interests, public_task,
    legitimate_interests."""
    from livecall_ari.gate.models import GateDecision

    wanted = 1 if recording_id is not None else 2
    if len(args) != wanted:
        raise click.UsageError("give CALL_ID BASIS, or --recording ID BASIS")
    target, basis = (None, args[0]) if recording_id is not None else args
    if basis not in LAWFUL_BASES:
        raise click.BadParameter(f"{basis!r} is not a lawful basis (use one of: {', '.join(LAWFUL_BASES)})", param_hint="BASIS")
    app.database()
    try:
        if recording_id is not None:
            old = set_recording_basis(recording_id, basis, reason, by or who(), now())
            click.echo(f"recording {recording_id}: {old} -> {basis}")
            return
        assert target is not None
        decision = GateDecision.select().where(GateDecision.call_id == target).first()
        if decision is None:
            raise click.ClickException(f"no call {target!r} (see `livecall calls`)")
        old = set_call_basis(app.settings, target, str(decision.purpose), basis, reason, by or who(), now())
    except (PolicyError, config.ConfigError) as exc:
        raise _fail(exc) from None
    click.echo(f"call {target}: {old} -> {basis}")


@basis_group.command("show")
@click.argument("call_id")
@click.pass_obj
def basis_show(app: App, call_id: str) -> None:
    """The lawful basis of CALL_ID and of its recordings."""
    from livecall_ari.gate.models import GateDecision
    from livecall_ari.protection.registry import row_id
    from livecall_ari.recording.models import Recording

    app.database()
    decision = GateDecision.select().where(GateDecision.call_id == call_id).first()
    if decision is None:
        raise click.ClickException(f"no call {call_id!r}")
    basis, source = call_basis(app.settings, call_id, str(decision.purpose))
    click.echo(f"call {call_id}: {basis} ({source})")
    for r in Recording.select().where(Recording.call_id == call_id):
        reason = f" ({r.lawful_basis_reason})" if r.lawful_basis_reason else ""
        click.echo(f"recording {row_id(r)}: {r.lawful_basis}{reason}")


def _more() -> list[Any]:
    from livecall_ari.protection.cli_register import commands as more

    return more


commands: list[click.Command] = [dsar_group, erase, retention_group, audit_group, basis_group, *_more()]
