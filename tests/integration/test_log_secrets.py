"""No secret or token in the service's log at any level (issue 16): `livecall serve` at DEBUG
through the real sandbox (ARI's event stream, FastAGI from the AGI entry, the portal and the
API over HTTP), then every secret and token the run used is searched for in its log."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from livecall_ari.config import load
from tests.conftest import until
from tests.integration.harness import LIVECALL, SandboxInfo, call

pytestmark = pytest.mark.sandbox

PASSWORD = "correct horse battery staple 42"


def test_a_debug_log_holds_no_secret_or_token(sandbox: SandboxInfo, make_service, tmp_path: Path) -> None:
    service = make_service(LIVECALL_LOG_LEVEL="debug", LIVECALL_GATE_DECIDER="static")
    settings = load(environ={**os.environ, **service.env})
    added = subprocess.run([*LIVECALL, "users", "add", "sam", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n",
                           capture_output=True, text=True, env={**os.environ, **service.env}, timeout=60)
    assert added.returncode == 0, added.stderr
    base = f"http://{settings.web.host}:{settings.web.port}"
    until(lambda: _answers(base + "/login"), timeout=15, what="the portal")

    with httpx.Client(base_url=base, timeout=10) as portal:
        form = portal.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        done = portal.post("/login", data={"username": "sam", "password": PASSWORD, "csrf": csrf.group(1)})
        assert done.status_code == 303
        session = next(v for k, v in portal.cookies.items() if k == "livecall_portal")
        page = portal.get("/lists")
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        changed = portal.post("/lists/objections", data={"csrf": token.group(1), "action": "add", "number": "02079460123",
                                                          "reason": "log test"})
        assert changed.status_code in (200, 303)
    api = httpx.get(base + "/api/supervision/sessions", headers={"authorization": f"Bearer {settings.web.api_token}"}, timeout=10)
    assert api.status_code == 200
    # Through Asterisk: the Stasis entry (ARI's event stream) and the FastAGI entry (agent 1003).
    assert call(sandbox, "02079460018", hold_ms=300).returncode == 0
    assert call(sandbox, "02079460018", agent="1003", hold_ms=300).returncode == 0
    until(lambda: len(service.decisions()) >= 2, what="both decisions")
    service.stop()

    log = service.log
    assert " DEBUG " in log, "the service did not log at DEBUG"
    secrets = {
        "ARI password": settings.ari.password, "API token": settings.web.api_token, "AMI secret": settings.ami.secret,
        "FastAGI secret": settings.fastagi.secret, "portal password": PASSWORD, "session cookie": session,
        "login CSRF token": csrf.group(1), "session CSRF token": token.group(1),
    }
    for name, value in secrets.items():
        assert value, name
        for form in {value, quote(value, safe=""), quote(value)}:
            assert form not in log, f"the {name} is in the DEBUG log"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
