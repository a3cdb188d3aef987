"""Screening adapter: builds the Decider the gate uses (filled in by the screening issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from livecall_ari.gate.core import Decider, StaticDecider

if TYPE_CHECKING:
    from livecall_ari.app import App


def build_decider(app: "App") -> Decider:
    # Placeholder until the screening rules land: allow everything but the configured blocks.
    gate = app.settings.gate
    return StaticDecider(frozenset(gate.block_numbers), gate.outside_line_prefix)
