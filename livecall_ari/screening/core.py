"""The screening rules (PECR regulations 21, 21A and 21B): a call and the lists in, a decision out.

Pure: no database, no files, no clock. The adapters hand in the lists as lookup objects
(:class:`NumberList` over sorted integer arrays, :class:`PermissionRecords` for the
organisation's objections and consents) and the call's own time; :class:`Screener` returns a
:class:`~livecall_ari.gate.core.Decision` with every reason that applies and the evidence used.

For marketing calls (and claims-management calls, which are marketing calls too):

* ``tps`` / ``ctps``: the number is on the list, and no consent covers the call;
* ``objection``: the number is on the organisation's objection list, whatever else applies;
* ``outside_hours`` / ``bank_holiday``: the local time is outside the permitted hours, or the
  local date is a bank holiday of the configured nation;
* ``caller_id``: the presented caller ID is withheld, or not a UK number that can be rung back;
* ``stale_list``: a list is missing, or its snapshot is more than 28 days older than the call;
* ``consent_required``: claims-management calls need a consent covering claims (reg 21A);
  calls about pension schemes need a consent covering pensions or a recorded existing client
  relationship (reg 21B), whatever the TPS says: reg 21(6) takes them out of reg 21, so for
  them neither ``tps``/``ctps`` nor ``stale_list`` applies. A relationship is not a consent: it
  covers pension calls only.

Service calls are checked only for a valid number; internal calls and 999/112 always pass.
Short codes and text relay are the gate's (gate/numbering.py), before these rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np
import numpy.typing as npt

from livecall_ari.gate.core import GATED_PURPOSES as GATED_PURPOSES
from livecall_ari.gate.core import CallAttempt, Decision
from livecall_ari.screening.hours import BankHolidays, CallingHours
from livecall_ari.screening.numbers import EMERGENCY_NUMBERS, Number, NumberParser

# The stable reason codes, in the order a decision lists them.
REASONS = (
    "invalid_number",
    "objection",
    "tps",
    "ctps",
    "consent_required",
    "stale_list",
    "outside_hours",
    "bank_holiday",
    "caller_id",
)
CONSENT_SCOPES = ("marketing", "claims", "pensions", "all")
# A consent record's basis: the subscriber's consent, or (pensions only, reg 21B(3)) an existing
# client relationship in which such calls might reasonably be envisaged.
CONSENT = "consent"
RELATIONSHIP = "relationship"
CONSENT_BASES = (CONSENT, RELATIONSHIP)
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class ListSnapshot:
    """One version of the TPS or CTPS as imported: what a decision cites as its evidence."""

    name: str
    version: int
    snapshot_date: dt.date
    count: int
    file: str = ""

    def age_days(self, on: dt.date) -> int:
        return (on - self.snapshot_date).days


class NumberList:
    """A list of numbers held as a sorted int64 array of keys, with each key's first-seen day.

    The arrays may be memory-mapped files; a lookup is a binary search (``searchsorted``).
    """

    def __init__(self, snapshot: ListSnapshot, keys: npt.NDArray[np.int64], first_seen: npt.NDArray[np.int32]) -> None:
        if keys.shape != first_seen.shape:
            raise ValueError(f"{snapshot.name}: {keys.shape[0]} numbers but {first_seen.shape[0]} dates")
        self.snapshot = snapshot
        # Plain ndarray views: np.memmap's subclass hooks cost microseconds on every lookup.
        self.keys = keys.view(np.ndarray)
        self.first_seen_days = first_seen.view(np.ndarray)
        self._size = int(keys.shape[0])
        # What every decision cites, formatted once.
        self.evidence = (
            (f"{snapshot.name}_version", str(snapshot.version)),
            (f"{snapshot.name}_snapshot", snapshot.snapshot_date.isoformat()),
        )
        self.snapshot_ordinal = snapshot.snapshot_date.toordinal()

    def __len__(self) -> int:
        return self._size

    def first_seen(self, key: int) -> dt.date | None:
        """The date ``key`` was first seen on the list, or None when it is not listed."""
        if not self._size:
            return None
        index = int(self.keys.searchsorted(key))
        if index < self._size and int(self.keys[index]) == key:
            return EPOCH + dt.timedelta(days=int(self.first_seen_days[index]))
        return None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self.first_seen(key) is not None


@dataclass(frozen=True)
class Objection:
    """A person told this organisation they do not want its marketing calls."""

    id: int
    organisation: str
    number: int
    recorded_at: dt.datetime
    recorded_by: str
    reason: str


@dataclass(frozen=True)
class Consent:
    """A person told this organisation they do not object to its calls (reg 21(4)), until
    withdrawn (21(5)). ``scope`` is ``marketing``, ``claims``, ``pensions`` or ``all``. With
    ``basis`` ``relationship`` it records an existing client relationship instead (reg 21B(3)):
    it covers pension calls only, and lifts no TPS listing for any other purpose."""

    id: int
    organisation: str
    number: int
    given_at: dt.datetime
    recorded_by: str
    evidence: str
    scope: str
    withdrawn_at: dt.datetime | None = None
    basis: str = CONSENT

    def covers(self, purpose: str, at: dt.datetime, objection: Objection | None) -> bool:
        if self.scope not in ("all", purpose) or self.given_at > at:
            return False
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return False
        # An objection recorded after the consent withdraws it.
        return objection is None or objection.recorded_at < self.given_at


class PermissionRecords(Protocol):
    """The organisation's own records: objections and consents, by number key."""

    def objection(self, organisation: str, number: int) -> Objection | None: ...

    def consent(self, organisation: str, number: int) -> Consent | None: ...


