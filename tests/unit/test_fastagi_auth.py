"""FastAGI authentication (issue 13), over real loopback sockets: the FastAGI server exactly as
``livecall serve`` builds it (service.build: the gate, recording and supervision handlers on a real
SQLite database), and a client sending header blocks without the secret, with a wrong one and
with the right one. The refused ones run no handler, leave no row, and their log line names the
peer and the script but never the secret or the value offered."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from livecall_ari import config
from livecall_ari.app import App
from livecall_ari.asterisk.render import agi_url, render_all
from livecall_ari.gate.models import GateDecision
from livecall_ari.recording.models import NoticeEvent, Recording
from livecall_ari.service import build

SECRET = "Zq3-unit-test-secret_0123456789"
DIR_ARG = "2026/11/29"


def settings_file(tmp_path: Path, secret: str = SECRET) -> Path:
    """A settings file for a service on its own database, FastAGI on a free port."""
    path = tmp_path / "livecall.toml"
    path.write_text(
        f'data_dir = "{tmp_path}"\n[ari]\npassword = "ari-password-0123456789"\n'
        f'[fastagi]\nport = 0\nsecret = "{secret}"\n'
        f'[gate]\ndecider = "static"\nblock_numbers = ["02079460019"]\n'
        f'[recording]\ndir = "{tmp_path / "recordings"}"\n'
    )
    return path


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(config.load(settings_file(tmp_path), environ={}))
    yield application
    application.close()


def header(target: str | None, args: list[str], where: str = "agi_network_script") -> bytes:
    """A header block as Asterisk 22 sends it: ``agi_network_script`` is the URL's path with its
    query (checked on the sandbox: ``screen?k=...``), ``agi_request`` the whole URL."""
    lines = ["agi_network: yes"]
    if target is not None:
        lines.append(f"agi_network_script: {target}" if where == "agi_network_script" else f"agi_request: agi://127.0.0.1:4573/{target}")
    lines += ["agi_channel: PJSIP/1003-00000001", "agi_uniqueid: 1700000000.1", "agi_extension: 02079460018"]
    lines += [f"agi_arg_{i}: {value}" for i, value in enumerate(args, 1)]
    return ("\n".join(lines) + "\n\n").encode()


async def agi_call(port: int, data: bytes) -> list[str]:
    """Send one request; answer every command with success; the commands, once the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    commands = []
    while line := await asyncio.wait_for(reader.readline(), 5):
        commands.append(line.decode().strip())
        writer.write(b"200 result=1\n")
        await writer.drain()
    writer.close()
    return commands


def serve_requests(app: App, requests: list[bytes]) -> list[list[str]]:
    """Run the service's FastAGI server (as `serve` builds it) and send ``requests`` in turn."""

    async def main() -> list[list[str]]:
        deps = build(app)
        await deps.agi.start()
        try:
            return [await agi_call(deps.agi.port, data) for data in requests]
        finally:
            await deps.agi.close()
            await deps.ari.aclose()

    return asyncio.run(main())


SCRIPTS: dict[str, list[str]] = {
    "screen": ["02079460018", "marketing", "1003", "+442079460000"],
    "recording-start": ["c-forged", "+442079460018", "1003", "marketing", f"/recordings/{DIR_ARG}/c-forged.wav"],
    "recording-notice": ["c-forged", "+442079460018", "livecall/notice", "1700000000", "OK", "2"],
    "supervision": ["authorise", "2001", "1003", "listen"],
}
WRONG = ["", "wrong-secret-0123456789abcdefgh", SECRET[:-1], SECRET + "x", SECRET.upper(), f"{SECRET}&secret={SECRET}"]


