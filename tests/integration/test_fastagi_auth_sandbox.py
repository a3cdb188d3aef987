"""FastAGI authentication through the real Asterisk: a channel of the sandbox calls `serve`'s
FastAGI port the way a forged dialplan (or any local process) would, without the secret and with
a wrong one, then with the right one. Asterisk 22 sends the URL's query in agi_network_script;
the refused requests screen nothing and the service's log never holds either value."""

from __future__ import annotations

import pytest

from livecall_ari.config import load
from tests.conftest import until
from tests.integration.harness import SandboxInfo

pytestmark = pytest.mark.sandbox

PROBE = "livecall-test-agi-probe"
WRONG = "wrong-secret-0123456789abcdefgh"


def originate_agi(sandbox: SandboxInfo, url: str) -> None:
    """A Local channel into an answering extension whose other half runs AGI(url,...)."""
    sandbox.rx(f"channel originate Local/s@{PROBE} application AGI {url},02079460018,marketing,1003")


def test_the_real_asterisk_reaches_serve_only_with_the_secret(sandbox: SandboxInfo, make_service) -> None:
    settings = load()
    secret = settings.fastagi.secret
    assert secret, "run `livecall init` and `livecall sandbox up` first"
    service = make_service(LIVECALL_GATE_DECIDER="static")
    base = f"agi://{settings.fastagi.host}:{settings.fastagi.port}/screen"
    sandbox.rx(f"dialplan add extension s,1,Answer() into {PROBE}")
    sandbox.rx(f"dialplan add extension s,2,Wait(2) into {PROBE}")
    try:
        originate_agi(sandbox, base)
        originate_agi(sandbox, f"{base}?secret={WRONG}")
        until(lambda: service.log.count("FastAGI: refused a request from 127.0.0.1:") == 2, 10,
              what="two refusals in the service's log")
        assert service.decisions() == []
        originate_agi(sandbox, f"{base}?secret={secret}")
        [decision] = until(service.decisions, 10, what="the authenticated request's decision")
        assert (decision["dialled"], decision["decision"], decision["entry"]) == ("02079460018", "allow", "agi")
    finally:
        sandbox.rx(f"dialplan remove context {PROBE}")
    log = service.log
    assert "for script 'screen': no or wrong secret" in log
    assert secret not in log and WRONG not in log
