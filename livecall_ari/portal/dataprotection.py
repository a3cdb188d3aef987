"""Data protection in the portal: subject access requests and their deadlines (with the export
zip), erasure and its certificate, the retention policy and legal holds, the breach register
with its 72-hour clock, and the audit trail. Each action calls the same protection/ functions
as the ``livecall dsar|erase|retention|breach|audit`` commands, with the portal user as actor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from livecall_ari.portal.core import row_key
from livecall_ari.portal import formats
from livecall_ari.portal.web import NOT_A_NUMBER, Ctx, FormState, Forms, Portal, field_text, secure
from livecall_ari.objects.plugin import store_from_settings
from livecall_ari.recording.paths import RecordingsFolder

AUDIT_PAGE = 100
BREACH_FIELDS = ("title", "aware_at", "nature", "categories", "subjects", "records", "consequences", "measures", "notifiable")


def _london_time(text: str) -> dt.datetime | None:
    from zoneinfo import ZoneInfo

    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo("Europe/London"))


def audit_subjects(text: str, parse_number: Callable[[str], Any]) -> list[str]:
    """The audit subjects a search means: ``kind:value`` as given (a number in it normalised), a
    telephone number as people write it (``020 7946 0014``, ``+44 20 7946 0014``) as its
    ``number:+44…`` subject, anything else as a call, recording or agent of that name."""
    kind, _, value = text.partition(":")
    if value and kind.isalpha():
        parsed = parse_number(value) if kind == "number" else None
        return [f"number:{parsed.e164}" if parsed is not None else text]
    parsed = parse_number(text)
    if parsed is not None:
        return [f"number:{parsed.e164}"]
    return [text, f"call:{text}", f"recording:{text}", f"agent:{text}"]


def detail_pairs(details: str) -> list[tuple[str, str]]:
    """An entry's details (canonical JSON) as name and value lines a narrow column can wrap."""
    try:
        found = json.loads(details or "{}")
    except ValueError:
        return [("", details)]
    if not isinstance(found, dict):
        return [("", details)]
    return [(str(k), v if isinstance(v, str) else json.dumps(v, separators=(", ", ": "))) for k, v in found.items()]


