"""Inbound calls against the sandbox: the simulated PSTN rings one of the PBX's DIDs, the caller
hears the inbound notice, the call reaches the destination's phone, the recording is kept with
its basis and retention, and it is the caller's data: in the portal, in a subject access export,
gone after erasure."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import subprocess
import zipfile
from contextlib import closing
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import until
from tests.integration import audio
from tests.integration.harness import LIVECALL, SandboxInfo, Service, answering_phone, livecall

pytestmark = pytest.mark.sandbox

PASSWORD = "a long enough password"
# These tests read MixMonitor's WAVs as recorded (compaction and sealing have their own tests).
AS_RECORDED = {"LIVECALL_RECORDING_FORMAT": "wav", "LIVECALL_PROTECTION_ENCRYPT_RECORDINGS": "false"}
AGENT = "1001"
DID = "0113496" + AGENT  # the sandbox's DIDs ring the desk phone of their last four digits


def caller_number() -> str:
    return f"0207946{random.randrange(1000, 10000):04d}"


def e164(national: str) -> str:
    return "+44" + national[1:]


def host(sandbox: SandboxInfo, asterisk_path: str) -> Path:
    return Path(sandbox.data["chroot"]) / asterisk_path.lstrip("/")


def prompt(sandbox: SandboxInfo, name: str) -> audio.Samples:
    return audio.read_ulaw(Path(sandbox.data["chroot"]) / "usr/share/asterisk/sounds" / f"{name}.ulaw")


def notice_found(haystack: audio.Samples, notice: audio.Samples) -> float:
    """The share of the notice's seconds found, each near its place, at the start of ``haystack``.
    Second by second, because on a loaded machine a recording's first frames can come unevenly
    and shift the rest by a few tens of ms: one correlation over the whole prompt then drops,
    though every word is there. Audio without the notice scores 0."""
    step, hits, chunks = audio.RATE, 0, 0
    for start in range(0, len(notice) - step + 1, step):
        chunks += 1
        r, _ = audio.best_match(haystack[max(0, start - step // 2):], notice[start:start + step], window_ms=20)
        hits += r > 0.8
    return hits / chunks


def ring(sandbox: SandboxInfo, caller: str, hold_ms: int) -> None:
    """The PSTN calls the DID; the agent's phone answers and hangs up after ``hold_ms``."""
    phone = answering_phone(sandbox, AGENT, hang_up_after_ms=hold_ms)
    livecall("sandbox", "ring", DID, "--caller", caller)
    result = phone.wait(timeout=40)
    assert result.returncode == 0, result.errors


def finished_recording(service: Service, number: str) -> dict[str, Any]:
    rows = until(lambda: [r for r in service.rows("SELECT * FROM recordings WHERE number = ?", (number,))
                          if r["state"] != "recording"], timeout=30, what="the inbound recording to be finished")
    [row] = rows
    return row


