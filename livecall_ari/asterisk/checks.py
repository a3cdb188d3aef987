"""What one ``livecall doctor`` check found: the value every capability's check returns.

Kept apart from doctor.py, which runs them all, so a capability's check (the alarms', the PBX's)
imports this and doctor.py imports the checks: no import loop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False
