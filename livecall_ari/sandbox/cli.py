"""``livecall sandbox up|down|status|restart|rx|ring``: the real Asterisk to develop and test against."""

from __future__ import annotations

import json
import sys

import click

from livecall_ari.app import App
from livecall_ari.sandbox.sandbox import PBX, PSTN, Sandbox, SandboxError


@click.group()
def sandbox() -> None:
    """A real Asterisk 22 PBX and a simulated PSTN on loopback (needs root)."""


def _sandbox(app: App) -> Sandbox:
    return Sandbox(app.settings)


@sandbox.command()
@click.pass_obj
def up(app: App) -> None:
    """Build the chroot if needed, render the configuration, start both Asteriks."""
    try:
        _sandbox(app).up()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("sandbox: up")
    _print_status(_sandbox(app).status())


@sandbox.command()
@click.pass_obj
def down(app: App) -> None:
    """Stop both Asterisks (the chroot stays cached)."""
    _sandbox(app).down()
    click.echo("sandbox: down")


@sandbox.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (with the phones' passwords).")
@click.option("--show-passwords", is_flag=True,
              help="Print the phones' passwords even when the output is not a terminal (a log, a pipe).")
@click.pass_obj
def status(app: App, as_json: bool, show_passwords: bool) -> None:
    """ARI URL, SIP addresses and the endpoints' credentials."""
    info = _sandbox(app).status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        _print_status(info, show_passwords)


@sandbox.command()
@click.argument("command")
@click.option("--pstn", is_flag=True, help="Run it on the simulated PSTN instead of the PBX.")
@click.pass_obj
def rx(app: App, command: str, pstn: bool) -> None:
    """Run an Asterisk CLI command in the sandbox (like asterisk -rx)."""
    try:
        click.echo(_sandbox(app).rx(PSTN if pstn else PBX, command), nl=False)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None


@sandbox.command()
@click.argument("did")
@click.option("--caller", default="02079460555", show_default=True, help="The number the call comes from.")
@click.pass_obj
def ring(app: App, did: str, caller: str) -> None:
    """The simulated PSTN calls one of the PBX's DIDs (0113 496 XXXX rings desk phone XXXX)."""
    try:
        click.echo(_sandbox(app).ring(did, caller), nl=False)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None


@sandbox.command("call")
@click.argument("number")
@click.option("--agent", default="1001", show_default=True, help="The desk phone that dials.")
@click.option("--hold", default=3.0, show_default=True, help="Seconds to stay on an answered call.")
@click.pass_obj
def call_(app: App, number: str, agent: str, hold: float) -> None:
    """Dial NUMBER from one of the sandbox's desk phones (with sipp) and say what happened."""
    from livecall_ari.sandbox.sipp import start_call

    box = _sandbox(app)
    password = next((p["password"] for p in box.phones() if p["name"] == agent), None)
    if password is None:
        raise click.ClickException(f"no sandbox phone {agent!r}")
    result = start_call(number, agent, password, hold_ms=int(hold * 1000), pbx=f"127.0.0.1:{app.settings.sandbox.sip_port}").wait()
    if result.answered:
        click.echo(f"{agent} -> {number}: answered, held {hold:g} s, hung up")
    elif result.refused_cause is not None:
        click.echo(f"{agent} -> {number}: refused (Q.850 cause {result.refused_cause}) after the spoken reason")
    else:
        raise click.ClickException(f"{agent} -> {number}: failed: {result.errors.strip()[-300:]}")


def _print_status(info: dict[str, object], show_passwords: bool = False) -> None:
    """The sandbox's addresses and phones. The phones' passwords go to a terminal only (or with
    ``show_passwords``): not into a CI log or a file the output is sent to."""
    shown = show_passwords or sys.stdout.isatty()
    running = info["running"]
    assert isinstance(running, dict)
    click.echo(f"  pbx:  {'running' if running['pbx'] else 'stopped'}   pstn: {'running' if running['pstn'] else 'stopped'}")
    click.echo(f"  ARI:  {info['ari_url']}/ari  (user {info['ari_user']}, password in the settings file)")
    click.echo(f"  SIP:  udp {info['sip']}   simulated PSTN: udp {info['pstn']}")
    endpoints = info["endpoints"]
    assert isinstance(endpoints, list)
    for e in endpoints:
        password = e["password"] if shown else "(hidden)"
        click.echo(f"  endpoint {e['name']:<5} {e['label']:<18} user {e['username']}  password {password}")
    click.echo(f"  CDRs: {info['cdr_csv']}")
    if not shown:
        click.echo("  The phones' passwords are hidden as this output is not a terminal: "
                   "`livecall sandbox status --show-passwords` (or --json) prints them.")


commands: list[click.Command] = [sandbox]
