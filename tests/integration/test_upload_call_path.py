"""The portal's work never delays a call decision: `livecall serve` runs the portal in a process
of its own, and calls through the gate's FastAGI and Stasis entries set up as fast while the
portal imports a large TPS upload as without it (issue 16)."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import until
from tests.integration.harness import SandboxInfo, load_fresh_lists, open_for_marketing
from tests.integration.uploads import (
    Uploader, add_admin, agi_decision_ms, percentile, place_calls, portal_pid, write_tps_file,
)

UPLOAD_MB = 40  # big enough to take the web process seconds to take in and import, small enough for CI


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def last_decision_id(service: Any) -> int:
    return int(service.rows("SELECT COALESCE(MAX(id), 0) AS top FROM gate_decisions")[0]["top"])


def decisions_us(service: Any, after_id: int, upto_id: int) -> list[int]:
    """The gate's own decision times of the calls' decisions in (after_id, upto_id]."""
    rows = service.rows("SELECT elapsed_us FROM gate_decisions WHERE id > ? AND id <= ? AND agent != 'probe'",
                        (after_id, upto_id))
    return [int(r["elapsed_us"]) for r in rows]


def test_calls_are_decided_as_fast_while_the_portal_imports_a_large_upload(sandbox: SandboxInfo, make_service: Any,
                                                                          tmp_path: Path) -> None:
    from livecall_ari.config import load

    service = make_service(**open_for_marketing(tmp_path))  # agent 1003 makes marketing calls
    load_fresh_lists(service, tmp_path)
    web, agi = load().web, load().fastagi
    base = f"http://{web.host}:{web.port}"
    until(lambda: _answers(f"{base}/healthz"), timeout=30, what="the portal")
    assert service.proc is not None
    web_pid = portal_pid(service.proc.pid)
    assert web_pid is not None and web_pid != service.proc.pid  # the portal is not in the gate's process
    add_admin({**os.environ, **service.env})
    upload = Path(tempfile.mkdtemp(prefix="upload-", dir=tmp_path)) / "tps-bench.txt"
    count = write_tps_file(upload, UPLOAD_MB)
    passwords = {agent: sandbox.password(agent) for agent in ("1002", "1003")}

    place_calls(sandbox.data["sip"], passwords, 2, 2)  # warm up both entries
    before = last_decision_id(service)
    quiet = place_calls(sandbox.data["sip"], passwords, 10, 5)
    quiet_agi = agi_decision_ms(agi.port, agi.secret, 60)
    during_id = last_decision_id(service)
    uploader = Uploader(base, upload, niceness=0).start()  # as fast as it goes: the hardest case
    assert uploader.first_started.wait(30)
    busy = place_calls(sandbox.data["sip"], passwords, 10, 5)
    busy_agi = agi_decision_ms(agi.port, agi.secret, 60)
    uploader.stop()

    assert uploader.statuses and set(uploader.statuses) == {200}, uploader.statuses
    assert sum(uploader.seconds) > 1.0  # the calls really ran beside an upload
    quiet_pdd = quiet["fastagi"] + quiet["stasis"]
    busy_pdd = busy["fastagi"] + busy["stasis"]
    # Apart from the portal, only CPU contention on a shared 2-core machine remains (with the
    # portal in the gate's loop, one run of this test had the median at +17 ms).
    shown = (sorted(quiet_pdd), sorted(busy_pdd))
    assert statistics.median(busy_pdd) <= statistics.median(quiet_pdd) + 8, shown
    assert percentile(busy_pdd, 95) <= percentile(quiet_pdd, 95) + 30, shown
    # The decision as Asterisk waits for it (FastAGI request to answer, no Asterisk in between).
    assert percentile(busy_agi, 95) <= percentile(quiet_agi, 95) + 15, (sorted(quiet_agi), sorted(busy_agi))
    quiet_us, busy_us = decisions_us(service, before, during_id), decisions_us(service, during_id, 10**9)
    assert len(quiet_us) == 20 and len(busy_us) == 20
    assert percentile(busy_us, 95) <= percentile(quiet_us, 95) + 20_000
    from tests.integration.uploads import ADMIN  # the import was the admin's, and it is in force

    rows = service.rows("SELECT count, imported_by FROM screening_list_versions WHERE list_name = 'tps' ORDER BY id DESC LIMIT 1")
    assert rows == [{"count": count, "imported_by": ADMIN}]
