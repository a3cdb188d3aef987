"""Calls: search the gate's decisions and show one call with everything known about it.

The search pages newest first by keyset (``before`` = the last id shown), never by OFFSET, so
page 1000 costs what page 1 does; each filter has an index (portal/models.py adds agent,
purpose and decision; number and decided_at are the gate's own). An agent's queries are always
limited to their own extension, whatever the URL says.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from livecall_ari.gate.core import PURPOSES
from livecall_ari.gate.models import GateDecision
from livecall_ari.portal.core import agent_filter, can, may_see_call, row_key
from livecall_ari.portal.formats import money, reason_text
from livecall_ari.portal.web import Ctx, Portal
from livecall_ari.protection.registry import pk, row_id

PAGE = 50
# The gate's decisions, and the call log's mark for a call that rang the organisation (never screened).
DECISIONS = ("allow", "block", "inbound")
LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class CallFilters:
    number: str = ""  # E.164
    agent: str = ""
    purpose: str = ""
    decision: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def _date(text: str) -> dt.date | None:
    try:
        day = dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None
    # The search ends at the next midnight, which the last day of year 9999 does not have.
    return day if day is None or dt.date.min < day < dt.date.max else None


def parse_filters(params: Any, parse_number: Any) -> tuple[CallFilters, list[str]]:
    """Filters from the query string; problems come back as messages, the filter dropped."""
    problems: list[str] = []
    number = ""
    raw = str(params.get("number", "")).strip()
    if raw:
        parsed = parse_number(raw)
        if parsed is None:
            problems.append(f"{raw!r} is not a telephone number")
        else:
            number = parsed.e164
    purpose = str(params.get("purpose", ""))
    decision = str(params.get("decision", ""))
    filters = CallFilters(
        number=number, agent=str(params.get("agent", "")).strip(),
        purpose=purpose if purpose in PURPOSES else "", decision=decision if decision in DECISIONS else "",
        date_from=_date(str(params.get("from", ""))), date_to=_date(str(params.get("to", ""))),
    )
    return filters, problems


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), LONDON).astimezone(dt.timezone.utc)


def search(filters: CallFilters, only_agent: str | None, before: int | None = None, limit: int = PAGE,
           organisation: str | None = None) -> tuple[list[GateDecision], int | None]:
    """One page of decisions, newest first, and the id to continue from (None: last page);
    only ``organisation``'s when given (services of several organisations may share a database)."""
    query = GateDecision.select()
    if organisation is not None:
        query = query.where(GateDecision.organisation == organisation)
    if only_agent is not None:
        query = query.where(GateDecision.agent == only_agent)
    if filters.agent:
        query = query.where(GateDecision.agent == filters.agent)
    if filters.number:
        query = query.where(GateDecision.number == filters.number)
    if filters.purpose:
        query = query.where(GateDecision.purpose == filters.purpose)
    if filters.decision:
        query = query.where(GateDecision.decision == filters.decision)
    if filters.date_from:
        query = query.where(GateDecision.decided_at >= _local_midnight(filters.date_from))
    if filters.date_to:
        query = query.where(GateDecision.decided_at < _local_midnight(filters.date_to + dt.timedelta(days=1)))
    if before is not None:
        query = query.where(pk(GateDecision) < before)
    rows = list(query.order_by(pk(GateDecision).desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (row_id(rows[-1]) if more and rows else None)


def call_details(portal: Portal, call_id: str) -> dict[str, Any] | None:
    """Everything about one call: decisions, recording, notice, pauses, lawful basis, CDRs and
    their charge, monitoring sessions, coaching."""
    from livecall_ari.protection.services import call_basis
    from livecall_ari.recording.models import NoticeEvent, Recording, RecordingPause
    from livecall_ari.supervision.models import SupervisionSession

    organisation = portal.settings.organisation.id
    decisions = list(GateDecision.select().where((GateDecision.call_id == call_id) & (GateDecision.organisation == organisation))
                     .order_by(pk(GateDecision)))
    recordings = list(Recording.select().where((Recording.call_id == call_id) & (Recording.organisation == organisation))
                      .order_by(pk(Recording)))
    if not decisions and not recordings:
        return None
    first = decisions[0] if decisions else None
    agent = str(first.agent if first else recordings[0].agent)
    purpose = str(first.purpose if first else recordings[0].purpose)
    basis, basis_source = call_basis(portal.settings, call_id, purpose)
    return {
        "call_id": call_id, "agent": agent, "purpose": purpose,
        "decisions": [{"row": d, "reasons": [(r, reason_text(r)) for r in str(d.reasons).split(",") if r],
                       "evidence": json.loads(str(d.evidence) or "{}")} for d in decisions],
        "recordings": recordings,
        "pauses": list(RecordingPause.select().where(RecordingPause.recording.in_([row_id(r) for r in recordings]))) if recordings else [],
        "notices": list(NoticeEvent.select().where(NoticeEvent.call_id == call_id).order_by(pk(NoticeEvent))),
        "basis": basis, "basis_source": basis_source,
        "charges": call_charges(portal, call_id),
        # This organisation's sessions on the call; one from before sessions had an organisation
        # is taken by its agent (another PBX's call may have the same id).
        "sessions": list(SupervisionSession.select().where(
            (SupervisionSession.call_id == call_id) & ((SupervisionSession.organisation == organisation)
                                                       | ((SupervisionSession.organisation == "") & (SupervisionSession.agent == agent))))
                         .order_by(SupervisionSession.requested_at)),
    }


def call_charges(portal: Portal, call_id: str) -> list[dict[str, Any]]:
    """The call's CDRs, each with its line of the account's statement from the first of its
    month to its day: by the account's subscriptions (a trial call shows as free, a monthly
    bundle counts the calls before it), as the invoice will."""
    from livecall_ari.charges import billing
    from livecall_ari.charges.models import CdrRow
    rows = list(CdrRow.select().where((CdrRow.call_id == call_id) | (CdrRow.uniqueid == call_id)))
    out = []
    for row in rows:
        day = dt.datetime.fromtimestamp(int(row.start_utc), LONDON).date()
        cost = ""
        try:
            statement = billing.statement(portal.app, str(row.account), day.replace(day=1), day)
            for line in statement.lines:
                if line.uniqueid == row.uniqueid and int(line.start.timestamp()) == int(row.start_utc):
                    cost = money(line.pence) + (" (trial)" if line.trial else "")
        except Exception as exc:  # a tariff problem shows on the page, not as an error page
            cost = f"not rated: {exc}"
        out.append({"account": row.account, "number": row.number, "class": row.number_class, "billsec": row.billsec,
                    "duration": row.duration, "cost": cost or "-"})
    return out


def routes(portal: Portal) -> list[BaseRoute]:
    from livecall_ari.screening.numbers import NumberParser

    parser = NumberParser(portal.settings.gate.outside_line_prefix)

    async def listing(request: Request, ctx: Ctx) -> Response:
        filters, problems = parse_filters(request.query_params, parser.parse)
        before = row_key(request.query_params["before"]) if request.query_params.get("before") else None
        rows, next_before = search(filters, agent_filter(ctx.viewer), before, organisation=portal.settings.organisation.id)
        params = {k: v for k, v in request.query_params.items() if k != "before"}
        return portal.render(request, "calls.html", ctx, title="Calls", rows=rows, problems=problems, params=params,
                             next_before=next_before, purposes=PURPOSES,
                             agent_locked=agent_filter(ctx.viewer) is not None)

    async def detail(request: Request, ctx: Ctx) -> Response:
        call_id = request.path_params["call_id"]
        details = call_details(portal, call_id)
        # Another agent's call answers exactly as a call that does not exist.
        if details is None or not may_see_call(ctx.viewer, details["agent"]):
            return portal.refuse(request, ctx, f"No call {call_id} that you may see.", status=404)
        from livecall_ari.portal.coaching import feedback_for

        return portal.render(request, "call.html", ctx, title=f"Call {call_id}", call=details,
                             feedback=feedback_for([row_id(r) for r in details["recordings"]]))

    async def objection(request: Request, ctx: Ctx) -> Response:
        """The call's other party said "don't call me again" (PECR reg 21(1)(a)): on the
        objection list at once. An agent only for their own connected call; nobody removes one here."""
        from urllib.parse import quote

        from starlette.responses import RedirectResponse

        from livecall_ari.portal.web import secure
        from livecall_ari.screening.agent_objections import GatedCall, agent_objection
        from livecall_ari.screening.services import list_files

        call_id = request.path_params["call_id"]
        row = (GateDecision.select().where((GateDecision.call_id == call_id) & (GateDecision.organisation == organisation))
               .order_by(pk(GateDecision).desc()).first())
        if row is None or not may_see_call(ctx.viewer, str(row.agent)):
            return portal.refuse(request, ctx, f"No call {call_id} that you may see.", status=404)
        call = GatedCall(str(row.call_id), str(row.agent), str(row.decision), str(row.number))
        # Who objects for whom: an agent as themselves; a supervisor or admin for the call's agent.
        agent = call.agent if can(ctx.viewer, "calls.view_all") else ctx.viewer.extension
        verdict = agent_objection(call, agent, portal.clock())
        parsed = parser.parse(call.number)
        if not verdict.allowed or parsed is None:
            return portal.refuse(request, ctx, f"No objection recorded: {verdict.why or 'the call has no number'}.", status=409)
        reason = (f"the person called said they do not want our calls; recorded in the portal by {ctx.viewer.role} "
                  f"{ctx.viewer.username} for call {call_id}")
        record = list_files(portal.app).store.add_objection(organisation, parsed.key, portal.clock(), ctx.viewer.username, reason)
        message = f"Objection {record.id} recorded for {parsed.e164}: it will not be called again for marketing."
        return secure(RedirectResponse(f"/calls/{quote(call_id, safe='')}?message={quote(message)}", status_code=303))

    organisation = portal.settings.organisation.id
    return [
        Route("/calls", portal.page("calls.view", listing)),
        Route("/calls/{call_id}", portal.page("calls.view", detail)),
        Route("/calls/{call_id}/objection", portal.page("calls.object", objection), methods=["POST"]),
    ]
