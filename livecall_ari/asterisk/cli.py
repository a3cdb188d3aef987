"""``livecall asterisk render|install|systemd-unit``: LiveCall's files for an existing Asterisk."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
from pathlib import Path

import click

from livecall_ari.app import App
from livecall_ari.asterisk.render import diff, include_lines, render_all, write


@click.group()
def asterisk() -> None:
    """Generate LiveCall's Asterisk configuration."""


def _need_secrets(app: App) -> None:
    if not app.settings.ari.password or not app.settings.ami.secret:
        raise click.ClickException("no ARI password or AMI secret in the settings: run `livecall init` first")


def _secrets(app: App) -> tuple[str, ...]:
    """What a diff on the terminal must not show (terminals get logged and shared)."""
    s = app.settings
    return (s.ari.password, s.ami.secret, s.fastagi.secret)


def _default_dest(app: App) -> Path:
    """Asterisk's own configuration folder (it says which), else /etc/asterisk, under [asterisk] root."""
    from livecall_ari.asterisk.pbx_checks import asterisk_dirs, config_dir

    return config_dir(app.settings, asyncio.run(asterisk_dirs(app.settings))[0])


_DEST_HELP = "Asterisk's configuration folder (default: the one Asterisk reports, else /etc/asterisk; under [asterisk] root)."
_TEMPLATES_HELP = "A folder of your own templates; a file there overrides ours of the same name."


@asterisk.command()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None, help=_DEST_HELP)
@click.option("--templates", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None, help=_TEMPLATES_HELP)
@click.option("--dry-run", is_flag=True, help="Show the diff and write nothing.")
@click.pass_obj
def render(app: App, dest: Path | None, templates: Path | None, dry_run: bool) -> None:
    """Render asterisk_conf/*.conf.j2 into DEST/*_livecall.conf; never touches your own files."""
    _need_secrets(app)
    dest = dest or _default_dest(app)
    from livecall_ari.asterisk.install import redact

    files = render_all(app.settings, override_dir=templates)
    changes = redact(diff(dest, files), _secrets(app))
    click.echo(changes or "no changes", nl=not changes)
    if dry_run:
        click.echo("(dry run: nothing written)")
    else:
        from livecall_ari.asterisk.install import InstallError, owner_in

        # Owned like Asterisk's own files: a root-owned 0640 file is invisible to an Asterisk
        # running as its own user ("listed as a #include but it does not exist").
        try:
            owner = owner_in(dest) if os.geteuid() == 0 else None
        except InstallError:
            owner = None
        for path in write(dest, files):
            path.chmod(0o640)
            if owner is not None:
                os.chown(path, owner.uid, owner.gid)
            click.echo(f"wrote {path}")
    click.echo("Add these lines once, each to the file named (then `core reload`):")
    for line in include_lines(files):
        click.echo(f"  {line}")
    click.echo("and `include => livecall-outbound` at the end of your phones' context (or use `livecall asterisk install`).")


@asterisk.command()
@click.option("--dest", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None, help=_DEST_HELP)
@click.option("--context", "contexts", multiple=True, metavar="CTX",
              help="A context your phones dial from (repeatable): LiveCall's contexts are included at its end.")
