"""``livecall supervision``: the audit of live supervision sessions."""

from __future__ import annotations

import json

import click

from livecall_ari.app import App


@click.group()
def supervision() -> None:
    """Live supervision: listen, whisper and barge (see docs/supervision.md)."""


@supervision.command("sessions")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, with each session's events.")
@click.pass_obj
def sessions(app: App, limit: int, as_json: bool) -> None:
    """The most recent sessions and refused attempts, newest first."""
    from livecall_ari.supervision.services import Session
    from livecall_ari.supervision.store import DatabaseSessionStore

    app.database()
    store = DatabaseSessionStore()
    rows: list[Session] = store.recent(limit)
    if not rows:
        click.echo("no supervision sessions recorded yet")
    for s in rows:
        if as_json:
            events = [{**e, "at": e["at"].isoformat()} for e in store.events(s.id)]
            click.echo(json.dumps({"id": s.id, "supervisor": s.supervisor, "agent": s.agent, "origin": s.origin,
                                   "mode": s.mode, "status": s.status, "reasons": s.reasons, "call_id": s.call_id,
                                   "requested_at": s.requested_at.isoformat(), "end_reason": s.end_reason,
                                   "events": events}))
        else:
            why = f" ({s.reasons})" if s.reasons else (f" ({s.end_reason})" if s.end_reason else "")
            click.echo(f"{s.requested_at:%Y-%m-%d %H:%M:%S}  {s.supervisor:<6} -> {s.agent:<6} {s.mode:<8} "
                       f"{s.origin:<5} {s.status}{why}  call {s.call_id or '-'}")


commands: list[click.Command] = [supervision]
