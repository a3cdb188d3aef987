"""Lists: TPS/CTPS uploads with their import report, list status and freshness, and the
organisation's objections and consents, added and withdrawn with their evidence.

An upload is imported exactly as ``livecall lists import`` does (screening/lists.py: a new
version switched in by one commit, the list in force untouched when refused), in a worker
thread of the web process (never the gate's: web/process.py), streamed to a private temporary
file on the way and never held in memory whole. Every change is audited: imports here,
objections and consents by the screening store itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from livecall_ari.portal.core import list_freshness
from livecall_ari.portal.web import NOT_A_NUMBER, Ctx, FormState, Forms, Portal, field_text, secure

SHOWN_BAD_LINES = 50
# The paths that take a file upload: held to [web] max_upload_mb, not max_body_kb (web/limits.py).
UPLOAD_PATHS = frozenset({"/lists/import"})


def safe_name(name: str) -> str:
    """The uploaded file's own name (its date tells the snapshot), reduced to a harmless one."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name or "upload.txt").name).lstrip(".")
    return base[:100] or "upload.txt"


def copy_private(upload: UploadFile, target: Path) -> None:
    """Copy the upload (already spooled to a temporary file) to ``target``, mode 0600, a block at
    a time: the file is never held in memory whole."""
    upload.file.seek(0)
    with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)


