"""``livecall lists``, ``livecall objections``, ``livecall consent`` and ``livecall screen``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from livecall_ari import config
from livecall_ari.app import App
from livecall_ari.gate.core import PURPOSES, CallAttempt, decide, is_whole_number
from livecall_ari.screening.core import CONSENT, CONSENT_SCOPES, RELATIONSHIP
from livecall_ari.screening.lists import LIST_NAMES, ImportRefused, ImportReport
from livecall_ari.screening.numbers import NumberParser, compact
from livecall_ari.screening.core import ScreeningPolicy
from livecall_ari.screening.services import ScreeningDecider, build_decider, list_files, lists_directory, policy_from_settings
from livecall_ari.screening.store import ScreeningStore
from livecall_ari.storage.times import from_db

UTC = dt.timezone.utc
# Test hook: the import waits on stdin at this stage, so a test can kill it there.
PAUSE_VARIABLE = "LIVECALL_IMPORT_PAUSE_AT"


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _key(app: App, number: str) -> tuple[int, str]:
    parsed = NumberParser(app.settings.gate.outside_line_prefix).parse(number)
    if parsed is None:
        raise click.BadParameter(f"{number!r} is not a valid telephone number", param_hint="NUMBER")
    return parsed.key, parsed.e164


def _policy(app: App) -> ScreeningPolicy:
    try:
        return policy_from_settings(app.settings)
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _decider(app: App) -> ScreeningDecider:
    _policy(app)  # a bad setting is reported before the database is touched
    return build_decider(app)


def _store(app: App) -> ScreeningStore:
    """The store, announcing its writes to running deciders through the lists directory."""
    return list_files(app).store


def _iso(value: Any) -> str:
    if value is None:
        return ""
    at = from_db(value)
    return at.isoformat(timespec="seconds") if at else ""


_organisation = click.option("--organisation", default=None, help="Organisation id (default: [organisation] id).")
_by = click.option("--by", default=None, help="Who is recording this (default: the login name).")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


# lists ---------------------------------------------------------------------------------------


@click.group("lists")
def lists_group() -> None:
    """Import and inspect the TPS and CTPS lists."""


@lists_group.command("import")
@click.argument("name", type=click.Choice(LIST_NAMES))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--delta", is_flag=True, help="FILE is a change file (additions and deletions), not a full list.")
@click.option("--list-date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Snapshot date of the data (default: a date in the file name, else today).")
@click.option("--max-bad-lines", type=int, default=None, help="Refuse the file above this many bad lines.")
@click.option("--allow-shrink", is_flag=True,
              help="Import even if it removes more than [screening] max_shrink_percent of the list in force.")
@click.pass_obj
def import_list(app: App, name: str, file: Path, delta: bool, list_date: dt.datetime | None, max_bad_lines: int | None,
                allow_shrink: bool) -> None:
    """Import FILE as the NAME (tps or ctps) list, replacing it atomically."""
    files = list_files(app)
    if max_bad_lines is not None:
        files.max_bad_lines = max_bad_lines
    pause_at = os.environ.get(PAUSE_VARIABLE)
    size = file.stat().st_size
    bar = click.progressbar(length=max(size, 1), label=f"{name}: reading {file.name}", file=sys.stderr)
    reached = [0]

    def progress(done: int, _total: int) -> None:
        bar.update(done - reached[0])
        reached[0] = done

    def stage(step: str) -> None:
        if step == "parsed":
            bar.render_finish()
        if step == pause_at:
            click.echo(f"paused at {step}", err=True)
            sys.stdin.readline()

    # Data protection hook (issue 7): list imports go into the audit trail, in the transaction
    # that puts the version in force.
    from livecall_ari.protection import audit

    def audited(report: ImportReport) -> None:
        audit.append(_user(), "list.import", f"list:{name}", {
            "version": report.version, "file": str(file), "kind": report.kind, "count": report.count,
            "added": report.added, "removed": report.removed, "snapshot_date": report.snapshot_date.isoformat(),
        })

    try:
        report = files.import_file(
            name, file, delta=delta, list_date=list_date.date() if list_date else None, now=_now(), by=_user(),
            progress=progress, stage=stage, on_commit=audited, allow_shrink=allow_shrink,
        )
    except ImportRefused as refused:
        for bad in refused.bad:
            click.echo(bad.describe(str(file)), err=True)
        raise click.ClickException(str(refused)) from None
    for bad in report.bad:
        click.echo(bad.describe(str(file)), err=True)
    if report.bad_count > len(report.bad):
        click.echo(f"{file}: ... and {report.bad_count - len(report.bad)} more bad lines", err=True)
    click.echo(
        f"{name}: imported {file} ({report.kind}, {report.record_format}, {report.lines:,} lines, "
        f"{report.bad_count} bad) as version {report.version}: {report.count:,} numbers "
        f"(+{report.added:,} -{report.removed:,}), snapshot {report.snapshot_date}, {report.seconds:.1f} s"
    )


@lists_group.command("status")
@_json
@click.pass_obj
def list_status(app: App, as_json: bool) -> None:
    """Counts, snapshot dates, age and freshness of each list."""
    store = _store(app)
    policy = _policy(app)
    today = _now().astimezone(policy.hours.zone).date()
    current = store.current_versions()
    organisation = app.settings.organisation.id
    result: dict[str, Any] = {"lists": {}, "max_age_days": policy.max_list_age_days, "directory": str(lists_directory(app.settings))}
    for name in LIST_NAMES:
        row = current.get(name)
        if row is None:
            result["lists"][name] = {"verdict": "missing"}
            continue
        snapshot = dt.date.fromisoformat(str(row.snapshot_date))
        age = (today - snapshot).days
        result["lists"][name] = {
            "version": int(row.id), "count": int(row.count), "snapshot_date": snapshot.isoformat(),
            "age_days": age, "imported_at": _iso(row.imported_at), "kind": str(row.kind),
            "format": str(row.record_format), "file": str(row.file_name),
            "verdict": "fresh" if age <= policy.max_list_age_days else "stale",
        }
    result["objections"] = len(store.objections(organisation))
    result["consents_in_force"] = sum(1 for c in store.consents(organisation) if c.withdrawn_at is None)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for name, info in result["lists"].items():
        if info["verdict"] == "missing":
            click.echo(f"{name}: missing (never imported): marketing calls are blocked")
            continue
        click.echo(
            f"{name}: version {info['version']}, {info['count']:,} numbers, snapshot {info['snapshot_date']} "
            f"({info['age_days']} days old), imported {info['imported_at']}: {info['verdict']}"
        )
    click.echo(f"objections: {result['objections']}, consents in force: {result['consents_in_force']} ({organisation})")


# objections ----------------------------------------------------------------------------------


@click.group("objections")
def objections_group() -> None:
    """The organisation's own list of people who do not want its marketing calls."""


