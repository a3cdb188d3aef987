"""The gate service: decide, record, log. Shared by the Stasis and FastAGI entries.

The decision must be recorded before the call goes on: when the decider fails or the record
cannot be written, the call is refused (fail closed) and the log line says why.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from livecall_ari.gate.core import CallAttempt, Decider, Decision, decide, refusal

log = logging.getLogger("livecall.gate")


class DecisionRecorder(Protocol):
    def record(self, attempt: CallAttempt, decision: Decision, entry: str, elapsed_us: int) -> None: ...


class DatabaseRecorder:
    """Writes each decision to the ``gate_decisions`` table."""

    def record(self, attempt: CallAttempt, decision: Decision, entry: str, elapsed_us: int) -> None:
        from livecall_ari.gate.models import GateDecision

        GateDecision.create(
            call_id=attempt.call_id,
            agent=attempt.agent,
            dialled=attempt.dialled,
            number=decision.number,
            purpose=attempt.purpose,
            caller_id=attempt.caller_id,
            organisation=attempt.organisation,
            decision=decision.verdict,
            reasons=",".join(decision.reasons),
            evidence=json.dumps(dict(decision.evidence), sort_keys=True),
            entry=entry,
            decided_at=attempt.at.astimezone(dt.timezone.utc),
            elapsed_us=elapsed_us,
        )


@dataclass
class GateService:
    decider: Decider
    recorder: DecisionRecorder
    outside_line_prefix: str = ""
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)

    def now(self) -> dt.datetime:
        return self.clock()

    def screen(self, attempt: CallAttempt, entry: str) -> Decision:
        started = time.perf_counter_ns()
        try:
            decision = decide(attempt, self.decider, self.outside_line_prefix)
        except Exception:
            log.exception("decider failed for call %s; refusing it", attempt.call_id)
            decision = refusal("error", attempt.dialled)
        elapsed_us = (time.perf_counter_ns() - started) // 1000
        try:
            self.recorder.record(attempt, decision, entry, elapsed_us)
        except Exception as exc:
            log.error("could not record the decision for call %s (%s); refusing it", attempt.call_id, exc)
            if "emergency" not in decision.reasons:
                decision = refusal("error", decision.number)
        log.info(
            json.dumps(
                {
                    "event": "decision",
                    "entry": entry,
                    "call_id": attempt.call_id,
                    "agent": attempt.agent,
                    "number": decision.number,
                    "purpose": attempt.purpose,
                    "decision": decision.verdict,
                    "reasons": list(decision.reasons),
                    "elapsed_us": elapsed_us,
                },
                sort_keys=True,
            )
        )
        return decision
