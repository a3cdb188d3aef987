"""``livecall cdr import`` and ``livecall charges``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from livecall_ari.app import App
from livecall_ari.charges import billing, services
from livecall_ari.charges.statement import decimal_pence, to_csv, to_data, to_html
from livecall_ari.charges.store import BadLine
from livecall_ari.charges.tariff import PLANS, TariffError
from livecall_ari.config import ConfigError


@click.group("cdr")
def cdr_group() -> None:
    """Import Asterisk's CDRs (Master.csv, or LiveCall's cdr_custom record)."""


@cdr_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--restart", is_flag=True, help="Read FILE from its start (records already imported are still not doubled).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Records per transaction.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def import_cdrs(app: App, file: Path | None, restart: bool, batch_size: int | None, as_json: bool) -> None:
    """Import the CDRs in FILE, exactly once: a re-run imports only what is new.

    FILE defaults to [charges] cdr_file, a path as Asterisk sees it (mapped through [asterisk]
    root). Bad lines are reported on stderr with file and line number, and skipped.
    """
    if file is None:
        from livecall_ari.asterisk.paths import cdr_file_on_host

        file = cdr_file_on_host(app.settings)
        if file is None:
            raise click.ClickException("no FILE given and [charges] cdr_file is empty")
        if not file.is_file():
            raise click.ClickException(f"{file} ([charges] cdr_file {app.settings.charges.cdr_file} under "
                                       f"[asterisk] root {app.settings.asterisk_root()}) does not exist")

    def report(bad: BadLine) -> None:
        click.echo(f"bad line skipped: {bad}", err=True)

    try:
        result = services.import_cdrs(app, file, restart=restart, on_bad=report, batch_size=batch_size)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if result.incomplete_line:
        click.echo(f"{file}:{result.line_no + 1}: last line has no newline yet; left for the next import", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "file": result.path,
                    "from_line": result.resumed_at_line + 1,
                    "lines": result.lines,
                    "records": result.records,
                    "inserted": result.inserted,
                    "duplicates": result.duplicates,
                    "bad_lines": result.bad_count,
                    "incomplete_line": result.incomplete_line,
                },
                indent=2,
            )
        )
        return
    where = f" (resumed at line {result.resumed_at_line + 1})" if result.resumed_at_line else ""
    click.echo(
        f"{file}: {result.lines} lines read{where}: {result.inserted} new records, "
        f"{result.duplicates} already imported, {result.bad_count} bad lines"
    )


@click.command("charges")
@click.option("--account", required=True, help="Account (a CDR's accountcode).")
@click.option("--from", "first_day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day, YYYY-MM-DD.")
@click.option("--to", "last_day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (inclusive).")
@click.option("--plan", type=click.Choice(PLANS), default=None,
              help="Plan, for a quote (default: the account's subscriptions, else [charges] default_plan).")
@click.option("--json", "as_json", is_flag=True, help="Print the statement as JSON.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the statement as CSV to this file ('-' for stdout).")  # fmt: skip
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a printable HTML statement to this file.")  # fmt: skip
@click.pass_obj
def charges(
    app: App,
    account: str,
    first_day: dt.datetime,
    last_day: dt.datetime,
    plan: str | None,
    as_json: bool,
    csv_file: Path | None,
    html_file: Path | None,
) -> None:
    """The statement of ACCOUNT for the days --from to --to (Europe/London), rated by the tariff."""
    try:
        statement = billing.statement(app, account, first_day.date(), last_day.date(), plan)
    except (ConfigError, TariffError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if csv_file is not None:
        text = to_csv(statement)
        if str(csv_file) == "-":
            click.echo(text, nl=False)
        else:
            csv_file.write_text(text, encoding="utf-8")
    if html_file is not None:
        html_file.write_text(to_html(statement), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(to_data(statement), indent=2))
        return
    if csv_file is not None and str(csv_file) == "-":
        return
    click.echo(f"Account {account}, {statement.plan} plan, {statement.first_day} to {statement.last_day}")
    for line in statement.lines:
        click.echo(
            f"  {line.start:%Y-%m-%d %H:%M:%S}  {line.number:<16} {line.number_class:<13} "
            f"{line.billed_seconds:>6}s  {decimal_pence(line.pence):>9}p{'  trial' if line.trial else ''}"
        )
    for fee in statement.fees:
        click.echo(f"  {fee.day}  {fee.description:<44} {fee.pence:>9}p")
    click.echo(f"Net {statement.net_pence}p  VAT {statement.vat_pence}p  Total {statement.total_pence}p")


def _billing_commands() -> list[click.Command]:
    from livecall_ari.charges.billing_cli import commands as billing_commands

    return billing_commands


commands: list[click.Command] = [cdr_group, charges, *_billing_commands()]