def _add_user(env: dict[str, str], name: str, role: str, extension: str = "") -> None:
    args = [*LIVECALL, "users", "add", name, "--role", role, "--password-stdin"] + (["--extension", extension] if extension else [])
    done = subprocess.run(args, input=PASSWORD + "\n", capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert done.returncode == 0, done.stderr


def _portal(url: str, user: str) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=True, timeout=10)
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None, form.text
    logged_in = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": token.group(1), "next": "/calls"})
    assert logged_in.status_code == 200, (user, logged_in.status_code)
    return client


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_the_caller_hears_the_inbound_notice_and_reaches_the_destination_and_the_call_is_recorded(
    sandbox: SandboxInfo, make_service: Any
) -> None:
    service: Service = make_service(**AS_RECORDED)
    caller = caller_number()
    before = set(sandbox.heard_dir.glob(f"inbound-{DID}-*-heard.wav"))
    hold_s = 3

    ring(sandbox, caller, hold_s * 1000)

    notice = prompt(sandbox, "livecall/inbound-notice")
    notice_s = len(notice) / audio.RATE
    # What the caller heard starts with the inbound notice.
    [heard_file] = until(lambda: set(sandbox.heard_dir.glob(f"inbound-{DID}-*-heard.wav")) - before,
                         what="the caller's recording of what it heard")
    until(lambda: audio.samples_when_complete(heard_file) > notice_s * audio.RATE, what="the notice in it")
    assert notice_found(audio.read_wav(heard_file), notice) >= 0.7

    # The recording: the caller's number, the agent who answered, its basis and retention.
    row = finished_recording(service, e164(caller))
    assert (row["direction"], row["purpose"], row["agent"], row["state"]) == ("inbound", "inbound", AGENT, "complete")
    # Kept as [protection] retention says (recordings/*=365 unless the settings name inbound).
    started = dt.date.fromisoformat(str(row["started_at"])[:10])
    assert row["lawful_basis"] == "legitimate_interests" and row["retention_until"] == str(started + dt.timedelta(days=365))
    mixed_file = host(sandbox, row["file"])
    # It holds the notice (in the leg the caller heard), then the call with the agent.
    heard_leg = audio.read_wav(mixed_file.with_name(mixed_file.stem + "-out.wav"))
    assert notice_found(heard_leg, notice) >= 0.7
    said_leg = audio.read_wav(mixed_file.with_name(mixed_file.stem + "-in.wav"))
    assert notice_found(said_leg, notice) == 0  # the check tells the notice from the caller's words
    assert row["duration_ms"] / 1000 == pytest.approx(notice_s + hold_s, abs=2.0)
    # The call log and the notice's record.
    [call] = [d for d in service.decisions() if d["call_id"] == row["call_id"]]
    assert (call["decision"], call["number"], call["dialled"], call["agent"]) == ("inbound", e164(caller), DID, AGENT)
    [notice_row] = service.rows("SELECT * FROM recording_notices WHERE call_id = ?", (row["call_id"],))
    assert (notice_row["prompt"], notice_row["number"], notice_row["outcome"]) == (
        "livecall/inbound-notice", e164(caller), "heard")


def test_an_inbound_call_is_in_the_portal_in_a_subject_access_export_and_gone_after_erasure(
    sandbox: SandboxInfo, make_service: Any, tmp_path: Path
) -> None:
    from livecall_ari.config import load

    service: Service = make_service(**AS_RECORDED)
    web = load().web
    url = f"http://{web.host}:{web.port}"
    for name, role, ext in (("root", "admin", ""), ("agent1", "agent", AGENT), ("agent2", "agent", "1002")):
        _add_user(service.env, name, role, ext)
    until(lambda: _answers(url), timeout=15, what="the portal")
    caller = caller_number()

    ring(sandbox, caller, 1000)
    row = finished_recording(service, e164(caller))
    call_id = row["call_id"]

    # The portal's calls: the admin and the agent who answered see it as inbound; another agent
    # does not.
    with closing(_portal(url, "root")) as admin:
        listing = admin.get("/calls", params={"number": caller})
        assert listing.status_code == 200 and call_id in listing.text and ">inbound<" in listing.text
        only_inbound = admin.get("/calls", params={"decision": "inbound"}).text
        assert call_id in only_inbound and "<option selected>inbound</option>" in only_inbound
        assert call_id not in admin.get("/calls", params={"decision": "allow"}).text
        page = admin.get(f"/calls/{call_id}")
        assert page.status_code == 200 and "inbound" in page.text and e164(caller) in page.text
    with closing(_portal(url, "agent1")) as agent:
        assert call_id in agent.get("/calls").text
    with closing(_portal(url, "agent2")) as other:
        assert call_id not in other.get("/calls").text
        assert other.get(f"/calls/{call_id}").status_code == 404

    # A subject access request for the caller's number finds the call and its recording.
    export = tmp_path / "sar.zip"
    livecall("dsar", "export", e164(caller), "--out", str(export), env=service.env)
    with zipfile.ZipFile(export) as z:
        names = z.namelist()
        text = "".join(z.read(n).decode(errors="replace") for n in names if n.endswith((".json", ".csv", ".txt")))
    assert call_id in text, names
    assert any(n.endswith(".wav") for n in names), names

    # Erasure removes the recording's audio and the caller's number.
    audio_file = host(sandbox, row["file"])
    assert audio_file.exists()
    livecall("erase", e164(caller), "--yes", env=service.env)
    assert not audio_file.exists()
    assert service.rows("SELECT * FROM recordings WHERE number = ?", (e164(caller),)) == []
    assert service.rows("SELECT * FROM gate_decisions WHERE number = ?", (e164(caller),)) == []
    assert json.dumps(service.rows("SELECT * FROM recording_notices WHERE call_id = ?", (call_id,))).count(e164(caller)) == 0


