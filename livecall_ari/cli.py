"""The ``livecall`` command. Each capability contributes its commands from its own cli.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from livecall_ari import config
from livecall_ari.app import App


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file (default: $LIVECALL_CONFIG, else the user's config dir).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """LiveCall: compliance-first call recording and outbound-call screening for Asterisk."""
    try:
        app = App.from_config(config_path)
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = app
    ctx.call_on_close(app.close)


@main.command()
@click.option("--force", is_flag=True, help="Regenerate secrets even if the file exists.")
@click.option("--organisation-name", default=None, help="The organisation's name, as called parties hear it (PECR reg 24).")
@click.option("--contact-number", default=None, help="A number called parties can reach the organisation on (freephone or other).")
@click.option("--contact-address", default=None, help="The organisation's postal address (lines separated by commas).")
@click.pass_obj
def init(app: App, force: bool, organisation_name: str | None, contact_number: str | None, contact_address: str | None) -> None:
    """Write the settings file with freshly generated secrets (ARI password, API token), and the
    organisation's name and contact details (asked for on a terminal unless given as options)."""
    settings = app.settings
    assert settings.path is not None
    details = _organisation_details(settings.organisation, organisation_name, contact_number, contact_address,
                                    ask=sys.stdin.isatty())
    if settings.path.exists() and not force:
        secrets = config.ensure_secrets(settings)
        if secrets or details:
            _write_private(settings.path, config.dump(settings))
            added = [what for what, done in (("missing secrets", secrets), ("the organisation's details", details)) if done]
            click.echo(f"{settings.path}: added {' and '.join(added)}")
        else:
            click.echo(f"{settings.path}: already initialised")
    else:
        settings.ari.password = config.generate_secret()
        settings.web.api_token = config.generate_secret()
        settings.ami.secret = config.generate_secret()
        settings.fastagi.secret = config.generate_secret()
        from livecall_ari.storage.private import private_dir

        new_install = not settings.path.exists()
        if new_install:
            # A new install keeps its recordings compact and encrypted at rest; an existing
            # settings file (--force) keeps what it says.
            settings.protection.encrypt_recordings = True
            settings.recording.format = "opus"
        private_dir(settings.path.parent)
        _write_private(settings.path, config.dump(settings))
        click.echo(f"{settings.path}: written, with a new ARI password")
        if new_install:
            from livecall_ari.protection.crypto import KeyFileError, recording_key_path, recording_keys

            try:
                recording_keys(settings, create=True)
            except KeyFileError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"recordings: Opus, encrypted at rest with the key in {recording_key_path(settings)} "
                       "(back it up apart from the database)")
    settings.path.chmod(0o600)
    app.database()
    url = settings.database_url()
    click.echo(f"database: {url.split('@')[-1] if '@' in url else url}")  # a URL's password stays out


def _organisation_details(org: config.OrganisationSettings, name: str | None, number: str | None, address: str | None,
                          ask: bool) -> bool:
    """Set what the options give; on a terminal, ask for what is still missing (never without
    one: CI and scripts run init with no terminal). True when something changed."""
    before = (org.name, org.contact_number, org.contact_address)
    if name is None and ask and not org.named():
        name = click.prompt("Organisation name (called parties hear it)", default="", show_default=False)
    if number is None and ask and not org.contact_number:
        number = click.prompt("Contact number (freephone or other)", default="", show_default=False)
    if address is None and ask and not org.contact_address:
        address = click.prompt("Postal address (lines separated by commas)", default="", show_default=False)
    org.name = name.strip() if name and name.strip() else org.name
    org.contact_number = number.strip() if number is not None else org.contact_number
    org.contact_address = address.strip() if address is not None else org.contact_address
    return (org.name, org.contact_number, org.contact_address) != before


def _write_private(path: Path, text: str) -> None:
    """Write the settings (they hold secrets) readable by the owner only, from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def _register() -> None:
    from livecall_ari.alarms.cli import commands as alarms_commands
    from livecall_ari.asterisk.cli import commands as asterisk_commands
    from livecall_ari.charges.cli import commands as charges_commands
    from livecall_ari.gate.cli import commands as gate_commands
    from livecall_ari.portal.cli import commands as portal_commands
    from livecall_ari.protection.cli import commands as protection_commands
    from livecall_ari.recording.cli import commands as recording_commands
    from livecall_ari.sandbox.cli import commands as sandbox_commands
    from livecall_ari.screening.cli import commands as screening_commands
    from livecall_ari.supervision.cli import commands as supervision_commands

    for group in (
        gate_commands, asterisk_commands, sandbox_commands, screening_commands, charges_commands,
        recording_commands, supervision_commands, protection_commands, portal_commands, alarms_commands,
    ):
        for command in group:
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
