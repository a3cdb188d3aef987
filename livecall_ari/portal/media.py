"""Recordings in the browser: played with seeking (HTTP Range) and downloaded, each audited.

Audio uploaded to the object store ([storage] backend = "s3", objects/) is read from there
whichever PBX recorded it: a range is a ranged GET, and a sealed object is copied to a
private temporary file and decrypted from it. Otherwise the audio is streamed as it was
recorded, decrypted on the fly when sealed at rest
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

import logging
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.routing import BaseRoute, Route

from livecall_ari.portal.core import (
    ByteRange, PlaybackOnly, RangeNotSatisfiable, can, may_see_call, parse_range, playback_range, row_key, starts_playback,
)
from livecall_ari.portal.web import Ctx, Portal, client_address, secure
from livecall_ari.protection.registry import pk, row_id
from livecall_ari.recording.compact import content_type
from livecall_ari.objects.plugin import store_from_settings
from livecall_ari.objects.services import fetch_to, object_of
from livecall_ari.objects.store import Store, StoreError
from livecall_ari.recording.paths import RecordingsFolder

log = logging.getLogger("livecall.portal")

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


def _temp_file() -> Path:
    """A new private (0600) temporary file."""
    fd, name = tempfile.mkstemp(prefix="livecall-play-")
    os.close(fd)
    return Path(name)


def _drop(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


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

    stores: list[Store] = []

    def object_store() -> Store:
        """The recording store of [storage], built once for this portal."""
        if not stores:
            built = store_from_settings(portal.settings)
            if built is None:
                raise StoreError('recordings are in object storage but [storage] backend is not "s3"')
            stores.append(built)
        return stores[0]

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
        named = PurePosixPath(leg_path(str(row.file), leg))
        stored = object_of(row_id(row), named.name[len(PurePosixPath(str(row.file)).stem):] if leg in LEGS else "")
        fetched: Path | None = None  # a sealed object copied here to decrypt as it streams
        if stored is not None:
            # In the object store (objects/): any PBX's portal plays any PBX's recordings.
            try:
                store = object_store()
                if row.encrypted:
                    fetched = fetch_to(store, stored, _temp_file())
            except StoreError as exc:
                log.error("recording %s: %s", row_id(row), exc)
                return secure(Response("the recording store cannot be reached; try again shortly", status_code=503,
                                       media_type="text/plain"))
            path = fetched
        else:
            confined = RecordingsFolder.from_settings(portal.settings).locate(
                str(named), f"serve recording {row_id(row)} to {ctx.viewer.username}")
            path = None if confined is None else confined.host
            if path is None or not path.is_file():
                return secure(Response("the audio file is missing", status_code=404, media_type="text/plain"))
        key_ring = keys()
        size = plain_size(path, key_ring) if path is not None else int(stored.size_bytes)  # type: ignore[union-attr]
        try:
            wanted = None if download else parse_range(request.headers.get("range"), size)
            if not download:
                # Each role's download rule holds on the server, not only in the page's links.
                wanted = playback_range(wanted, size, can(ctx.viewer, "recordings.download"))
        except RangeNotSatisfiable:
            _drop(fetched)
            return secure(Response(status_code=416, headers={"Content-Range": f"bytes */{size}"}))
        except PlaybackOnly as refused:
            _drop(fetched)
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
                                              f'{"-" + leg if leg in LEGS else ""}{named.suffix or ".wav"}"')
        # The audio's own type (Opus in Ogg or WAV), whether or not it is sealed at rest.
        if path is not None:
            body = byte_stream(path, key_ring, wanted, size)
        else:  # a plain object: the range is a ranged GET on the store
            try:
                body = object_store().read(str(stored.key), *((wanted.start, wanted.end) if wanted else (0, None)))  # type: ignore[union-attr]
            except StoreError as exc:
                log.error("recording %s: %s", row_id(row), exc)
                return secure(Response("the recording store cannot be reached; try again shortly", status_code=503,
                                       media_type="text/plain"))
        response = StreamingResponse(body, status_code=206 if wanted else 200, media_type=content_type(named.name),
                                     headers=headers, background=BackgroundTask(_drop, fetched) if fetched else None)
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
