"""Recordings in the browser: played with seeking (HTTP Range) and downloaded, each audited.

The audio is streamed as it was recorded, decrypted on the fly when sealed at rest
(protection/crypto.py), from the path Asterisk wrote mapped to this host
(``settings.asterisk_root()``), only from inside the recordings folder: a row or a leg file
that leads outside it (a planted symlink) answers 404, with an ERROR in the log (recording.paths).
A request from the first byte is a play (or a download)
starting and goes into the audit trail as ``recording.play`` / ``recording.download`` with the
user; the ranges that follow while the same play seeks do not flood the trail. Another agent's
recording answers 404, as one that does not exist. A role that may play but not download (an
agent) gets ranges of at most ``PLAY_WINDOW`` bytes and no whole file (core.playback_range).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from livecall_ari.portal.core import (
    ByteRange, PlaybackOnly, RangeNotSatisfiable, can, may_see_call, parse_range, playback_range, row_key, starts_playback,
)
from livecall_ari.portal.web import Ctx, Portal, client_address, secure
from livecall_ari.protection.registry import pk, row_id
from livecall_ari.recording.compact import content_type
from livecall_ari.recording.paths import RecordingsFolder

BLOCK = 64 * 1024
LEGS = {"in": "-in", "out": "-out"}


def leg_path(mixed: str, leg: str) -> str:
    """The mixed file, or one leg beside it (recording/services.py names them, in the mixed
    file's format: ``-in.wav`` or ``-in.ogg``), as Asterisk sees it."""
    if leg not in LEGS:
        return mixed
    path = PurePosixPath(mixed)
    return str(path.with_name(path.stem + LEGS[leg] + path.suffix))


def plain_size(path: Path, keys: object) -> int:
    from livecall_ari.protection.crypto import is_encrypted, plaintext_chunks

    if not is_encrypted(path):
        return path.stat().st_size
    return sum(len(block) for block in plaintext_chunks(path, keys))  # type: ignore[arg-type,misc]


def byte_stream(path: Path, keys: object, byte_range: ByteRange | None, size: int) -> Iterator[bytes]:
    """The audio bytes of ``byte_range`` (all of them when None), in blocks."""
    from livecall_ari.protection.crypto import is_encrypted, plaintext_chunks

    start, end = (byte_range.start, byte_range.end) if byte_range else (0, size - 1)
    if not is_encrypted(path):
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0 and (block := f.read(min(BLOCK, left))):
                left -= len(block)
                yield block
        return
    position = 0
    for block in plaintext_chunks(path, keys):  # type: ignore[arg-type]
        block_end = position + len(block)
        if block_end > start and position <= end:
            yield block[max(0, start - position): end - position + 1]
        position = block_end
        if position > end:
            return


def routes(portal: Portal) -> list[BaseRoute]:
    from livecall_ari.protection import audit
    from livecall_ari.recording.models import Recording

    def recording_for(ctx: Ctx, recording_id: str) -> Recording | None:
        key = row_key(recording_id)
        row = None if key is None else Recording.get_or_none(pk(Recording) == key)
        if row is None or row.organisation != portal.settings.organisation.id or not may_see_call(ctx.viewer, str(row.agent)):
            return None
        return row

    def keys() -> object:
        from livecall_ari.protection.crypto import recording_key_path, recording_keys

        return recording_keys(portal.settings) if recording_key_path(portal.settings).exists() else None

    def serve(request: Request, ctx: Ctx, download: bool) -> Response:
        row = recording_for(ctx, request.path_params["recording_id"])
        if row is None:
            return secure(Response("no such recording", status_code=404, media_type="text/plain"))
        if not row.file:
            return secure(Response(f"the audio is gone (recording {row.state})", status_code=410, media_type="text/plain"))
        leg = request.query_params.get("leg", "")
        confined = RecordingsFolder.from_settings(portal.settings).locate(
            leg_path(str(row.file), leg), f"serve recording {row_id(row)} to {ctx.viewer.username}")
        path = None if confined is None else confined.host
        if path is None or not path.is_file():
            return secure(Response("the audio file is missing", status_code=404, media_type="text/plain"))
        key_ring = keys()
        size = plain_size(path, key_ring)
        try:
            wanted = None if download else parse_range(request.headers.get("range"), size)
            if not download:
                # Each role's download rule holds on the server, not only in the page's links.
                wanted = playback_range(wanted, size, can(ctx.viewer, "recordings.download"))
        except RangeNotSatisfiable:
            return secure(Response(status_code=416, headers={"Content-Range": f"bytes */{size}"}))
        except PlaybackOnly as refused:
            return secure(Response(f"{refused}: play it on the call's page", status_code=403, media_type="text/plain"))
        if starts_playback(wanted):
            action = "recording.download" if download else "recording.play"
            audit.append(ctx.viewer.username, action, audit.subject_for_recording(row_id(row)), {
                "call_id": row.call_id, "via": "portal", "role": ctx.viewer.role, "leg": leg or "mixed",
                "address": client_address(request),
            })
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(wanted.length if wanted else size)}
        if wanted is not None:
            headers["Content-Range"] = wanted.content_range(size)
        if download:
            headers["Content-Disposition"] = (f'attachment; filename="recording-{row_id(row)}'
                                              f'{"-" + leg if leg in LEGS else ""}{path.suffix or ".wav"}"')
        # The audio's own type (Opus in Ogg or WAV), whether or not it is sealed at rest.
        response = StreamingResponse(byte_stream(path, key_ring, wanted, size), status_code=206 if wanted else 200,
                                     media_type=content_type(path.name), headers=headers)
        return secure(response)

    async def audio(request: Request, ctx: Ctx) -> Response:
        return serve(request, ctx, download=False)

    async def download(request: Request, ctx: Ctx) -> Response:
        return serve(request, ctx, download=True)

    async def page(request: Request, ctx: Ctx) -> Response:
        row = recording_for(ctx, request.path_params["recording_id"])
        if row is None:
            return portal.refuse(request, ctx, "No such recording that you may see.", status=404)
        return secure(RedirectResponse(f"/calls/{row.call_id}#recording-{row_id(row)}", status_code=303))

    return [
        Route("/recordings/{recording_id}", portal.page("recordings.play", page)),
        Route("/recordings/{recording_id}/audio", portal.page("recordings.play", audio)),
        Route("/recordings/{recording_id}/download", portal.page("recordings.download", download)),
    ]


__all__ = ["routes"]
