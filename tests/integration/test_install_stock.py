"""Installing LiveCall into an admin's own Asterisk, from the built wheel, as the README says.

The Asterisk runs Debian's stock /etc/asterisk plus the admin's phones, a trunk and an outbound
pattern that shadows the gate's include (tests/integration/stock.py). LiveCall is the wheel built
from this checkout, installed into a fresh virtualenv: every `livecall` below is that venv's,
run inside the Asterisk's network namespace. The steps are the README's "Install into your own
Asterisk", in its order; keep the two in step.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import until
from tests.integration.harness import ROOT, livecall, open_for_marketing
from tests.integration.multi import unavailable
from tests.integration.stock import STOCK_ROOT, SHADOWING_PATTERN, FarEnd, StockAsterisk, in_namespace, sipp_in_namespace

pytestmark = pytest.mark.sandbox

ON_TPS = "02079460999"
NOT_LISTED = "02079460018"
CALLER_ID = "+442079460000"
MARKETING, SERVICE = "2101", "2102"
# What the package needs to build: the wheel is built from a copy of these (a build in the
# checkout itself would reuse setuptools' build/ folder, stale files and all).
SOURCES = ("pyproject.toml", "README.md", "livecall_ari")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with LiveCall installed from the wheel built from this checkout."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", str(source), "-w", str(folder / "dist")], timeout=300)
    [wheel] = (folder / "dist").glob("livecall-*.whl")
    venv = folder / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    # Its dependencies come from the package index, as on an admin's machine.
    run([str(venv / "bin/pip"), "install", "--quiet", str(wheel)], timeout=600)
    where = run([str(venv / "bin/python"), "-c", "import livecall_ari; print(livecall_ari.__file__)"], cwd=folder).stdout
    assert Path(where.strip()).is_relative_to(venv), f"the wheel's livecall imports from {where} (not from its venv {venv})"
    return venv


def run(argv: list[str], *, check: bool = True, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command without this checkout's Python or LiveCall settings in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LIVECALL_", "VIRTUAL_ENV"))}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture
def pbx() -> Iterator[StockAsterisk]:
    """The admin's Asterisk (stock configs, their phones, trunk and pattern), started in its
    namespace; stopped and the namespace deleted afterwards, whatever happened."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("the stock-config Asterisk needs root and iproute2 (a chroot in a network namespace)")
    status = livecall("sandbox", "status", "--json", check=False)
    if status.returncode != 0:
        unavailable(f"no sandbox settings to find the Asterisk chroot by: {status.stderr.strip()}")
    stock = StockAsterisk(STOCK_ROOT)
    stock.prepare(Path(json.loads(status.stdout)["chroot"]))
    stock.add_admin_configuration()
    try:
        stock.start()
        yield stock
    finally:
        stock.stop()


@pytest.fixture
def far_end(pbx: StockAsterisk) -> Iterator[FarEnd]:
    far_end = FarEnd.start()
    try:
        yield far_end
    finally:
        far_end.stop()


