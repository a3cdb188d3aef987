"""Coaching: supervisors add time-stamped comments and a scorecard to a recording; agents read
the feedback on their own calls; scorecards roll up per agent per month (core.rollup)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from livecall_ari.portal.core import SCORECARD, ScoredCall, agent_filter, check_scores, may_see_call, rollup, row_key
from livecall_ari.portal.models import CoachingComment, Scorecard
from livecall_ari.portal.web import Ctx, Portal, field_text, secure
from livecall_ari.protection.registry import pk, row_id


def feedback_for(recording_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Comments (in the order of the recording) and scorecards of each recording."""
    out: dict[int, dict[str, Any]] = {rid: {"comments": [], "scorecards": []} for rid in recording_ids}
    if not recording_ids:
        return out
    for c in CoachingComment.select().where(CoachingComment.recording.in_(recording_ids)).order_by(
            CoachingComment.offset_ms, CoachingComment.id):
        out[int(c.recording)]["comments"].append(c)
    for s in Scorecard.select().where(Scorecard.recording.in_(recording_ids)).order_by(Scorecard.id):
        out[int(s.recording)]["scorecards"].append({"row": s, "scores": json.loads(str(s.scores))})
    return out


def parse_offset(text: str) -> int:
    """``75.4`` seconds, ``1:15`` or ``0:01:15`` as milliseconds (bad input: 0)."""
    try:
        parts = [float(p) for p in text.strip().split(":")] if text.strip() else [0.0]
    except ValueError:
        return 0
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return max(0, int(seconds * 1000))


def routes(portal: Portal) -> list[BaseRoute]:
    from livecall_ari.protection import audit
    from livecall_ari.recording.models import Recording

    def recording(ctx: Ctx, recording_id: str) -> Recording | None:
        key = row_key(recording_id)
        row = None if key is None else Recording.get_or_none(pk(Recording) == key)
        if row is None or row.organisation != portal.settings.organisation.id:
            return None
        return row if may_see_call(ctx.viewer, str(row.agent)) else None

    def back(row: Recording, message: str) -> Response:
        """Back to the call's page, which shows what was done and puts focus there (a #fragment
        would take focus away from it again)."""
        return secure(RedirectResponse(f"/calls/{quote(str(row.call_id), safe='')}?message={quote(message)}", status_code=303))

    async def comment(request: Request, ctx: Ctx) -> Response:
        row = recording(ctx, request.path_params["recording_id"])
        if row is None:
            return portal.refuse(request, ctx, "No such recording.", status=404)
        text = field_text(ctx, "text")
        if not text:
            return portal.refuse(request, ctx, "A comment needs some text.", status=400)
        offset = parse_offset(field_text(ctx, "offset"))
        c = CoachingComment.create(recording=row_id(row), agent=str(row.agent), author=ctx.viewer.username,
                                   offset_ms=offset, text=text[:4000], created_at=portal.clock().replace(tzinfo=None))
        audit.append(ctx.viewer.username, "coaching.comment", audit.subject_for_recording(row_id(row)),
                     {"comment": int(c.id), "offset_ms": offset})
        return back(row, f"Comment added to recording {row_id(row)} at {offset // 60000}:{offset // 1000 % 60:02d}.")

    async def score(request: Request, ctx: Ctx) -> Response:
        row = recording(ctx, request.path_params["recording_id"])
        if row is None:
            return portal.refuse(request, ctx, "No such recording.", status=404)
        try:
            scores = check_scores({key: field_text(ctx, key) for key, _ in SCORECARD})
        except ValueError as exc:
            return portal.refuse(request, ctx, str(exc), status=400)
        s = Scorecard.create(recording=row_id(row), agent=str(row.agent), author=ctx.viewer.username,
                             scores=json.dumps(scores), note=field_text(ctx, "note")[:4000],
                             created_at=portal.clock().replace(tzinfo=None))
        audit.append(ctx.viewer.username, "coaching.scorecard", audit.subject_for_recording(row_id(row)), {"scorecard": int(s.id)})
        return back(row, f"Scorecard saved for recording {row_id(row)}.")

    async def overview(request: Request, ctx: Ctx) -> Response:
        only = agent_filter(ctx.viewer)
        since = (portal.clock() - dt.timedelta(days=365)).replace(tzinfo=None)
        # Only this organisation's recordings (PBXs of several organisations may share a database).
        ours = Recording.select(pk(Recording)).where(Recording.organisation == portal.settings.organisation.id)
        query = Scorecard.select().where((Scorecard.created_at >= since) & Scorecard.recording.in_(ours))
        if only is not None:
            query = query.where(Scorecard.agent == only)
        cards = list(query.order_by(Scorecard.created_at.desc()))
        periods = rollup(ScoredCall(str(c.agent), _date(c.created_at), json.loads(str(c.scores))) for c in cards)
        comments = CoachingComment.select().where(CoachingComment.recording.in_(ours)).order_by(
            CoachingComment.created_at.desc()).limit(50)
        if only is not None:
            comments = comments.where(CoachingComment.agent == only)
        rec_calls = {row_id(r): str(r.call_id) for r in Recording.select(pk(Recording), Recording.call_id).where(
            pk(Recording).in_([int(c.recording) for c in cards[:50]] + [int(c.recording) for c in comments]))}
        return portal.render(request, "coaching.html", ctx, title="Coaching", periods=periods, criteria=SCORECARD,
                             cards=[(c, json.loads(str(c.scores))) for c in cards[:50]], comments=list(comments),
                             rec_calls=rec_calls)

    return [
        Route("/recordings/{recording_id}/comments", portal.page("coaching.write", comment), methods=["POST"]),
        Route("/recordings/{recording_id}/scorecards", portal.page("coaching.write", score), methods=["POST"]),
        Route("/coaching", portal.page("coaching.view", overview)),
    ]


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.datetime.fromisoformat(str(value)).date()
