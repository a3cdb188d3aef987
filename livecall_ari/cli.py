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
@click.pass_obj
def init(app: App, force: bool) -> None:
    """Write the settings file with freshly generated secrets (ARI password, API token)."""
    settings = app.settings
    assert settings.path is not None
    if settings.path.exists() and not force:
        if config.ensure_secrets(settings):
            _write_private(settings.path, config.dump(settings))
            click.echo(f"{settings.path}: added missing secrets")
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
