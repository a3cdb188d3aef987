"""More than one PBX: two sandboxes, each with its own `livecall serve`, sharing one database.

The first PBX is the sandbox the other integration tests use (sandbox A in CI), or the one whose
settings file ``LIVECALL_TEST_PBX1_CONFIG`` names. The second is the one whose settings file
``LIVECALL_TEST_PBX2_CONFIG`` names, already up; without it the fixture makes one with
sandbox D's ports and folders (SECOND below), its chroot copied from the first's (seconds, where
a debootstrap takes a minute), brings it up and takes it down afterwards. Both PBXs' services
write into the PostgreSQL database named by ``LIVECALL_TEST_SHARED_POSTGRES_URL`` (scripts/test
starts a throwaway server). In CI (CI=true) a missing server or second sandbox fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NoReturn

import httpx
import pytest

from livecall_ari import config
from livecall_ari.sandbox.sipp import SippCall, SippResult, start_call
from tests.conftest import until
from tests.integration.harness import LIVECALL, ROOT, PostgresDatabases, SandboxInfo, livecall, postgres_rows

# The second sandbox the fixture makes (sandbox D of the helpers' allocation: its own ports,
# PSTN address and chroot, clear of sandbox A's).
SECOND = {
    "sandbox": {"sip_port": 5090, "http_port": 8118, "pstn_host": "127.0.0.5", "rtp_start": 40000},
    "ari": {"url": "http://127.0.0.1:8118"},
    "ami": {"port": 5068},
    "web": {"port": 8119},
    "fastagi": {"port": 4603},
}
SECOND_CHROOT = Path.home() / ".cache/livecall/sandbox-d"
# What a running sandbox keeps in its chroot and a copy must not take along: pid files, its
# Asterisk database, logs and CDR files, recordings.
_RUNTIME = ("run/livecall-sandbox", "var/lib/livecall-sandbox", "var/log/livecall-sandbox", "var/spool/livecall-sandbox")
_RUNTIME_FILES = ("var/log/asterisk", "var/spool/asterisk")
READY = ".livecall-ready"


def unavailable(message: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI, where a skip would turn into a green run."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def seed_chroot(source: Path, target: Path) -> bool:
    """Make ``target`` a copy of the ready chroot ``source`` without its running state; False
    when there is nothing to copy (``livecall sandbox up`` then builds the chroot itself)."""
    if (target / READY).exists() or not (source / READY).exists():
        return False
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(partial)], check=True, timeout=300)
    for folder in _RUNTIME:
        shutil.rmtree(partial / folder, ignore_errors=True)
    for folder in _RUNTIME_FILES:
        for path in (partial / folder).rglob("*"):
            if not path.is_dir():
                path.unlink()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return True


@dataclass
class Pbx:
    """One sandbox PBX: its settings (the environment that names them) and its status."""

    name: str
    env: dict[str, str]
    info: SandboxInfo = field(init=False)

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.info = SandboxInfo(json.loads(livecall("sandbox", "status", "--json", env=self.env).stdout))

    @property
    def settings(self) -> config.Settings:
        return config.load(environ={**os.environ, **self.env})

    @property
    def running(self) -> bool:
        return self.info.running

    @property
    def cdr_file(self) -> Path:
        return Path(self.info.data["cdr_custom"])

    def call(self, number: str, *, agent: str = "1001", **kwargs: Any) -> SippResult:
        return self.start_call(number, agent=agent, **kwargs).wait()

    def start_call(self, number: str, *, agent: str = "1001", **kwargs: Any) -> SippCall:
        return start_call(number, agent, self.info.password(agent), pbx=self.info.data["sip"], **kwargs)


def pbx_from_config(name: str, settings_file: str) -> Pbx:
    env = {"LIVECALL_CONFIG": settings_file}
    data_dir = config.load(settings_file, environ={}).data_dir
    # The first PBX's data folder may be given only by the environment (scripts/test's).
    env["LIVECALL_DATA_DIR"] = data_dir or os.environ.get("LIVECALL_DATA_DIR", str(Path(settings_file).parent / "data"))
    return Pbx(name, env)


def make_second_sandbox(first: Pbx, folder: Path) -> Pbx:
    """Settings for a second sandbox (SECOND's ports, its own chroot and system name), its chroot
    copied from the first's, brought up."""
    settings_file = folder / "livecall.toml"
    env = {"LIVECALL_CONFIG": str(settings_file), "LIVECALL_DATA_DIR": str(folder / "data"),
           "LIVECALL_ASTERISK_RX_COMMAND": f"env LIVECALL_CONFIG={settings_file} {ROOT}/.venv/bin/livecall sandbox rx"}
    livecall("init", env=env)
    settings = config.load(settings_file, environ={})
    for section, values in SECOND.items():
        for key, value in values.items():
            setattr(getattr(settings, section), key, value)
    settings.sandbox.dir = str(SECOND_CHROOT)
    settings.data_dir = env["LIVECALL_DATA_DIR"]
    settings.asterisk.rx_command = env["LIVECALL_ASTERISK_RX_COMMAND"]
    settings.asterisk.root = "sandbox"
    settings.asterisk.system_name = "livecall-second-pbx"
    settings_file.write_text(config.dump(settings))
    # The same as overrides: the suite's own environment may name the first sandbox's (CI's
    # LIVECALL_SANDBOX_DIR, say), and an override wins over any settings file.
    overrides = {**SECOND, "sandbox": {**SECOND["sandbox"], "dir": str(SECOND_CHROOT)},
                 "asterisk": {"root": "sandbox", "system_name": "livecall-second-pbx"}}
    for section, values in overrides.items():
        for key, value in values.items():
            env[f"LIVECALL_{section}_{key}".upper()] = str(value)
    seed_chroot(first.settings.sandbox_path(), SECOND_CHROOT)
    livecall("sandbox", "up", env=env)
    return Pbx("second", env)


@dataclass
class PbxService:
    """`livecall serve` for one PBX (its settings), on the shared database."""

    pbx: Pbx
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="serve-")) / "serve.log")

    def start(self) -> "PbxService":
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [*LIVECALL, "serve"], env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        log.close()
        until(self.registered, timeout=20, what=f"{self.pbx.name}'s Stasis app to register with ARI")
        return self

    def registered(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"livecall serve ({self.pbx.name}) exited ({self.proc.returncode}):\n{self.log}")
        return self.app_registered()

    def app_registered(self) -> bool:
        s = config.load(environ={**os.environ, **self.env})
        try:
            r = httpx.get(f"{s.ari.url}/ari/applications", auth=(s.ari.user, s.ari.password), timeout=2)
        except httpx.TransportError:
            return False
        return r.status_code == 200 and any(a["name"] == s.ari.app for a in r.json())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text()