@click.option("--templates", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None, help=_TEMPLATES_HELP)
@click.option("--dry-run", is_flag=True, help="Show the diff and write nothing.")
@click.option("--systemd-unit", "unit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the systemd unit here (e.g. /etc/systemd/system/livecall.service).")
@click.option("--no-reload", is_flag=True, help="Do not reload Asterisk or run the doctor afterwards.")
@click.pass_obj
def install(app: App, dest: Path | None, contexts: tuple[str, ...], templates: Path | None, dry_run: bool,
            unit_path: Path | None, no_reload: bool) -> None:
    """Install LiveCall into the Asterisk configuration in DEST, then reload Asterisk and run the doctor.

    Writes the *_livecall.conf files owned like the files already in DEST (mode 0640), adds one
    #include line to each stock file that needs it and `include => livecall-outbound` (role-play,
    supervision) to each --context, and `include => livecall-inbound` to [inbound] trunk_context,
    keeping a backup of every file it edits. Shows the diff first;
    running it again changes nothing.
    """
    from livecall_ari.asterisk import install as inst

    _need_secrets(app)
    dest = dest or _default_dest(app)
    if not dest.is_dir():
        raise click.ClickException(f"{dest} is not a folder: give Asterisk's configuration folder with --dest")
    try:
        files = render_all(app.settings, override_dir=templates)
        inbound = app.settings.inbound
        if inbound.trunk_context and not inbound.destination_context:
            raise inst.InstallError(f"[inbound] trunk_context is {inbound.trunk_context!r} but destination_context is empty: "
                                    "say where inbound calls go after the notice, or leave trunk_context empty")
        changes = inst.plan(dest, files, list(contexts), inbound.trunk_context)
        owner = inst.owner_in(dest)
    except (inst.InstallError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    for change in changes:
        click.echo(change.diff(_secrets(app)), nl=False)
    for warning in inst.warnings(dest):
        click.echo(f"warning: {warning}", err=True)
    if not contexts:
        click.echo("warning: no --context given: your phones' calls reach LiveCall only once their context has "
                   "`include => livecall-outbound` (the doctor checks)", err=True)
    unit = _unit_text(app) if unit_path is not None else None
    if unit is not None and (not unit_path.exists() or unit_path.read_text() != unit):  # type: ignore[union-attr]
        click.echo(f"{unit_path}: the systemd unit (`livecall asterisk systemd-unit`)")
    if dry_run:
        click.echo(f"(dry run: nothing written; {len(changes)} file(s) would change)")
        return
    if not changes:
        click.echo(f"no changes: LiveCall is already installed in {dest}")
    try:
        for line in inst.apply(changes, owner, dt.datetime.now(dt.timezone.utc)):
            click.echo(line)
    except (inst.InstallError, OSError) as exc:
        raise click.ClickException(f"install stopped: {exc}") from None
    if unit is not None and unit_path is not None:
        unit_path.write_text(unit)
        unit_path.chmod(0o644)
        click.echo(f"wrote {unit_path} (then: systemctl daemon-reload && systemctl enable --now livecall)")
    if no_reload:
        return
    if changes:
        _reload(app)
    _doctor(app)


RELOAD_DECLINED = ("cdr_custom.so",)


def _reload(app: App) -> None:
    from livecall_ari.asterisk.pbx_checks import rx

    result = asyncio.run(rx(app.settings, "core reload"))
    if not result.ok:
        click.echo(f"warning: could not reload Asterisk ({result.text}): run `core reload` in its CLI yourself", err=True)
        return
    click.echo(f"reloaded Asterisk ({result.command})")
    # A module that declined to load for want of configuration (cdr_custom with no [mappings],
    # as Debian ships it) stays "Not Running" through every reload until it is loaded again.
    for module in RELOAD_DECLINED:
        shown = asyncio.run(rx(app.settings, f"module show like {module}"))
        if shown.ok and "Not Running" in shown.text:
            asyncio.run(rx(app.settings, f"module unload {module}"))
            loaded = asyncio.run(rx(app.settings, f"module load {module}"))
            click.echo(f"loaded {module} again (it had declined to load without LiveCall's configuration)"
                       if loaded.ok and "Loaded" in loaded.text else f"warning: could not load {module}: {loaded.text.strip()}")
    # `core reload` returns before every module has re-read its files: wait for our dialplan.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown = asyncio.run(rx(app.settings, "dialplan show livecall-outbound"))
        if shown.ok and "livecall-outbound" in shown.text and "no existence" not in shown.text:
            return
        time.sleep(0.2)
    click.echo("warning: Asterisk has no [livecall-outbound] 10 s after the reload (see its log)", err=True)


def _doctor(app: App) -> None:
    from livecall_ari.asterisk.checks import print_checks
    from livecall_ari.asterisk.doctor import run_checks

    failed = print_checks(asyncio.run(run_checks(app)), click.echo)
    if failed:
        raise click.ClickException(f"installed, but {failed} doctor check(s) failed")


def _unit_text(app: App, user: str = "livecall", asterisk_group: str = "asterisk", config: Path | None = None) -> str:
    from livecall_ari.asterisk.systemd import UnitSettings, unit_text
    from livecall_ari.recording.files import on_host

    s = app.settings
    executable = Path(sys.executable).with_name("livecall")
    config = (config or s.path or Path("/etc/livecall/livecall.toml")).absolute()
    writable = (s.data_path().absolute(), on_host(s, s.recordings_dir()))
    return unit_text(UnitSettings(str(executable) if executable.exists() else "/usr/local/bin/livecall",
                                  config, user, user, asterisk_group, writable))


@asterisk.command("systemd-unit")
@click.option("--user", default="livecall", show_default=True, help="The dedicated user the service runs as.")
@click.option("--asterisk-group", default="asterisk", show_default=True,
              help="Asterisk's group, to read its recordings and CDRs ('' for none).")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The settings file the service reads (default: this one).")
@click.pass_obj
def systemd_unit(app: App, user: str, asterisk_group: str, config: Path | None) -> None:
    """Print a systemd unit for `livecall serve` (save it as /etc/systemd/system/livecall.service)."""
    click.echo(_unit_text(app, user, asterisk_group, config), nl=False)


commands: list[click.Command] = [asterisk]
