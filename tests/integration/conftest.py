"""Fixtures for the tests against the real Asterisk sandbox.

The sandbox is brought up by the test command (scripts/test) before pytest starts. When it is
not running, these tests are skipped on a developer's machine with the reason, and fail in CI
(CI=true): a sandbox that cannot start must never turn into a green run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.harness import PostgresDatabases, SandboxInfo, Service
from tests.integration.multi import Pbx, TwoPbxs, pbx_pair, shared_database


@pytest.fixture(scope="session")
def sandbox() -> SandboxInfo:
    try:
        info = SandboxInfo.load()
    except AssertionError as exc:
        info = None
        why = str(exc)
    else:
        why = "" if info.running else f"sandbox not running: {info.data['running']}"
    if info is None or not info.running:
        message = f"the Asterisk sandbox is not up ({why}); run `livecall sandbox up` (scripts/test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return info


@pytest.fixture
def make_service(sandbox: SandboxInfo) -> Iterator[object]:
    """Start `livecall serve` with extra settings (environment overrides) and a fresh database:
    SQLite, or PostgreSQL when LIVECALL_TEST_SERVICE_POSTGRES_URL names a server."""
    started: list[Service] = []
    server = os.environ.get("LIVECALL_TEST_SERVICE_POSTGRES_URL", "")
    databases = PostgresDatabases(server) if server else None

    def make(**env: str) -> Service:
        db = Path(tempfile.mkdtemp(prefix="livecall-db-")) / "livecall.db"
        url = databases.create() if databases is not None else f"sqlite:///{db}"
        full = {"LIVECALL_DATABASE_URL": url, **env}
        service = Service(full, db)
        started.append(service)  # stopped afterwards even if it never registers
        return service.start()

    yield make
    for service in started:
        service.stop()
    if databases is not None:
        databases.drop_all()


# Two sandbox PBXs on one shared PostgreSQL database (tests/integration/multi.py): the two-PBX
# and object storage tests.


@pytest.fixture(scope="module")
def pbxs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pbx, Pbx]]:
    yield from pbx_pair(tmp_path_factory.mktemp("pbxs"))


@pytest.fixture
def pair(pbxs: tuple[Pbx, Pbx]) -> Iterator[TwoPbxs]:
    for database in shared_database():
        yield TwoPbxs(*pbxs, database)