@objections_group.command("add")
@click.argument("number")
@click.option("--reason", default="", help="What the person said, and where (call id, letter...).")
@_organisation
@_by
@click.pass_obj
def objection_add(app: App, number: str, reason: str, organisation: str | None, by: str | None) -> None:
    """Put NUMBER on the objection list (it also withdraws any consent in force)."""
    key, e164 = _key(app, number)
    org = organisation or app.settings.organisation.id
    record = _store(app).add_objection(org, key, _now(), by or _user(), reason)
    click.echo(f"objection {record.id}: {e164} ({org}) recorded {record.recorded_at:%Y-%m-%d %H:%M} UTC by {record.recorded_by}")


@objections_group.command("remove")
@click.argument("number")
@click.option("--reason", default="", help="Why it is removed.")
@_organisation
@_by
@click.pass_obj
def objection_remove(app: App, number: str, reason: str, organisation: str | None, by: str | None) -> None:
    """Take NUMBER off the objection list (the record is kept, marked removed)."""
    key, e164 = _key(app, number)
    org = organisation or app.settings.organisation.id
    removed = _store(app).remove_objection(org, key, _now(), by or _user())
    if not removed:
        raise click.ClickException(f"{e164} is not on the objection list of {org}")
    click.echo(f"{e164}: removed from the objection list of {org}" + (f" ({reason})" if reason else ""))