class SharedDatabase:
    """A fresh database on the shared PostgreSQL server, read with plain SQL."""

    def __init__(self, server_url: str) -> None:
        self._databases = PostgresDatabases(server_url)
        self.url = self._databases.create()

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        return postgres_rows(self.url, sql, params)

    def drop(self) -> None:
        self._databases.drop_all()


@dataclass
class TwoPbxs:
    first: Pbx
    second: Pbx
    database: SharedDatabase


def pbx_pair(folder: Path) -> Iterator[tuple[Pbx, Pbx]]:
    """The first and second PBX (see the module's docstring); a second sandbox made here is
    taken down afterwards."""
    shared_server_url()  # nothing to share without it: no second sandbox either
    first = pbx_from_config("first", os.environ.get("LIVECALL_TEST_PBX1_CONFIG") or os.environ.get("LIVECALL_CONFIG", ""))
    if not first.running:
        unavailable(f"the first sandbox is not up: {first.info.data['running']}")
    made = None
    if second_config := os.environ.get("LIVECALL_TEST_PBX2_CONFIG"):
        second = pbx_from_config("second", second_config)
    else:
        try:
            second = made = make_second_sandbox(first, folder / "second")
        except (AssertionError, subprocess.SubprocessError, OSError) as exc:
            unavailable(f"could not bring a second sandbox up: {exc}")
    try:
        if not second.running:
            unavailable(f"the second sandbox is not up: {second.info.data['running']}")
        if first.info.data["sip"] == second.info.data["sip"] or first.settings.system_name() == second.settings.system_name():
            unavailable("the two sandboxes must differ in SIP port and in [asterisk] system_name")
        yield first, second
    finally:
        if made is not None:
            livecall("sandbox", "down", env=made.env, check=False)


def shared_server_url() -> str:
    server = os.environ.get("LIVECALL_TEST_SHARED_POSTGRES_URL", "")
    if not server:
        unavailable("no PostgreSQL server for the PBXs to share: set LIVECALL_TEST_SHARED_POSTGRES_URL (scripts/test does)")
    return server


def shared_database() -> Iterator[SharedDatabase]:
    """A fresh database on the PostgreSQL server the PBXs share, dropped afterwards."""
    database = SharedDatabase(shared_server_url())
    try:
        yield database
    finally:
        database.drop()
