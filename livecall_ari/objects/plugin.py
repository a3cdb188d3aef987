"""Wiring of object storage: the store the settings name, and the upload loop that runs in
``livecall serve`` (never on the call path: its work runs in a worker thread)."""

from __future__ import annotations

import asyncio
import json
import logging

from livecall_ari.config import ConfigError, Settings
from livecall_ari.objects.core import Retry
from livecall_ari.objects.services import Uploader
from livecall_ari.objects.store import Store, StoreError, StoreUnavailable

log = logging.getLogger("livecall.objects")
BACKENDS = ("local", "s3")


def store_from_settings(settings: Settings) -> Store | None:
    """The S3 store of ``[storage]``, or None for ``backend = "local"`` (recordings stay where
    Asterisk wrote them). A setting that cannot work is a ConfigError saying which."""
    s = settings.storage
    if s.backend not in BACKENDS:
        raise ConfigError(f"[storage] backend: {s.backend!r} is not one of {', '.join(BACKENDS)}")
    if s.backend == "local":
        return None
    if not s.bucket:
        raise ConfigError("[storage] bucket: empty; name the bucket recordings go to")
    if bool(s.access_key) != bool(s.secret_key):
        raise ConfigError("[storage] access_key and secret_key: give both, or neither (boto3's own credentials)")
    from livecall_ari.objects.s3 import S3Store

    return S3Store(s.endpoint, s.bucket, s.region, s.access_key, s.secret_key)


def build_uploader(settings: Settings) -> Uploader | None:
    """The uploader of this PBX, or None when recordings stay local."""
    from livecall_ari.recording.paths import RecordingsFolder

    store = store_from_settings(settings)
    if store is None:
        return None
    return Uploader(store, RecordingsFolder.from_settings(settings), settings.system_name(), "s3", settings.storage.bucket)


async def upload_loop(uploader: Uploader, stop: asyncio.Event, every: float, batch: int,
                      retry: Retry | None = None) -> None:
    """Upload waiting recordings every ``every`` seconds; while the store is down, wait longer
    each time (``retry``), and say so once when it goes down and once when it is back."""
    loop = asyncio.get_running_loop()
    retry = retry or Retry(first=max(1.0, every), most=60.0)
    down = 0
    while not stop.is_set():
        wait = every
        try:
            counts = await loop.run_in_executor(None, uploader.run_once, batch)
            if down:
                log.warning("%s is reachable again: uploading the recordings kept on this disk", uploader.store.name)
            down = 0
            if any(counts.values()):
                log.info(json.dumps({"event": "recordings_uploaded", **counts}))
                if counts["uploaded"] >= batch:
                    wait = 0  # more are waiting
        except StoreError as exc:
            # Down, or refusing us (credentials, bucket): said once, then tried less and less often.
            down += 1
            wait = max(every, retry.delay(down))
            if down == 1:
                what = "unavailable" if isinstance(exc, StoreUnavailable) else "refused the upload"
                log.error("object store %s, recordings stay on this disk until it is back: %s", what, exc)
        except Exception:
            log.exception("recording upload failed")
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except asyncio.TimeoutError:
            pass
