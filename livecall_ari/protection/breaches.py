"""The breach register: what happened, when the organisation became aware of it, the ICO's
72-hour clock (UK GDPR art. 33) and a draft report from what was recorded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from livecall_ari import config
from livecall_ari.protection import audit
from livecall_ari.protection.core import BreachClock, breach_clock
from livecall_ari.protection.models import Breach
from livecall_ari.storage.times import from_db, to_db


@dataclass(frozen=True)
class BreachFacts:
    title: str
    aware_at: dt.datetime
    nature: str
    occurred_at: dt.datetime | None = None
    categories: str = ""
    subjects: int = 0
    records: int = 0
    consequences: str = ""
    measures: str = ""
    notifiable: bool = True


def add_breach(facts: BreachFacts, by: str, now: dt.datetime, organisation: str = "") -> Breach:
    if facts.aware_at.tzinfo is None or (facts.occurred_at is not None and facts.occurred_at.tzinfo is None):
        raise ValueError("breach times must carry a time zone")
    with Breach._meta.database.atomic():
        row: Breach = Breach.create(
            title=facts.title, aware_at=to_db(facts.aware_at), occurred_at=to_db(facts.occurred_at) if facts.occurred_at else None,
            nature=facts.nature, categories=facts.categories, subjects=facts.subjects, records=facts.records,
            consequences=facts.consequences, measures=facts.measures, notifiable=facts.notifiable,
            recorded_by=by, recorded_at=to_db(now), organisation=organisation,
        )
        audit.append(by, "breach.add", f"breach:{row.id}", {"title": facts.title}, at=now)
    return row


def mark_reported(breach_id: int, reported_at: dt.datetime, reference: str, by: str) -> Breach:
    row = get(breach_id)
    with Breach._meta.database.atomic():
        Breach.update(reported_at=to_db(reported_at), ico_reference=reference).where(Breach.id == breach_id).execute()
        audit.append(by, "breach.reported", f"breach:{breach_id}", {"reported_at": reported_at.isoformat(), "reference": reference})
    return row


def get(breach_id: int) -> Breach:
    row = Breach.get_or_none(Breach.id == breach_id)
    if row is None:
        raise LookupError(f"no breach {breach_id} in the register")
    return row


def clock(row: Breach, now: dt.datetime) -> BreachClock:
    aware = from_db(row.aware_at)
    assert aware is not None
    return breach_clock(aware, now, from_db(row.reported_at), bool(row.notifiable))


def as_dict(row: Breach, now: dt.datetime) -> dict[str, Any]:
    c = clock(row, now)
    return {
        "id": int(row.id), "title": row.title, "aware_at": _iso(row.aware_at), "occurred_at": _iso(row.occurred_at),
        "nature": row.nature, "categories": row.categories, "subjects": int(row.subjects), "records": int(row.records),
        "consequences": row.consequences, "measures": row.measures, "notifiable": bool(row.notifiable),
        "reported_at": _iso(row.reported_at), "ico_reference": row.ico_reference, "recorded_by": row.recorded_by,
        "ico_deadline": c.deadline.isoformat(timespec="minutes"), "hours_left": c.hours_left, "status": c.status,
    }


def _iso(value: Any) -> str | None:
    at = from_db(value)
    return at.isoformat(timespec="minutes") if at else None


def report_draft(row: Breach, settings: config.Settings, now: dt.datetime) -> str:
    """The ICO's breach report questions, answered from the register (a draft to check and send)."""
    b = as_dict(row, now)
    p = settings.protection
    late = "" if b["status"] in ("open", "reported on time", "not notifiable") else (
        "\nReasons for reporting after 72 hours: [explain the delay, art. 33(1)]\n")
    return f"""PERSONAL DATA BREACH REPORT (draft) - breach {b['id']}: {b['title']}

Organisation: {settings.organisation.name}
ICO registration number: {p.ico_registration or '[registration number]'}
Contact: {p.dpo_name or '[data protection contact]'} {p.dpo_email} {p.dpo_phone}

1. What happened
{b['nature']}

2. When
Occurred: {b['occurred_at'] or 'not yet known'}
We became aware: {b['aware_at']}
Report due to the ICO by: {b['ico_deadline']} ({b['status']}, {b['hours_left']} hours left)
{late}
3. Categories and approximate numbers
Data and people concerned: {b['categories'] or '[categories of personal data and of data subjects]'}
Approximate number of people: {b['subjects']}
Approximate number of records: {b['records']}

4. Likely consequences
{b['consequences'] or '[likely consequences for the people concerned]'}

5. Measures taken or proposed
{b['measures'] or '[measures to address the breach and mitigate its effects]'}

6. Have the people concerned been told?
[yes / no / planned, and how]
"""
