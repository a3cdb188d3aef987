"""What one ``livecall doctor`` check found: the value every capability's check returns.

Kept apart from doctor.py, which runs them all, so a capability's check (the alarms', the PBX's)
imports this and doctor.py imports the checks: no import loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False


def print_checks(checks: Iterable[Check], echo: Callable[[str], object]) -> int:
    """One line per check (``[ok  ]``, ``[warn]``, ``[FAIL]``); the number that failed."""
    failed = 0
    for check in checks:
        mark = "ok  " if check.ok else ("warn" if check.warning else "FAIL")
        echo(f"[{mark}] {check.name}: {check.detail}")
        failed += 0 if check.ok or check.warning else 1
    return failed
