"""``livecall alarms``: list the unscreened-call alarms, and acknowledge one once its cause is fixed."""

from __future__ import annotations

import json

import click

from livecall_ari.app import App


@click.group()
def alarms() -> None:
    """Unscreened-call alarms: calls from agents' phones that reached the trunk without the gate."""


@alarms.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also the alarms already acknowledged.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def list_alarms(app: App, show_all: bool, as_json: bool) -> None:
    """The alarms not yet acknowledged (all of them with --all), oldest first."""
    from livecall_ari.alarms.services import alarms as find

    app.database()
    found = find(open_only=not show_all)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no unscreened-call alarms" + ("" if show_all else " to acknowledge"))
    for a in found:
        state = f"acknowledged by {a['acknowledged_by']} at {a['acknowledged_at'][:19]}" if a["acknowledged_at"] else "OPEN"
        decided = f", the gate decided {a['decided']}" if a["decided"] else ""
        click.echo(f"#{a['id']}  {a['call_start'][:19]}  call {a['call_id']}  agent {a['agent']}  to {a['number']}  "
                   f"{a['reason']}{decided}  {state}")


@alarms.command("ack")
@click.argument("alarm_id", type=int)
@click.option("--by", required=True, help="Who acknowledges it (written to the audit trail).")
@click.pass_obj
def ack(app: App, alarm_id: int, by: str) -> None:
    """Acknowledge alarm ALARM_ID (after fixing the route around the gate); audited."""
    from livecall_ari.alarms.services import AlarmError, acknowledge

    app.database()
    try:
        done = acknowledge(alarm_id, by)
    except AlarmError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"alarm #{done['id']} (call {done['call_id']}) acknowledged by {done['acknowledged_by']}")


commands: list[click.Command] = [alarms]
