"""``livecall serve`` and ``livecall doctor``."""

from __future__ import annotations

import asyncio
import signal

import click

from livecall_ari.app import App


@click.command()
@click.option("--log-level", default="info", envvar="LIVECALL_LOG_LEVEL", show_envvar=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_obj
def serve(app: App, log_level: str) -> None:
    """Run the gate (ARI Stasis app and FastAGI server) until stopped."""
    from livecall_ari.service import run

    from livecall_ari import logs

    logs.configure(log_level, app.settings)
    if not app.settings.ari.password:
        raise click.ClickException("no ARI password in the settings: run `livecall init` first")
    from livecall_ari.fastagi.server import secret_problem

    if (problem := secret_problem(app.settings.fastagi.secret)) is not None:
        # Fail closed; the dialplan must be rendered again too, so its AGI URLs carry the secret.
        raise click.ClickException(f"{app.settings.path}: [fastagi] secret: {problem} "
                                   "(`livecall asterisk render`, or `livecall sandbox up` for the sandbox)")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(app, stop)

    asyncio.run(main())


@click.command()
@click.pass_obj
def doctor(app: App) -> None:
    """Check ARI, the modules and dialplan LiveCall needs, and the database."""
    from livecall_ari.asterisk.checks import print_checks
    from livecall_ari.asterisk.doctor import run_checks

    failed = print_checks(asyncio.run(run_checks(app)), click.echo)
    if failed:
        raise click.ClickException(f"{failed} check(s) failed")


@click.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_obj
def decisions(app: App, limit: int, as_json: bool) -> None:
    """The most recent gate decisions, newest last."""
    import json

    from livecall_ari.gate.models import GateDecision

    app.database()
    rows = list(GateDecision.select().order_by(GateDecision.decided_at.desc(), GateDecision.call_id.desc()).limit(limit))[::-1]
    if not rows:
        click.echo("no decisions recorded yet")
    for r in rows:
        if as_json:
            click.echo(json.dumps({
                "call_id": r.call_id, "agent": r.agent, "number": r.number, "purpose": r.purpose,
                "decision": r.decision, "reasons": [x for x in r.reasons.split(",") if x],
                "evidence": json.loads(r.evidence), "entry": r.entry, "decided_at": str(r.decided_at),
            }))
        else:
            why = f"  ({r.reasons})" if r.reasons else ""
            click.echo(f"{str(r.decided_at)[:19]}  agent {r.agent:<5} {r.purpose:<9} {r.number:<16} {r.decision.upper()}{why}")


commands: list[click.Command] = [serve, doctor, decisions]
