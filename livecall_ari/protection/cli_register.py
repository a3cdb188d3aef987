"""``livecall breach`` (the breach register), ``livecall privacy-notice`` and ``livecall encryption``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from livecall_ari import config
from livecall_ari.app import App
from livecall_ari.protection import breaches
from livecall_ari.protection.models import Breach
from livecall_ari.protection.crypto import KeyFileError, encrypt_file, is_encrypted, recording_key_path, recording_keys
from livecall_ari.protection.services import basis_policy, now, retention_policy, who


def _time(text: str | None, what: str) -> dt.datetime | None:
    from livecall_ari.protection.cli import parse_time

    return parse_time(text, what) if text else None


@click.group("breach")
def breach_group() -> None:
    """The breach register and the ICO's 72-hour clock."""


@breach_group.command("add")
@click.option("--title", required=True)
@click.option("--nature", required=True, help="What happened.")
@click.option("--aware-at", default=None, help="When the organisation became aware (ISO-8601; default now).")
@click.option("--occurred-at", default=None, help="When it happened, if known.")
@click.option("--categories", default="", help="Categories of data and of people concerned.")
@click.option("--subjects", type=int, default=0, help="Approximate number of people.")
@click.option("--records", type=int, default=0, help="Approximate number of records.")
@click.option("--consequences", default="")
@click.option("--measures", default="", help="Measures taken or proposed.")
@click.option("--not-notifiable", is_flag=True, help="Unlikely to result in a risk to people: no ICO report (say why in --nature).")
@click.option("--by", default=None)
@click.pass_obj
def breach_add(app: App, title: str, nature: str, aware_at: str | None, occurred_at: str | None, categories: str,
               subjects: int, records: int, consequences: str, measures: str, not_notifiable: bool, by: str | None) -> None:
    """Record a breach; prints the ICO deadline."""
    app.database()
    aware = _time(aware_at, "--aware-at") or now()
    facts = breaches.BreachFacts(title, aware, nature, _time(occurred_at, "--occurred-at"), categories, subjects, records,
                                 consequences, measures, not not_notifiable)
    row = breaches.add_breach(facts, by or who(), now(), app.settings.organisation.id)
    c = breaches.clock(row, now())
    click.echo(f"breach {row.id}: {title}: report to the ICO by {c.deadline:%Y-%m-%d %H:%M} UTC ({c.status}, {c.hours_left} h left)")


@breach_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def breach_list(app: App, as_json: bool) -> None:
    """Every breach with its clock."""
    app.database()
    items = [breaches.as_dict(r, now()) for r in Breach.select().order_by(Breach.id)]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for b in items:
        click.echo(f"{b['id']}\t{b['aware_at']}\t{b['status']}\tICO by {b['ico_deadline']}\t{b['title']}")
    if not items:
        click.echo("no breaches recorded", err=True)


@breach_group.command("show")
@click.argument("breach_id", type=int)
@click.pass_obj
def breach_show(app: App, breach_id: int) -> None:
    """A breach's clock and a draft of the report to the ICO."""
    app.database()
    try:
        row = breaches.get(breach_id)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(breaches.report_draft(row, app.settings, now()))


@breach_group.command("reported")
@click.argument("breach_id", type=int)
@click.option("--at", "at_text", default=None, help="When it was reported (default now).")
@click.option("--reference", default="", help="The ICO's reference.")
@click.option("--by", default=None)
@click.pass_obj
def breach_reported(app: App, breach_id: int, at_text: str | None, reference: str, by: str | None) -> None:
    """Record that breach BREACH_ID was reported to the ICO."""
    app.database()
    try:
        row = breaches.mark_reported(breach_id, _time(at_text, "--at") or now(), reference, by or who())
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"breach {breach_id}: {breaches.clock(breaches.get(int(row.id)), now()).status}")


@click.command("privacy-notice")
@click.pass_obj
def privacy_notice(app: App) -> None:
    """Print the privacy notice for the organisation's website, from the settings."""
    from livecall_ari.protection.privacy import privacy_notice as notice

    try:
        click.echo(notice(app.settings, basis_policy(app.settings), retention_policy(app.settings)))
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("encryption")
def encryption_group() -> None:
    """Keys for encrypting recordings at rest ([protection] encrypt_recordings)."""


@encryption_group.command("init")
@click.pass_obj
def encryption_init(app: App) -> None:
    """Create the recording key file (0600) if there is none."""
    path = recording_key_path(app.settings)
    existed = path.exists()
    try:
        keys = recording_keys(app.settings, create=True)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}: {'already there' if existed else 'created'} (current key {keys.current}); back it up apart from the database")


@encryption_group.command("rotate")
@click.pass_obj
def encryption_rotate(app: App) -> None:
    """Seal new recordings with a new key (old ones keep opening with theirs)."""
    try:
        key_id = recording_keys(app.settings).rotate()
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{recording_key_path(app.settings)}: new current key {key_id}")


@encryption_group.command("seal")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def encryption_seal(app: App, files: tuple[Path, ...]) -> None:
    """Encrypt existing recording FILES in place (already sealed ones are left alone)."""
    try:
        keys = recording_keys(app.settings)
        for path in files:
            if is_encrypted(path):
                click.echo(f"{path}: already encrypted")
                continue
            encrypt_file(path, keys)
            from livecall_ari.recording.files import as_asterisk_sees
            from livecall_ari.recording.models import Recording

            app.database()
            Recording.update(encrypted=True).where(Recording.file == as_asterisk_sees(app.settings, path)).execute()
            click.echo(f"{path}: encrypted")
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None


commands: list[click.Command] = [breach_group, privacy_notice, encryption_group]