@objections_group.command("list")
@click.argument("number", required=False)
@click.option("--all", "include_removed", is_flag=True, help="Include removed objections.")
@_organisation
@_json
@click.pass_obj
def objection_list(app: App, number: str | None, include_removed: bool, organisation: str | None, as_json: bool) -> None:
    """List objections (all, or NUMBER's)."""
    org = organisation or app.settings.organisation.id
    key = _key(app, number)[0] if number else None
    rows = _store(app).objections(org, key, include_removed)
    items = [
        {"id": r.id, "number": f"+{r.number}", "recorded_at": _iso(r.recorded_at), "recorded_by": r.recorded_by,
         "reason": r.reason, "removed_at": _iso(r.removed_at) or None}
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        removed = f" (removed {item['removed_at']})" if item["removed_at"] else ""
        click.echo(f"{item['id']}\t{item['number']}\t{item['recorded_at']}\t{item['recorded_by']}\t{item['reason']}{removed}")
    if not items:
        click.echo("no objections", err=True)


# consent -------------------------------------------------------------------------------------


@click.group("consent")
def consent_group() -> None:
    """Records of people who told the organisation they do not object to its calls."""


@consent_group.command("add")
@click.argument("number")
@click.option("--evidence", required=True, help="How consent was given (call id, form, recording...).")
@click.option("--scope", type=click.Choice(CONSENT_SCOPES), default=None,
              help="Which calls it covers (default marketing); claims-management calls need claims or all, "
                   "calls about pension schemes pensions or all.")
@click.option("--relationship", is_flag=True,
              help="Record an existing client relationship instead of a consent (pension calls only, PECR "
                   "reg 21B(3)): it lets pension calls through consent_required, and nothing else.")
@_organisation
@_by
@click.pass_obj
def consent_add(app: App, number: str, evidence: str, scope: str | None, relationship: bool, organisation: str | None,
                by: str | None) -> None:
    """Record that NUMBER's subscriber consents to this organisation's calls (or, with
    --relationship, is an existing client who might reasonably expect its pension calls)."""
    if relationship and scope not in (None, "pensions"):
        raise click.BadParameter(f"a relationship covers pension calls only, not {scope!r}", param_hint="--scope")
    scope = "pensions" if relationship else (scope or "marketing")
    key, e164 = _key(app, number)
    org = organisation or app.settings.organisation.id
    basis = RELATIONSHIP if relationship else CONSENT
    record = _store(app).add_consent(org, key, _now(), by or _user(), evidence, scope, basis)
    what = "client relationship" if relationship else "consent"
    click.echo(f"{what} {record.id}: {e164} ({org}, {scope}) recorded {record.given_at:%Y-%m-%d %H:%M} UTC by {record.recorded_by}")


@consent_group.command("withdraw")
@click.argument("number")
@click.option("--evidence", default="", help="How the withdrawal was made.")
@_organisation
@_by
@click.pass_obj
def consent_withdraw(app: App, number: str, evidence: str, organisation: str | None, by: str | None) -> None:
    """Withdraw every consent in force for NUMBER."""
    key, e164 = _key(app, number)
    org = organisation or app.settings.organisation.id
    count = _store(app).withdraw_consent(org, key, _now(), by or _user(), evidence)
    if not count:
        raise click.ClickException(f"{e164} has no consent in force with {org}")
    click.echo(f"{e164}: {count} consent record(s) withdrawn ({org})")


@consent_group.command("list")
@click.argument("number", required=False)
@_organisation
@_json
@click.pass_obj
def consent_list(app: App, number: str | None, organisation: str | None, as_json: bool) -> None:
    """List consent records (all, or NUMBER's), withdrawn ones included."""
    org = organisation or app.settings.organisation.id
    key = _key(app, number)[0] if number else None
    rows = _store(app).consents(org, key)
    items = [
        {"id": r.id, "number": f"+{r.number}", "given_at": _iso(r.given_at), "recorded_by": r.recorded_by,
         "evidence": r.evidence, "scope": r.scope, "basis": r.basis, "withdrawn_at": _iso(r.withdrawn_at) or None,
         "withdrawal": r.withdrawal_reason}
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        withdrawn = f" (withdrawn {item['withdrawn_at']})" if item["withdrawn_at"] else ""
        scope = f"{item['scope']} (relationship)" if item["basis"] == RELATIONSHIP else item["scope"]
        click.echo(f"{item['id']}\t{item['number']}\t{scope}\t{item['given_at']}\t{item['evidence']}{withdrawn}")
    if not items:
        click.echo("no consent records", err=True)


# screen --------------------------------------------------------------------------------------


@click.command("screen")
@click.argument("number")
@click.option("--purpose", type=click.Choice(PURPOSES), default="marketing", show_default=True)
@click.option("--at", "at_text", default=None, help="When (ISO-8601; without an offset, in the screening time zone). Default: now.")
@click.option("--caller-id", default=None, help="Presented caller ID, or 'anonymous' (default: [organisation] caller_id).")
@_organisation
@_json
@click.pass_obj
def screen(app: App, number: str, purpose: str, at_text: str | None, caller_id: str | None, organisation: str | None, as_json: bool) -> None:
    """Print the decision for a call to NUMBER, and why. Nothing is dialled or recorded."""
    decider = _decider(app)
    if at_text:
        try:
            at = dt.datetime.fromisoformat(at_text)
        except ValueError:
            raise click.BadParameter(f"{at_text!r} is not an ISO-8601 time", param_hint="--at") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=decider.screener.policy.hours.zone)
    else:
        at = _now()
    presented = app.settings.organisation.caller_id if caller_id is None else caller_id
    attempt = CallAttempt(
        call_id="cli", agent=_user(), dialled=number, purpose=purpose, at=at,
        caller_id=None if presented.strip().lower() in ("", "anonymous") else presented,
        organisation=organisation or app.settings.organisation.id,
    )
    # Typed by a person ("020 7946 0018"): once its punctuation is dropped, a whole number goes
    # through the gate's own decide(), as a dialled one would (short codes and text relay are
    # the gate's, not the rules'); anything else is for the rules' parser as written.
    digits = compact(number)
    if is_whole_number(digits):
        decision = decide(dataclasses.replace(attempt, dialled=digits), decider, app.settings.gate.outside_line_prefix,
                          app.settings.asterisk.trunk_number_format)
    else:
        decision = decider.decide(attempt)
    if as_json:
        click.echo(json.dumps({
            "decision": decision.verdict, "allowed": decision.allowed, "reasons": list(decision.reasons),
            "number": decision.number, "purpose": purpose, "at": at.isoformat(), "evidence": dict(decision.evidence),
        }, sort_keys=True))
        return
    click.echo(f"{decision.verdict} {decision.number}" + (f": {', '.join(decision.reasons)}" if decision.reasons else ""))
    for field_name, value in sorted(decision.evidence.items()):
        click.echo(f"  {field_name}: {value}")


commands: list[click.Command] = [lists_group, objections_group, consent_group, screen]
