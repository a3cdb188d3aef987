"""``livecall users add|reset|disable|list``: the portal's accounts.

Passwords are asked for twice without echo, or read from standard input with
``--password-stdin`` (scripts, tests); never taken as an argument, where ``ps`` would show it.
"""

from __future__ import annotations

import sys

import click

from livecall_ari.app import App
from livecall_ari.portal.auth import AccountError, Accounts
from livecall_ari.portal.core import ROLES


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _accounts(app: App) -> Accounts:
    app.database()
    return Accounts(organisation=app.settings.organisation.id)


_stdin = click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")


@click.group("users")
def users() -> None:
    """Portal accounts: admin, supervisor, agent, auditor (docs/portal.md)."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--extension", default="", help="The user's phone: an agent's calls, a supervisor's phone to ring.")
@_stdin
@click.pass_obj
def add(app: App, username: str, role: str, extension: str, password_stdin: bool) -> None:
    """Add a user."""
    try:
        user = _accounts(app).add(username, role, _password(password_stdin), extension)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user.username} added ({user.role}{', extension ' + extension if extension else ''})")


@users.command("reset")
@click.argument("username")
@_stdin
@click.pass_obj
def reset(app: App, username: str, password_stdin: bool) -> None:
    """Set a new password (enables the user again and ends their sessions)."""
    try:
        _accounts(app).reset(username, _password(password_stdin))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {username}: new password set; their sessions are ended")


@users.command("disable")
@click.argument("username")
@click.pass_obj
def disable(app: App, username: str) -> None:
    """Stop a user logging in (and end their sessions now)."""
    try:
        _accounts(app).disable(username)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {username} disabled")


@users.command("list")
@click.pass_obj
def list_(app: App) -> None:
    """Every user with role, extension and state."""
    rows = _accounts(app).users()
    for u in rows:
        click.echo(f"{u.username:<20} {u.role:<10} {u.extension or '-':<8} {'disabled' if u.disabled else 'active'}")
    if not rows:
        click.echo("no users (add one with `livecall users add NAME --role admin`)")


commands: list[click.Command] = [users]
