"""The log filter: the settings' secrets, in any encoding a URL gives them, and any api_key value."""

from __future__ import annotations

import logging

from livecall_ari.logs import REDACTED, RedactSecrets


def test_secrets_plain_and_url_encoded_and_api_keys_are_replaced() -> None:
    secret = "s3cr3t/with+odd=chars"
    redact = RedactSecrets([secret, "short"]).redact
    line = f"GET /ari/events?app=livecall&api_key=livecall:{secret} then {secret} and s3cr3t%2Fwith%2Bodd%3Dchars"
    out = redact(line)
    assert secret not in out and "s3cr3t%2F" not in out and out.count(REDACTED) == 3
    assert redact("api_key=anything-else&app=x") == f"api_key={REDACTED}&app=x"
    assert redact("short words stay") == "short words stay"  # too short to be one of ours


def test_a_record_with_arguments_and_a_traceback_is_redacted() -> None:
    secret = "0123456789abcdef"
    flt = RedactSecrets([secret])
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", (secret,), sys.exc_info())
    assert flt.filter(record)
    assert secret not in record.getMessage() and secret not in (record.exc_text or "")
