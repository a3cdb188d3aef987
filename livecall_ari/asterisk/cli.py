"""``livecall asterisk render``: write LiveCall's *_livecall.conf files for an existing Asterisk."""

from __future__ import annotations

from pathlib import Path

import click

from livecall_ari.app import App
from livecall_ari.asterisk.render import diff, include_lines, render_all, write


@click.group()
def asterisk() -> None:
    """Generate LiveCall's Asterisk configuration."""


@asterisk.command()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("/etc/asterisk"), show_default=True)
@click.option("--templates", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A folder of your own templates; a file there overrides ours of the same name.")
@click.option("--dry-run", is_flag=True, help="Show the diff and write nothing.")
@click.pass_obj
def render(app: App, dest: Path, templates: Path | None, dry_run: bool) -> None:
    """Render asterisk_conf/*.conf.j2 into DEST/*_livecall.conf; never touches your own files."""
    if not app.settings.ari.password or not app.settings.ami.secret:
        raise click.ClickException("no ARI password or AMI secret in the settings: run `livecall init` first")
    files = render_all(app.settings, override_dir=templates)
    changes = diff(dest, files)
    click.echo(changes or "no changes", nl=not changes)
    if dry_run:
        click.echo("(dry run: nothing written)")
    else:
        for path in write(dest, files):
            path.chmod(0o640)
            click.echo(f"wrote {path}")
    click.echo("Add these lines once, each to the file named (then `core reload`):")
    for line in include_lines(files):
        click.echo(f"  {line}")


commands: list[click.Command] = [asterisk]