def test_an_inbound_call_is_on_the_live_board_and_a_supervisor_can_listen_to_it(sandbox: SandboxInfo, make_service: Any) -> None:
    from livecall_ari.config import load
    from livecall_ari.sandbox.sipp import AGENT_HZ
    from tests.integration.supervision_harness import start_party, wait_until_heard

    service: Service = make_service(**AS_RECORDED, LIVECALL_SUPERVISION_SUPERVISORS="2001")
    web = load().web
    url = f"http://{web.host}:{web.port}"
    _add_user(service.env, "lead", "supervisor", "2001")
    until(lambda: _answers(url), timeout=15, what="the portal")
    caller = caller_number()
    # The agent's phone sends a tone (sipp.AGENT_HZ) and stays on the call long enough to listen.
    phone = answering_phone(sandbox, AGENT, timeout=60, hang_up_after_ms=25_000)
    livecall("sandbox", "ring", DID, "--caller", caller)
    with closing(_portal(url, "lead")) as lead:
        def on_board() -> bool:
            page = lead.get("/live").text
            return bool(re.search(rf">{AGENT}<.*?{caller}.*?>inbound<", page, re.S))

        until(on_board, timeout=30, what="the inbound call on the live board with its direction")
    supervisor = start_party("supervisor", "supervision_party.xml", pbx=sandbox.data["sip"], hz=1000, user="2001",
                             password=sandbox.password("2001"), service="*222" + AGENT)
    try:
        wait_until_heard(supervisor, AGENT_HZ, seconds=2, timeout=30, what="the supervisor to hear the agent")
    finally:
        supervisor.cleanup()
    assert phone.wait(timeout=40).returncode == 0
    [session] = service.rows("SELECT * FROM supervision_sessions")
    assert (session["supervisor"], session["agent"], session["mode"]) == ("2001", AGENT, "listen")
    assert session["started_at"] is not None


@pytest.fixture
def inbound_unrecorded(sandbox: SandboxInfo) -> Iterator[None]:
    """The sandbox's dialplan rendered with [recording] inbound_policy = "none", then as before."""
    livecall("sandbox", "up", env={"LIVECALL_RECORDING_INBOUND_POLICY": "none"})
    try:
        yield
    finally:
        livecall("sandbox", "up")


def test_with_inbound_policy_none_the_caller_hears_the_notice_and_nothing_is_recorded(
    sandbox: SandboxInfo, inbound_unrecorded: None, make_service: Any
) -> None:
    assert "MixMonitor" not in sandbox.rx("dialplan show livecall-inbound")
    service: Service = make_service(**AS_RECORDED)
    caller = caller_number()
    before = set(sandbox.heard_dir.glob(f"inbound-{DID}-*-heard.wav"))

    ring(sandbox, caller, 1000)

    [heard_file] = until(lambda: set(sandbox.heard_dir.glob(f"inbound-{DID}-*-heard.wav")) - before,
                         what="the caller's recording of what it heard")
    notice = prompt(sandbox, "livecall/inbound-notice")
    until(lambda: audio.samples_when_complete(heard_file) > len(notice), what="the notice in it")
    assert notice_found(audio.read_wav(heard_file), notice) >= 0.7
    # The call is in the call log with its agent, the notice's record says it played; no recording.
    [call] = until(lambda: [d for d in service.decisions() if d["number"] == e164(caller) and d["agent"]],
                   what="the inbound call's row with its agent")
    assert (call["decision"], call["agent"]) == ("inbound", AGENT)
    [notice_row] = service.rows("SELECT * FROM recording_notices WHERE call_id = ?", (call["call_id"],))
    assert notice_row["outcome"] == "heard"
    # (The service also books older files it finds on disk: only this call's rows matter.)
    assert service.rows("SELECT * FROM recordings WHERE call_id = ? OR number = ?", (call["call_id"], e164(caller))) == []
    assert not list(host(sandbox, "/var/spool/asterisk/monitor/livecall").glob(f"*/*/*/{call['call_id']}*"))