@dataclass
class InMemoryRecords:
    """Objections and consents held in dictionaries keyed by (organisation, number)."""

    objections: dict[tuple[str, int], Objection]
    consents: dict[tuple[str, int], Consent]

    @classmethod
    def empty(cls) -> "InMemoryRecords":
        return cls({}, {})

    def objection(self, organisation: str, number: int) -> Objection | None:
        return self.objections.get((organisation, number))

    def consent(self, organisation: str, number: int) -> Consent | None:
        return self.consents.get((organisation, number))


@dataclass(frozen=True)
class ScreeningLists:
    """What a decision is made against: the two lists (None when never imported) and records."""

    tps: NumberList | None
    ctps: NumberList | None
    records: PermissionRecords


@dataclass(frozen=True)
class ScreeningPolicy:
    hours: CallingHours
    holidays: BankHolidays
    max_list_age_days: int = 28


class Screener:
    """Applies the rules. Holds the number parser and its memo; otherwise stateless."""

    def __init__(self, policy: ScreeningPolicy, parser: NumberParser, cache_size: int = 65536) -> None:
        self.policy = policy
        self.parser = parser
        self._parse: Callable[[str], Number | None] = lru_cache(maxsize=cache_size)(parser.parse)
        self._caller: Callable[[str | None], Number | None] = lru_cache(maxsize=1024)(parser.callback_caller_id)

    def screen(self, attempt: CallAttempt, lists: ScreeningLists) -> Decision:
        """The decision for ``attempt``: allow only when no reason applies."""
        dialled = self.parser.display(attempt.dialled)
        if dialled in EMERGENCY_NUMBERS or attempt.dialled.strip() in EMERGENCY_NUMBERS:
            return Decision(True, dialled, ("emergency",), {"purpose": attempt.purpose})
        purpose = attempt.purpose
        evidence: dict[str, str] = {"purpose": purpose, "organisation": attempt.organisation}
        number = self._parse(attempt.dialled)
        if purpose == "internal":
            return Decision(True, number.e164 if number else dialled, (), evidence)
        if number is None:
            return Decision(False, dialled, ("invalid_number",), evidence)
        if purpose == "service":
            return Decision(True, number.e164, (), evidence)
        if purpose not in GATED_PURPOSES:
            # An unknown purpose is screened as marketing, the strictest case, and said so.
            evidence["purpose_unknown"] = purpose
            purpose = "marketing"
        reasons = self._marketing_reasons(attempt, purpose, number, lists, evidence)
        return Decision(not reasons, number.e164, reasons, evidence)

    def _marketing_reasons(
        self, attempt: CallAttempt, purpose: str, number: Number, lists: ScreeningLists, evidence: dict[str, str]
    ) -> tuple[str, ...]:
        """The reasons that apply, already in the order of REASONS."""
        reasons: list[str] = []
        at = attempt.at
        local = self.policy.hours.local(at)
        day = local.date()
        key = number.key

        objection = lists.records.objection(attempt.organisation, key)
        if objection is not None:
            reasons.append("objection")
            evidence["objection_id"] = str(objection.id)
        consent = lists.records.consent(attempt.organisation, key)
        consented = consent is not None and consent.covers(purpose, at, objection)
        relationship = consented and consent is not None and consent.basis == RELATIONSHIP
        if relationship:
            consented = False
        if consent is not None:
            evidence["consent_id"] = str(consent.id)
            evidence["consent"] = "relationship" if relationship else ("in force" if consented else "not in force")

        stale = False
        today = day.toordinal()
        # Reg 21(6): reg 21 (the TPS and CTPS) does not apply to pension calls, which reg 21B
        # alone governs; the lists are still looked up, as evidence.
        listed_blocks = purpose != "pensions"
        for name, found in (("tps", lists.tps), ("ctps", lists.ctps)):
            if found is None:
                stale = True
                evidence[name] = "missing"
                continue
            evidence.update(found.evidence)
            if today - found.snapshot_ordinal > self.policy.max_list_age_days:
                stale = True
            first_seen = found.first_seen(key) if number.country_code == 44 else None
            if first_seen is not None:
                evidence[name + "_first_seen"] = first_seen.isoformat()
                if not consented and listed_blocks:
                    reasons.append(name)

        if (purpose == "claims" and not consented) or (purpose == "pensions" and not (consented or relationship)):
            reasons.append("consent_required")
        if stale and listed_blocks:
            reasons.append("stale_list")
        if not self.policy.hours.permits(local):
            reasons.append("outside_hours")
        holiday = self.policy.holidays.name(day)
        if holiday is not None:
            reasons.append("bank_holiday")
            evidence["bank_holiday"] = holiday

        caller = self._caller(attempt.caller_id)
        if caller is None:
            reasons.append("caller_id")
            evidence["caller_id"] = attempt.caller_id or "withheld"
        else:
            evidence["caller_id"] = caller.e164
        return tuple(reasons)