def routes(portal: Portal) -> list[BaseRoute]:
    from livecall_ari.protection import audit, breaches
    from livecall_ari.protection.core import london_date
    from livecall_ari.protection.models import Breach, DsarRequest, ErasureJob, LegalHoldRecord, RetentionRun
    from livecall_ari.protection.retention import HOLD_KINDS, add_hold, release_hold
    from livecall_ari.screening.numbers import NumberParser

    settings = portal.settings
    parser = NumberParser(settings.gate.outside_line_prefix)

    # This organisation's rows, and those from before rows had one (several organisations'
    # services may share a database: each portal shows its own).
    ours = [settings.organisation.id, ""]

    def our_request(request: Request) -> Any:
        return DsarRequest.get_or_none((DsarRequest.id == row_key(request.path_params["request_id"]))
                                       & DsarRequest.organisation.in_(ours))

    def back(message: str, anchor: str = "") -> Response:
        return secure(RedirectResponse(f"/protection?message={quote(message)}{anchor}", status_code=303))

    def e164(ctx: Ctx) -> str | None:
        parsed = parser.parse(field_text(ctx, "number"))
        return parsed.e164 if parsed is not None else None

    async def overview(request: Request, ctx: Ctx, code: int = 200, forms: Forms | None = None) -> Response:
        now = portal.clock()
        today = london_date(now)
        requests = []
        for r in DsarRequest.select().where(DsarRequest.organisation.in_(ours)).order_by(DsarRequest.status != "open", DsarRequest.due_on, DsarRequest.id).limit(200):
            due = dt.date.fromisoformat(str(r.due_on))
            left = (due - today).days
            state = str(r.status) if r.status != "open" else ("overdue" if left < 0 else f"open, {left} days left")
            requests.append({"row": r, "state": state, "urgent": r.status == "open" and left < 7})
        return portal.render(
            request, "protection.html", ctx, status=code, title="Data protection",
            message=request.query_params.get("message", "") if forms is None else "", forms=forms or Forms(),
            problem="Nothing changed: " + " ".join(e for s in forms.values() for e in s.errors.values()) if forms else "",
            requests=requests, hold_kinds=HOLD_KINDS,
            holds=list(LegalHoldRecord.select().where(LegalHoldRecord.organisation.in_(ours))
                       .order_by(LegalHoldRecord.released_at.is_null(False), LegalHoldRecord.id.desc()).limit(100)),
            retention=settings.protection.retention,
            runs=list(RetentionRun.select().where(RetentionRun.organisation.in_(ours)).order_by(RetentionRun.id.desc()).limit(5)),
            breaches=[breaches.as_dict(b, now) for b in Breach.select().where(Breach.organisation.in_(ours)).order_by(Breach.id.desc()).limit(100)],
            erasures=list(ErasureJob.select().where(ErasureJob.organisation.in_(ours)).order_by(ErasureJob.id.desc()).limit(50)),
        )

    async def dsar_log(request: Request, ctx: Ctx) -> Response:
        from livecall_ari.protection.dsar import log_request

        number = e164(ctx)
        received = _london_time(field_text(ctx, "received")) if field_text(ctx, "received") else portal.clock()
        if number is None or received is None:
            errors = {"number": NOT_A_NUMBER} if number is None else {}
            if received is None:
                errors["received"] = "The date received is a date (YYYY-MM-DD)."
            return await overview(request, ctx, 422, Forms(dsar=FormState.of(ctx, ("number", "received"), **errors)))
        row = log_request(settings, number, received, ctx.viewer.username)
        return back(f"Request {row.id} for {number} logged: due {formats.london_date(row.due_on)}.")

    async def dsar_export(request: Request, ctx: Ctx) -> Response:
        from livecall_ari.protection.crypto import KeyFileError, recording_key_path, recording_keys
        from livecall_ari.protection.dsar import export, gather
        from livecall_ari.protection.services import call_basis

        row = our_request(request)
        if row is None:
            return back("No such request.")
        out = settings.data_path() / "dsar-exports" / f"request-{row.id}.zip"
        p = settings.protection
        contact = ", ".join(x for x in (p.dpo_name, p.dpo_email, p.dpo_phone) if x)

        def work() -> dict[str, Any]:
            keys = recording_keys(settings) if recording_key_path(settings).exists() else None
            data = gather(portal.app.database(), str(row.number), lambda c, purpose: call_basis(settings, c, purpose),
                          settings.organisation.id)
            return export(data, out, row, keys, settings.organisation.name, contact, portal.clock(), ctx.viewer.username,
                          folder=RecordingsFolder.from_settings(settings), objects=store_from_settings(settings))

        try:
            manifest = await asyncio.to_thread(work)
        except KeyFileError as exc:
            return back(f"Export failed: {exc}")
        return back(f"Request {row.id} exported: {len(manifest['files'])} files.")

    async def dsar_download(request: Request, ctx: Ctx) -> Response:
        row = our_request(request)
        if row is None or not row.export_file or not Path(str(row.export_file)).is_file():
            return portal.refuse(request, ctx, "No export for this request yet.", status=404)
        audit.append(ctx.viewer.username, "dsar.download", audit.subject_for_number(str(row.number)), {"request": int(row.id)})
        return secure(FileResponse(str(row.export_file), media_type="application/zip",
                                   filename=f"subject-access-{row.id}.zip"))

    async def erase(request: Request, ctx: Ctx) -> Response:
        from livecall_ari import config
        from livecall_ari.protection.erasure import Erasure, ErasureRefused
        from livecall_ari.protection.services import number_key
        from livecall_ari.screening.services import list_files

        number = e164(ctx)
        if number is None:
            return back("Not a valid telephone number: nothing erased.")
        if field_text(ctx, "confirm") != number:
            return back(f"To erase, type the number exactly as {number} in the confirmation box.")

        def work() -> Any:
            runner = Erasure(portal.app.database(), number_key(settings), settings.data_path() / "erasure-certificates",
                             list_files(portal.app).store, ctx.viewer.username, settings.organisation.name,
                             folder=RecordingsFolder.from_settings(settings), objects=store_from_settings(settings),
                             organisation_id=settings.organisation.id)
            return runner.run(number, portal.clock())

        try:
            result = await asyncio.to_thread(work)
        except (ErasureRefused, config.ConfigError) as exc:
            return back(f"Not erased: {exc}")
        return back(f"Erasure {result.job} done; its certificate is below.")

    async def certificate(request: Request, ctx: Ctx) -> Response:
        job = ErasureJob.get_or_none((ErasureJob.id == row_key(request.path_params["job_id"])) & ErasureJob.organisation.in_(ours))
        if job is None or not job.certificate or not Path(str(job.certificate)).is_file():
            return portal.refuse(request, ctx, "No certificate for this erasure.", status=404)
        return secure(FileResponse(str(job.certificate), media_type="application/json", filename=f"erasure-{job.id}.json"))

    async def hold(request: Request, ctx: Ctx) -> Response:
        try:
            if field_text(ctx, "action") == "release":
                hold_id = int(field_text(ctx, "hold") or 0)
                if LegalHoldRecord.get_or_none((LegalHoldRecord.id == hold_id) & LegalHoldRecord.organisation.in_(ours)) is None:
                    return back(f"No legal hold {hold_id} in force.")
                row = release_hold(hold_id, ctx.viewer.username, portal.clock())
                return back(f"Hold {row.id} released.")
            kind, target = field_text(ctx, "kind"), field_text(ctx, "target")
            if kind == "number":
                parsed = parser.parse(target)
                target = parsed.e164 if parsed is not None else ""
                if not target:
                    return back("Not a valid telephone number: no hold placed.")
            row = add_hold(kind, target, field_text(ctx, "reason"), ctx.viewer.username, portal.clock(), settings.organisation.id)
        except ValueError as exc:
            return back(f"Nothing changed: {exc}")
        return back(f"Legal hold {row.id} on {kind} {target} placed.")

    async def retention_preview(request: Request, ctx: Ctx) -> Response:
        from livecall_ari.protection.retention import run_retention

        result = await asyncio.to_thread(run_retention, portal.app, portal.clock(), dry_run=True, actor=ctx.viewer.username)
        due = result.deleted_counts()
        return back(f"Retention preview: {due['recordings']} recordings and {due['calls']} calls are due; "
                    f"{result.held} kept by legal holds. Nothing was deleted.")

    async def breach_add(request: Request, ctx: Ctx) -> Response:
        aware = _london_time(field_text(ctx, "aware_at")) if field_text(ctx, "aware_at") else portal.clock()
        title, nature = field_text(ctx, "title"), field_text(ctx, "nature")
        counts = {n: field_text(ctx, n) or "0" for n in ("subjects", "records")}
        errors = {n: "A whole number (an estimate is fine)." for n, v in counts.items() if not v.isdigit()}
        if not title:
            errors["title"] = "Give the breach a title."
        if not nature:
            errors["nature"] = "Say what happened."
        if aware is None:
            errors["aware_at"] = "When you became aware: a date and time (London)."
        if errors or aware is None:
            return await overview(request, ctx, 422, Forms(breach=FormState.of(ctx, BREACH_FIELDS, **errors)))
        subjects, records = int(counts["subjects"]), int(counts["records"])
        facts = breaches.BreachFacts(title, aware, nature, categories=field_text(ctx, "categories"), subjects=subjects,
                                     records=records, consequences=field_text(ctx, "consequences"),
                                     measures=field_text(ctx, "measures"), notifiable=field_text(ctx, "notifiable") != "no")
        row = breaches.add_breach(facts, ctx.viewer.username, portal.clock(), settings.organisation.id)
        if not facts.notifiable:
            return back(f"Breach {row.id} recorded as not notifiable: nothing to report to the ICO.")
        return back(f"Breach {row.id} recorded: report to the ICO by {formats.london_datetime(breaches.clock(row, portal.clock()).deadline)}.")

    async def breach_reported(request: Request, ctx: Ctx) -> Response:
        breach_id = row_key(request.path_params["breach_id"]) or 0
        if Breach.get_or_none((Breach.id == breach_id) & Breach.organisation.in_(ours)) is None:
            return back(f"No breach {breach_id} in the register.")
        try:
            row = breaches.mark_reported(breach_id, portal.clock(), field_text(ctx, "reference"),
                                         ctx.viewer.username)
        except LookupError as exc:
            return back(str(exc))
        return back(f"Breach {row.id} marked as reported to the ICO.")

    async def trail(request: Request, ctx: Ctx) -> Response:
        from livecall_ari.protection.models import AuditEntry

        subject = request.query_params.get("subject", "").strip()
        query = AuditEntry.select().where(AuditEntry.organisation.in_(ours)).order_by(AuditEntry.seq.desc())
        if subject:
            query = query.where(AuditEntry.subject.in_(audit_subjects(subject, parser.parse)))
        try:
            before = int(request.query_params.get("before", "0"))
        except ValueError:
            before = 0
        if before:
            query = query.where(AuditEntry.seq < before)
        rows = list(query.limit(AUDIT_PAGE + 1))
        report = audit.verify() if request.query_params.get("verify") else None
        return portal.render(request, "audit.html", ctx, title="Audit trail", rows=rows[:AUDIT_PAGE], subject=subject,
                             details={int(e.seq): detail_pairs(str(e.details)) for e in rows[:AUDIT_PAGE]},
                             next_before=int(rows[AUDIT_PAGE - 1].seq) if len(rows) > AUDIT_PAGE else None, report=report)

    manage, view = "protection.manage", "protection.view"
    return [
        Route("/protection", portal.page(view, overview)),
        Route("/protection/dsar", portal.page(manage, dsar_log), methods=["POST"]),
        Route("/protection/dsar/{request_id:int}/export", portal.page(manage, dsar_export), methods=["POST"]),
        Route("/protection/dsar/{request_id:int}/download", portal.page(manage, dsar_download)),
        Route("/protection/erase", portal.page("protection.erase", erase), methods=["POST"]),
        Route("/protection/erasures/{job_id:int}/certificate", portal.page(view, certificate)),
        Route("/protection/holds", portal.page(manage, hold), methods=["POST"]),
        Route("/protection/retention/preview", portal.page(manage, retention_preview), methods=["POST"]),
        Route("/protection/breaches", portal.page(manage, breach_add), methods=["POST"]),
        Route("/protection/breaches/{breach_id:int}/reported", portal.page(manage, breach_reported), methods=["POST"]),
        Route("/audit", portal.page("audit.view", trail)),
    ]