def wants_fragment(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


def routes(portal: Portal) -> list[BaseRoute]:
    from livecall_ari.protection import audit
    from livecall_ari.screening.core import CONSENT_SCOPES
    from livecall_ari.screening.lists import LIST_NAMES, ImportRefused, ImportReport, ShrinkRefused
    from livecall_ari.screening.numbers import NumberParser
    from livecall_ari.screening.services import list_files

    settings = portal.settings
    parser = NumberParser(settings.gate.outside_line_prefix)
    organisation = settings.organisation.id

    def status() -> dict[str, Any]:
        from zoneinfo import ZoneInfo

        store = list_files(portal.app).store
        today = portal.clock().astimezone(ZoneInfo(settings.screening.timezone)).date()
        current = store.current_versions()
        lists = {}
        for name in LIST_NAMES:
            row = current.get(name)
            snapshot = dt.date.fromisoformat(str(row.snapshot_date)) if row is not None else None
            verdict, age = list_freshness(snapshot, today, settings.screening.max_list_age_days)
            lists[name] = {"row": row, "verdict": verdict, "age": age, "history": store.versions(name)[-5:][::-1]}
        return {"lists": lists, "max_age": settings.screening.max_list_age_days,
                "max_shrink": settings.screening.max_shrink_percent, "max_upload_mb": settings.web.max_upload_mb,
                "objections": store.objections(organisation)[-200:][::-1],
                "consents": [c for c in store.consents(organisation) if c.withdrawn_at is None][-200:][::-1]}

    async def page(request: Request, ctx: Ctx, code: int = 200, **extra: Any) -> Response:
        return portal.render(request, "lists.html", ctx, status=code, title="Lists", scopes=CONSENT_SCOPES, names=LIST_NAMES,
                             message=request.query_params.get("message", ""), report=None, refused=None,
                             **({"problem": ""} | status() | extra))

    async def show(request: Request, ctx: Ctx) -> Response:
        return await page(request, ctx)

    async def upload(request: Request, ctx: Ctx) -> Response:
        assert ctx.form is not None
        name = field_text(ctx, "list")
        upload_file = ctx.form.get("file")
        refused: dict[str, Any] | None = None
        report = None
        if name not in LIST_NAMES or not isinstance(upload_file, UploadFile):
            refused = {"message": "Choose the list (TPS or CTPS) and a file.", "bad": []}
        else:
            # The web process's temporary folder is private (web/server.py); mkdtemp makes 0700.
            workdir = Path(tempfile.mkdtemp(prefix="livecall-upload-"))
            source = workdir / safe_name(upload_file.filename or "")
            try:
                await asyncio.to_thread(copy_private, upload_file, source)
                list_date = field_text(ctx, "list_date")
                files = list_files(portal.app)

                def audited(done: ImportReport) -> None:  # in the transaction that puts it in force
                    audit.append(ctx.viewer.username, "list.import", f"list:{name}", {
                        "version": done.version, "file": source.name, "kind": done.kind, "count": done.count,
                        "added": done.added, "removed": done.removed, "snapshot_date": done.snapshot_date.isoformat(),
                        "via": "portal",
                    })

                report = await asyncio.to_thread(
                    files.import_file, name, source, delta=field_text(ctx, "kind") == "delta",
                    list_date=dt.date.fromisoformat(list_date) if list_date else None, now=portal.clock(),
                    by=ctx.viewer.username, on_commit=audited, allow_shrink=field_text(ctx, "allow_shrink") == "yes",
                )
            except ImportRefused as exc:
                refused = {"message": str(exc).replace(str(source), source.name), "bad": exc.bad[:SHOWN_BAD_LINES],
                           "shrink": isinstance(exc, ShrinkRefused)}
            except ValueError as exc:
                refused = {"message": f"Not imported: {exc}", "bad": []}
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        values: dict[str, Any] = {"report": report, "refused": refused, "shown_bad": SHOWN_BAD_LINES,
                  "file_name": getattr(upload_file, "filename", "")}
        if wants_fragment(request):
            body = portal.env.get_template("_import_report.html").render(**values)
            return secure(HTMLResponse(body, status_code=200 if refused is None else 422))
        return await page(request, ctx, **values)

    def back(message: str) -> Response:
        from urllib.parse import quote

        return secure(RedirectResponse(f"/lists?message={quote(message)}", status_code=303))

    def number_of(ctx: Ctx) -> tuple[int, str] | None:
        parsed = parser.parse(field_text(ctx, "number"))
        return (parsed.key, parsed.e164) if parsed is not None else None

    async def refused(request: Request, ctx: Ctx, form: str, state: FormState) -> Response:
        """The page again with the refused form as it was typed and each problem beside its field."""
        return await page(request, ctx, 422, forms=Forms({form: state}),
                          problem="Nothing changed: " + " ".join(state.errors.values()))

    async def objection(request: Request, ctx: Ctx) -> Response:
        found = number_of(ctx)
        adding = field_text(ctx, "action") != "remove"
        reason = field_text(ctx, "reason")
        if adding and (found is None or not reason):
            errors = {"number": NOT_A_NUMBER} if found is None else {}
            if not reason:
                errors["reason"] = "Give the evidence: what the person said, when and where."
            return await refused(request, ctx, "objection", FormState.of(ctx, ("number", "reason"), **errors))
        if found is None:
            return back("Not a valid telephone number: nothing changed.")
        key, e164 = found
        store = list_files(portal.app).store
        if not adding:
            removed = store.remove_objection(organisation, key, portal.clock(), ctx.viewer.username)
            return back(f"{e164} taken off the objection list." if removed else f"{e164} was not on the objection list.")
        record = store.add_objection(organisation, key, portal.clock(), ctx.viewer.username, reason)
        return back(f"Objection {record.id} recorded for {e164}.")

    async def consent(request: Request, ctx: Ctx) -> Response:
        found = number_of(ctx)
        evidence, scope = field_text(ctx, "evidence"), field_text(ctx, "scope")
        adding = field_text(ctx, "action") != "withdraw"
        if adding and (found is None or not evidence or scope not in CONSENT_SCOPES):
            errors = {"number": NOT_A_NUMBER} if found is None else {}
            if not evidence:
                errors["evidence"] = "Give the evidence: how and when the consent was given."
            if scope not in CONSENT_SCOPES:
                errors["scope"] = f"Choose a scope: {', '.join(CONSENT_SCOPES)}."
            return await refused(request, ctx, "consent", FormState.of(ctx, ("number", "evidence", "scope"), **errors))
        if found is None:
            return back("Not a valid telephone number: nothing changed.")
        key, e164 = found
        store = list_files(portal.app).store
        if not adding:
            reason = field_text(ctx, "reason") or "withdrawn"
            n = store.withdraw_consent(organisation, key, portal.clock(), ctx.viewer.username, reason)
            return back(f"Consent of {e164} withdrawn." if n else f"{e164} had no consent in force.")
        record = store.add_consent(organisation, key, portal.clock(), ctx.viewer.username, evidence, scope)
        return back(f"Consent {record.id} recorded for {e164} ({scope}).")

    return [
        Route("/lists", portal.page("lists.view", show)),
        Route("/lists/import", portal.page("lists.change", upload), methods=["POST"]),
        Route("/lists/objections", portal.page("lists.change", objection), methods=["POST"]),
        Route("/lists/consents", portal.page("lists.change", consent), methods=["POST"]),
    ]
