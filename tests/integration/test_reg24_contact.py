"""PECR reg 24 against the sandbox: the agent's contact code (*5) plays the organisation's name
and contact details (the prompt livecall/contact) to the called party, mid-call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until
from tests.integration import audio
from tests.integration.harness import SandboxInfo, Service, call

pytestmark = pytest.mark.sandbox

NUMBER = "02079460018"


def prompt(sandbox: SandboxInfo, name: str) -> audio.Samples:
    return audio.read_ulaw(Path(sandbox.data["chroot"]) / "usr/share/asterisk/sounds" / f"{name}.ulaw")


def test_the_contact_code_plays_who_is_calling_and_how_to_reach_them_to_the_called_party(
    sandbox: SandboxInfo, make_service: Any
) -> None:
    service: Service = make_service(LIVECALL_GATE_DECIDER="static")
    contact = prompt(sandbox, "livecall/contact")
    contact_s = len(contact) / audio.RATE
    notice_s = len(prompt(sandbox, "livecall/notice")) / audio.RATE
    before = set(sandbox.heard_dir.glob(f"{NUMBER}-*-heard.wav"))

    # *5 two seconds into the call, then held long enough for the whole prompt.
    result = call(sandbox, NUMBER, agent="1002", scenario="agent_call_feature.xml", hold_ms=int((contact_s + 2) * 1000),
                  keys={"feature_digit": "5"})

    assert result.returncode == 0, result.errors
    [heard_file] = until(lambda: set(sandbox.heard_dir.glob(f"{NUMBER}-*-heard.wav")) - before, what="the PSTN's recording")
    until(lambda: audio.samples_when_complete(heard_file) > (notice_s + 2 + contact_s) * audio.RATE, what="the prompt in it")
    heard = audio.read_wav(heard_file)
    # After the notice and two seconds of the agent, the called party hears the contact prompt.
    after_notice = heard[int((notice_s + 1.5) * audio.RATE):]
    r, lag = audio.best_match(after_notice, contact, max_lag_s=5.0)
    assert r > 0.8 and 1.0 < lag < 5.0, (r, lag)
    assert service.decisions()[0]["decision"] == "allow"