class Admin:
    """The admin at a shell inside the namespace, with the wheel's `livecall` on PATH. The
    README's /etc/livecall and /var/lib/livecall are folders under ``home``; the environment
    holds no LiveCall settings but LIVECALL_CONFIG and the test's calling hours (so that
    marketing calls are permitted whenever the test runs)."""

    def __init__(self, venv: Path, home: Path, hours: dict[str, str]) -> None:
        self.home = home
        home.mkdir()
        self.settings_file = home / "etc/livecall/livecall.toml"
        self.data_dir = home / "var/lib/livecall"
        self.env = {"PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                    "LIVECALL_CONFIG": str(self.settings_file), **hours}
        self.livecall_bin = str(venv / "bin/livecall")

    def livecall(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(in_namespace([self.livecall_bin, *args]), capture_output=True, text=True,
                              env={**self.env, **(env or {})}, cwd=self.home, timeout=180)
        if check and done.returncode != 0:
            raise AssertionError(f"livecall {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def set(self, section: str, line: str, new: str) -> None:
        """Change one line of one section of the settings file, as an admin's editor would."""
        text = self.settings_file.read_text()
        head, sep, rest = text.partition(f"[{section}]\n")
        assert sep and rest.count(line + "\n") >= 1, f"no {line!r} in [{section}] of {self.settings_file}"
        self.settings_file.write_text(head + sep + rest.replace(line + "\n", new + "\n", 1))

    def finished_recordings(self) -> list[dict[str, Any]]:
        """Every recording, once none is still being recorded (none until then)."""
        rows = self.rows("SELECT * FROM recordings ORDER BY id")
        return rows if all(r["state"] != "recording" for r in rows) else []

    def rows(self, sql: str) -> list[dict[str, Any]]:
        con = sqlite3.connect(self.data_dir / "livecall.db")
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql)]
        finally:
            con.close()


def test_an_install_from_the_wheel_into_stock_asterisk_gates_records_and_fails_closed(
    venv: Path, pbx: StockAsterisk, far_end: FarEnd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "admin"
    admin = Admin(venv, home, open_for_marketing(tmp_path))
    # The sipp phones the test places calls from are inside the namespace too.
    monkeypatch.setenv("PATH", sipp_in_namespace(tmp_path / "shim") + os.pathsep + os.environ["PATH"])

    # 1. Settings, with generated secrets, and where the data lives (written into the settings).
    admin.livecall("init", env={"LIVECALL_DATA_DIR": str(admin.data_dir)})
    assert f'data_dir = "{admin.data_dir}"' in admin.settings_file.read_text()
    # The trunk's name and the number calls present.
    admin.set("asterisk", 'trunk = "livecall-trunk"', 'trunk = "mytrunk"')
    admin.set("organisation", 'caller_id = ""', f'caller_id = "{CALLER_ID}"')
    # This Asterisk runs in a chroot: its files are seen under the chroot's folder, and its CLI
    # is reached through chroot (beside an Asterisk of its own, an admin leaves both as they are).
    admin.set("asterisk", 'root = ""', f'root = "{pbx.root}"')
    admin.set("asterisk", 'rx_command = "asterisk -rx"', f'rx_command = "{pbx.rx_command}"')

    # 2. The prompts, spoken into Asterisk's sounds folder.
    built = admin.livecall("sounds", "build", "--dest", str(pbx.root / "usr/share/asterisk/sounds"))
    assert (pbx.root / "usr/share/asterisk/sounds/livecall/notice.ulaw").exists(), built.stdout

    # 3. Service phones say so on their endpoint (the others' calls are marketing).
    pbx.edit("pjsip.conf", f"[{SERVICE}]\ntype = endpoint\n", f"[{SERVICE}]\ntype = endpoint\nset_var = LIVECALL_PURPOSE=service\n")

    # 4. Install: a dry run writes nothing; the real one writes, reloads and runs the doctor,
    # which fails: the admin's own _0X. wins over the include in [office-phones]. (The folder
    # is /etc/asterisk under [asterisk] root.)
    before = {p.name: p.read_bytes() for p in pbx.etc.iterdir() if p.is_file()}
    dry = admin.livecall("asterisk", "install", "--context", "office-phones", "--dry-run")
    assert "include => livecall-outbound" in dry.stdout, dry.stdout
    assert {p.name: p.read_bytes() for p in pbx.etc.iterdir() if p.is_file()} == before
    installed = admin.livecall("asterisk", "install", "--context", "office-phones", check=False)
    assert installed.returncode != 0, installed.stdout
    for name in ("extensions_livecall.conf", "ari_livecall.conf"):
        written = pbx.etc / name
        assert (written.stat().st_uid, written.stat().st_mode & 0o777) == ((pbx.etc / "extensions.conf").stat().st_uid, 0o640)
    shadowed(installed.stdout + installed.stderr)

    # 5. The doctor says the same on its own.
    doctor = admin.livecall("doctor", check=False)
    assert doctor.returncode != 0
    shadowed(doctor.stdout + doctor.stderr)

    # 6. The admin removes their pattern and reloads the dialplan: now the doctor passes.
    pbx.edit("extensions.conf", SHADOWING_PATTERN + "\n", "")
    pbx.rx("dialplan reload")
    doctor = admin.livecall("doctor", check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "FAIL" not in doctor.stdout, doctor.stdout

    # 7. Today's TPS and CTPS lists.
    today = dt.date.today().isoformat()
    for name, number in (("tps", ON_TPS), ("ctps", "01614960000")):
        listed = home / f"{name}.txt"
        listed.write_bytes(f"{number[:4]:<5}{number[4:]:>7}\r\n".encode())
        admin.livecall("lists", "import", name, str(listed), "--list-date", today)

    # 8. The service, as its systemd unit starts it (here in the foreground, as root).
    unit = admin.livecall("asterisk", "systemd-unit").stdout
    [exec_start] = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == f"{admin.livecall_bin} --config {admin.settings_file} serve", unit
    with (home / "serve.log").open("w") as log:
        serve = subprocess.Popen(in_namespace(shlex.split(exec_start)), env=admin.env, cwd=home,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        until(lambda: registered(pbx, serve, home), timeout=30, what="livecall serve's Stasis app to register")

        # A marketing call to a TPS number is refused, and never reaches the trunk.
        refused = pbx.call(ON_TPS, MARKETING, scenario="agent_call_refused.xml")
        assert (refused.returncode, refused.refused_cause) == (0, 21), refused.errors
        # A service call connects, is recorded, and the called party heard the notice.
        service = pbx.call(ON_TPS, SERVICE, hold_ms=2000)
        assert service.answered, service.errors
        # 999 always connects.
        emergency = pbx.call("999", MARKETING, hold_ms=500)
        assert emergency.answered, emergency.errors
        # A marketing call to a number on no list connects.
        allowed = pbx.call(NOT_LISTED, MARKETING, hold_ms=500)
        assert allowed.answered, allowed.errors

        assert far_end.dialled() == [ON_TPS, "999", NOT_LISTED]
        decisions = admin.rows("SELECT number, purpose, decision, reasons FROM gate_decisions ORDER BY id")
        assert [(d["number"], d["purpose"], d["decision"], d["reasons"]) for d in decisions] == [
            ("+442079460999", "marketing", "block", "tps"),
            ("+442079460999", "service", "allow", ""),
            ("+442079460018", "marketing", "allow", ""),
        ]
        # Both connected calls are recorded ([recording] policy "all"); 999 is not.
        recordings = until(admin.finished_recordings, timeout=20, what="the recordings to be finished")
        assert [(r["agent"], r["purpose"], r["state"]) for r in recordings] == [
            (SERVICE, "service", "complete"), (MARKETING, "marketing", "complete")]
        for recording in recordings:
            # The file as Asterisk named it, found under [asterisk] root: as a new install keeps it,
            # Opus in Ogg (about 1.5 KB a second) sealed at rest, seconds of the call in it.
            assert recording["file"].endswith(".ogg") and recording["encrypted"], recording
            assert (pbx.root / recording["file"].lstrip("/")).stat().st_size == recording["size_bytes"] > 4000, recording
            assert recording["duration_ms"] > 2000, recording
        # The called party heard the notice on both connected calls (never on 999's).
        notices = admin.rows("SELECT number, prompt, played, outcome FROM recording_notices ORDER BY id")
        assert [(n["number"][-10:], n["prompt"], n["played"], n["outcome"]) for n in notices] == [
            (ON_TPS[1:], "livecall/notice", 1, "heard"), (NOT_LISTED[1:], "livecall/notice", 1, "heard")]
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()

    # 9. With the service stopped, marketing calls are refused (fail closed); 999 still connects.
    until(lambda: "livecall" not in pbx.rx("ari show apps"), timeout=10, what="the Stasis app to unregister")
    unserved = pbx.call(NOT_LISTED, MARKETING, scenario="agent_call_refused.xml")
    assert (unserved.returncode, unserved.refused_cause) == (0, 21), unserved.errors
    assert len(admin.rows("SELECT id FROM gate_decisions")) == 3  # nobody decided it: the dialplan refused it
    emergency = pbx.call("999", MARKETING, hold_ms=500)
    assert emergency.answered, emergency.errors
    assert far_end.dialled() == [ON_TPS, "999", NOT_LISTED, "999"]


def shadowed(output: str) -> None:
    """The doctor's gate-path failure names a phone, its context and the admin's pattern."""
    line = next((x for x in output.splitlines() if "FAIL" in x and "_0X." in x), "")
    assert line, f"no failure naming the shadowing pattern _0X.:\n{output}"
    assert "office-phones" in line and (MARKETING in line or SERVICE in line), line


def registered(pbx: StockAsterisk, serve: subprocess.Popen[bytes], home: Path) -> bool:
    if serve.poll() is not None:
        raise AssertionError(f"livecall serve exited ({serve.returncode}):\n{(home / 'serve.log').read_text()}")
    return "livecall" in pbx.rx("ari show apps")
