"""Every REST path our ARI client uses exists in Asterisk's own api-docs, with that method."""

from __future__ import annotations

import httpx
import pytest

from livecall_ari.ari.client import ROUTES
from livecall_ari.config import load
from tests.integration.harness import SandboxInfo

pytestmark = pytest.mark.sandbox


def test_routes_exist_in_asterisk_api_docs(sandbox: SandboxInfo) -> None:
    s = load()
    auth = (s.ari.user, s.ari.password)
    base = f"{s.ari.url}/ari/api-docs"
    resources = httpx.get(f"{base}/resources.json", auth=auth).json()
    operations: set[tuple[str, str]] = set()
    for api in resources["apis"]:
        doc = httpx.get(f"{base}/{api['path'].split('/')[-1].replace('{format}', 'json')}", auth=auth).json()
        for entry in doc["apis"]:
            for op in entry["operations"]:
                operations.add((op["httpMethod"], entry["path"]))
    missing = {name: route for name, route in ROUTES.items() if route not in operations}
    assert not missing, f"not in Asterisk's api-docs: {missing}"