def test_requests_without_the_secret_run_no_handler_and_leave_no_trace(app: App, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    requests: list[tuple[str, str | None, bytes]] = []
    for script, args in SCRIPTS.items():
        requests.append((script, None, header(script, args)))  # no query at all
        requests.append((script, None, header(f"{script}?other=1", args)))
        for offered in WRONG:
            requests.append((script, offered, header(f"{script}?secret={offered}", args)))
            requests.append((script, offered, header(f"{script}?secret={offered}", args, where="agi_request")))
    # The secret given twice (once right) is refused too: exactly one value is accepted.
    requests.append(("screen", None, header(f"screen?secret=x&secret={SECRET}", SCRIPTS["screen"])))
    caplog.set_level(logging.DEBUG)

    answers = serve_requests(app, [data for _, _, data in requests])

    assert answers == [[] for _ in requests]  # every one closed without a word
    app.database()
    assert (GateDecision.select().count(), Recording.select().count(), NoticeEvent.select().count()) == (0, 0, 0)
    refusals = [r for r in caplog.records if r.name == "livecall.fastagi" and r.levelno == logging.WARNING]
    assert len(refusals) == len(requests)
    for record, (script, _, _) in zip(refusals, requests):
        assert re.fullmatch(rf"FastAGI: refused a request from 127\.0\.0\.1:\d+ for script '{script}': no or wrong secret",
                            record.getMessage()), record.getMessage()
    # No log line at any level holds the secret, or any offered value (the blank one aside).
    text = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    for value in [SECRET] + [w for w in WRONG if w]:
        assert value not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no handler ever ran


def test_the_right_secret_is_served_and_the_handlers_see_the_bare_script(app: App, tmp_path: Path) -> None:
    folder = tmp_path / "recordings" / DIR_ARG
    folder.mkdir(parents=True)
    (folder / "c1.wav").write_bytes(b"RIFF")
    start = ["c1", "+442079460018", "1003", "marketing", str(folder / "c1.wav")]
    answers = serve_requests(app, [
        header(f"screen?secret={SECRET}", SCRIPTS["screen"]),
        header(f"screen?secret={SECRET}", ["02079460019", "marketing", "1003", "+442079460000"], where="agi_request"),
        header(f"/recording-start?secret={SECRET}", start),
    ])
    assert answers[0][-1] == 'SET VARIABLE LIVECALL_DECISION "allow"'
    assert answers[1][-1] == 'SET VARIABLE LIVECALL_DECISION "block"'
    app.database()
    assert [(d.dialled, d.decision) for d in GateDecision.select().order_by(GateDecision.id)] == [
        ("02079460018", "allow"), ("02079460019", "block")]
    assert [(r.call_id, r.file) for r in Recording.select()] == [("c1", str(folder / "c1.wav"))]


def test_the_dialplan_carries_the_secret_in_every_agi_url(app: App) -> None:
    assert agi_url(app.settings, "screen") == f"agi://127.0.0.1:0/screen?secret={SECRET}"
    text = "\n".join(f.text for f in render_all(app.settings))
    calls = re.findall(r"AGI\(([^,)]*)", text)
    assert calls and all(call.endswith(f"?secret={SECRET}") for call in calls), calls
    # A secret that would break the dialplan (or the URL) is refused when rendering.
    for bad in ("short", "has,a,comma-0123456789", "has space 0123456789", "semi;colon-0123456789", "dollar$-0123456789ab"):
        app.settings.fastagi.secret = bad
        with pytest.raises(config.ConfigError, match=r"\[fastagi\] secret"):
            agi_url(app.settings, "screen")


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    path = settings_file(tmp_path, secret="")
    app = App(config.load(path, environ={}))
    with pytest.raises(config.ConfigError, match="livecall init"):
        build(app)
    app.close()
    result = livecall(path, "serve")
    assert result.returncode != 0
    assert "[fastagi] secret: no secret set: run `livecall init`" in result.stderr
    assert "livecall sandbox up" in result.stderr


def test_init_adds_a_missing_secret_to_an_existing_settings_file(tmp_path: Path) -> None:
    path = settings_file(tmp_path, secret="")
    before = config.load(path, environ={})
    assert before.fastagi.secret == ""
    result = livecall(path, "init")
    assert result.returncode == 0, result.stderr
    assert "added missing secrets" in result.stdout
    after = config.load(path, environ={})
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", after.fastagi.secret)  # dialplan-safe, as generated
    assert after.ari.password == before.ari.password  # nothing else regenerated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert after.fastagi.secret not in result.stdout + result.stderr
    # A second run keeps it; a fresh file gets its own.
    assert livecall(path, "init").returncode == 0
    assert config.load(path, environ={}).fastagi.secret == after.fastagi.secret
    fresh = tmp_path / "fresh" / "livecall.toml"
    assert livecall(fresh, "init", "--force").returncode == 0
    assert config.load(fresh, environ={}).fastagi.secret not in ("", after.fastagi.secret)


def livecall(settings: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("LIVECALL_")}
    env.update(LIVECALL_CONFIG=str(settings), LIVECALL_DATA_DIR=str(settings.parent))
    return subprocess.run([sys.executable, "-m", "livecall_ari.cli", "--config", str(settings), *args], env=env,
                          capture_output=True, text=True, check=False, timeout=60)


def test_the_doctor_fails_a_loaded_dialplan_whose_agi_urls_lack_the_secret(app: App) -> None:
    from livecall_ari.asterisk.doctor import fastagi_secret_check

    s = app.settings
    rendered = "\n".join(f.text for f in render_all(s))
    ok = fastagi_secret_check(s, rendered)
    assert ok is not None and ok.ok and "carry [fastagi] secret" in ok.detail
    old = rendered.replace(f"?secret={SECRET}", "?secret=an-old-secret-0123456789abc", 1)
    stale = fastagi_secret_check(s, old.replace(f"/recording-end?secret={SECRET}", "/recording-end"))
    assert stale is not None and not stale.ok
    assert "2 of" in stale.detail and "recording-end" in stale.detail and "dialplan reload" in stale.detail
    assert SECRET not in stale.detail and "an-old-secret" not in stale.detail
    s.fastagi.secret = ""
    unset = fastagi_secret_check(s, rendered)
    assert unset is not None and not unset.ok and "livecall init" in unset.detail
    assert fastagi_secret_check(s, "[livecall-agents]\nexten => _X.,1,Stasis(livecall)\n") is None
