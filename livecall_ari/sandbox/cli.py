"""Command-line commands of this capability."""

from __future__ import annotations

import click

commands: list[click.Command] = []
