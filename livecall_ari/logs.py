"""The service's logging: one stream, and no secret or token in it at any level.

Two leaks closed here rather than at every call site:

- peewee logs each statement with its parameters at DEBUG: portal sessions' CSRF tokens,
  password hashes, API tokens. Its logger never goes below INFO.
- libraries log URLs and request lines at DEBUG (websockets prints ARI's event URL, whose query
  carries ``api_key=user:password``). Every record passes :class:`RedactSecrets`, which replaces
  the settings' secrets, in plain and URL-encoded form, and any ``api_key=`` value.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Iterable
from urllib.parse import quote, quote_plus

from livecall_ari.config import Settings

REDACTED = "[secret]"
_API_KEY = re.compile(r"(api_key=)[^&\s\"']+")
# Loggers whose DEBUG output is the data itself (SQL with its parameters).
QUIET_LOGGERS = {"peewee": logging.INFO, "httpx": logging.WARNING,
                 # boto3 logs each S3 request's signed headers at DEBUG.
                 "botocore": logging.WARNING, "boto3": logging.WARNING, "urllib3": logging.WARNING}


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold (empty ones left out)."""
    values = [settings.ari.password, settings.web.api_token, settings.ami.secret,
              settings.fastagi.secret, settings.storage.secret_key]
    return [v for v in values if v]


class RedactSecrets(logging.Filter):
    """Replaces known secrets (and any ``api_key=`` value) in a record's final message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        forms = {form for s in secrets if len(s) >= 8 for form in (s, quote(s, safe=""), quote_plus(s))}
        self._pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))) if forms else None

    def redact(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        return _API_KEY.sub(r"\1" + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure(level: str, settings: Settings) -> None:
    """Log to stderr at ``level``, every record redacted, the data-dumping loggers held back."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
