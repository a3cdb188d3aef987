"""The sandbox: a real Asterisk 22 PBX and a simulated PSTN, in a Debian sid chroot, on loopback.

Debian 12 has no asterisk package, so the chroot (built once into the cache directory by
build-chroot.sh, then reused) holds sid's Asterisk 22. Two Asterisk processes run from it:

- ``pbx``: LiveCall's generated configuration, three agents (1001-1003), two supervisors (2001, 2002),
  a benchmark phone (1999) that bypasses the gate, ARI on 127.0.0.1, SIP on 127.0.0.1;
- ``pstn``: the far end on 127.0.0.2 (PJSIP identifies by IP only, so the trunk's far end must
  not share the agents' address); it answers any number after a short ring, records what it
  hears under ``heard/`` and speaks a greeting.

Asterisk is started with ``-U asterisk -G asterisk`` and its directories belong to the chroot's
asterisk user: started as root it cannot read its own config. Endpoint passwords are generated
on first use and kept in the sandbox's state file beside the chroot.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from livecall_ari.asterisk.render import RenderedFile, render_all, render_dir
from livecall_ari.config import Settings
from livecall_ari.sounds.build import build as build_sounds, prompt_values

BUILD_SCRIPT = Path(__file__).with_name("build-chroot.sh")
# Language-neutral: Playback() falls back to sounds/<name> when sounds/<lang>/<name> is absent.
SOUNDS_DIR = "/usr/share/asterisk/sounds"


class SandboxError(Exception):
    pass


@dataclass(frozen=True)
class Instance:
    name: str

    @property
    def etc_dir(self) -> str:
        return f"/etc/livecall-sandbox/{self.name}"

    @property
    def run_dir(self) -> str:
        return f"/run/livecall-sandbox/{self.name}"

    @property
    def spool_dir(self) -> str:
        # The PBX keeps Debian's standard folders, so LiveCall's defaults (recordings under
        # /var/spool/asterisk/monitor, CDRs under /var/log/asterisk) hold in the sandbox too.
        return "/var/spool/asterisk" if self.name == "pbx" else f"/var/spool/livecall-sandbox/{self.name}"

    @property
    def log_dir(self) -> str:
        return "/var/log/asterisk" if self.name == "pbx" else f"/var/log/livecall-sandbox/{self.name}"

    @property
    def lib_dir(self) -> str:
        return f"/var/lib/livecall-sandbox/{self.name}"

    @property
    def conf(self) -> str:
        return f"{self.etc_dir}/asterisk.conf"

    def dirs(self) -> list[str]:
        return [self.etc_dir, self.run_dir, self.spool_dir, self.log_dir, self.lib_dir,
                f"{self.spool_dir}/recording", f"{self.spool_dir}/monitor", f"{self.spool_dir}/monitor/livecall",
                f"{self.spool_dir}/heard",
                # cdr_csv and cdr_custom write here but do not create the folders.
                f"{self.log_dir}/cdr-csv", f"{self.log_dir}/cdr-custom"]


# The sandbox's DIDs are 0113 496 and a desk phone's extension; this context rings the phone.
SANDBOX_RECEPTION = "sandbox-reception"
PBX = Instance("pbx")
PSTN = Instance("pstn")
PHONES = (
    {"name": "1001", "label": "Agent 1001"},
    # Agent 1002 makes service calls (not direct marketing): the endpoint sets the purpose.
    {"name": "1002", "label": "Agent 1002", "set_var": ["LIVECALL_PURPOSE=service"]},
    # Agent 1003 uses the FastAGI entry, to prove both entries reach the same decision.
    {"name": "1003", "label": "Agent 1003", "set_var": ["LIVECALL_ENTRY=agi"]},
    # Agent 1004's endpoint withholds its number (callerid_privacy): screened calls present it anyway.
    {"name": "1004", "label": "Agent 1004", "privacy": "prohib"},
    # Agent 1005 makes calls about pension schemes (PECR reg 21B).
    {"name": "1005", "label": "Agent 1005", "set_var": ["LIVECALL_PURPOSE=pensions"]},
    {"name": "2001", "label": "Supervisor 2001"},
    # A second supervisor's desk phone, for refusals (authorised only when a test says so).
    {"name": "2002", "label": "Supervisor 2002"},
    # Delegates with the shortest and the longest extensions role-play takes (2 and 6 digits).
    {"name": "42", "label": "Delegate 42"},
    {"name": "123456", "label": "Delegate 123456"},
    # Sandbox only: dials the trunk without the gate, for the post-dial-delay baseline.
    {"name": "1999", "label": "Benchmark direct", "context": "sandbox-direct"},
)


class Sandbox:
    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self.settings = settings
        self.root = root or settings.sandbox_path()
        self.state_file = self.root.parent / (self.root.name + ".state.json")

    # -- state ------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        if self.state_file.exists():
            data: dict[str, Any] = json.loads(self.state_file.read_text())
            return data
        return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    def phones(self) -> list[dict[str, Any]]:
        state = self._state()
        passwords: dict[str, str] = state.setdefault("passwords", {})
        phones = []
        for phone in PHONES:
            password = passwords.setdefault(str(phone["name"]), secrets.token_urlsafe(12))
            phones.append({"set_var": [], "context": "", "privacy": "", **phone, "password": password})
        self._save_state(state)
        return phones

    # -- paths ------------------------------------------------------------------------------

    def path(self, inside: str) -> Path:
        """A path inside the chroot, as seen from the host."""
        return self.root / inside.lstrip("/")

    def heard_dir(self) -> Path:
        return self.path(PSTN.spool_dir) / "heard"

    def cdr_csv(self) -> Path:
        return self.path(PBX.log_dir) / "cdr-csv" / "Master.csv"

    # -- lifecycle ---------------------------------------------------------------------------

    def ensure_chroot(self) -> None:
        result = subprocess.run(["bash", str(BUILD_SCRIPT), str(self.root)], text=True)
        if result.returncode != 0:
            raise SandboxError(f"could not build the sandbox chroot in {self.root} (see messages above)")

    def _context(self, instance: Instance) -> dict[str, Any]:
        sb = self.settings.sandbox
        base = sb.rtp_start + (0 if instance.name == "pbx" else 5000)
        rtp = (base, base + 4999)
        return {
            "sandbox": {
                "name": f"livecall-sandbox-{instance.name}",
                # The PBX's Asterisk systemname: uniqueids (and so CDR identities) differ
                # between sandboxes whose services share one database.
                "system_name": self.settings.system_name() if instance.name == "pbx" else f"livecall-sandbox-{instance.name}",
                "etc_dir": instance.etc_dir,
                "run_dir": instance.run_dir,
                "spool_dir": instance.spool_dir,
                "log_dir": instance.log_dir,
                "lib_dir": instance.lib_dir,
                "heard_dir": f"{instance.spool_dir}/heard",
                "sip_port": sb.sip_port,
                "http_port": sb.http_port,
                "pstn_host": sb.pstn_host,
                "pstn_ring_seconds": 0.3,
                "rtp_start": rtp[0],
                "rtp_end": rtp[1],
                "accountcode": "SANDBOX",
                "phones": self.phones(),
            }
        }

    def render(self) -> dict[str, list[RenderedFile]]:
        """Every file of each instance: the sandbox's base files, plus LiveCall's own for the PBX."""
        settings = self.settings
        if not settings.inbound.destination_context:
            # The sandbox's DIDs ring its desk phones ([sandbox-reception]) unless told otherwise.
            settings = dataclasses.replace(settings, inbound=dataclasses.replace(
                settings.inbound, destination_context=SANDBOX_RECEPTION))
        pbx = render_dir("sandbox", "pbx", settings, self._context(PBX))
        pbx += render_all(settings, extra=self._context(PBX))
        pstn = render_dir("sandbox", "pstn", settings, self._context(PSTN))
        return {"pbx": pbx, "pstn": pstn}

    def _write_config(self) -> set[str]:
        """Write every instance's files; return the names of the instances whose files changed."""
        changed: set[str] = set()
        uid, gid = self._asterisk_ids()
        for instance in (PBX, PSTN):
            for d in instance.dirs():
                p = self.path(d)
                p.mkdir(parents=True, exist_ok=True)
                os.chown(p, uid, gid)
        for name, files in self.render().items():
            etc = self.path(Instance(name).etc_dir)
            before = {p.name: p.read_text() for p in etc.glob("*.conf")}
            if before != {f.name: f.text for f in files}:
                changed.add(name)
            for old in etc.glob("*.conf"):
                old.unlink()
            for f in files:
                target = etc / f.name
                target.write_text(f.text)
                target.chmod(0o640)
                os.chown(target, uid, gid)
        sounds = self.path(SOUNDS_DIR)
        build_sounds(sounds, values=prompt_values(self.settings.organisation))
        for folder in [sounds / "livecall", sounds / "livecall-sandbox"]:
            for path in [folder, *folder.iterdir()]:
                os.chown(path, uid, gid)
        return changed

    def _asterisk_ids(self) -> tuple[int, int]:
        uid = gid = None
        for line in self.path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "asterisk":
                uid, gid = int(fields[2]), int(fields[3])
        if uid is None or gid is None:
            raise SandboxError("the chroot has no asterisk user; remove it and run `livecall sandbox up` again")
        return uid, gid

    def _pid(self, instance: Instance) -> int | None:
        pidfile = self.path(instance.run_dir) / "asterisk.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        # A pid file left by a machine restart or a killed run may name a recycled pid: it is
        # ours only if that process is Asterisk started with this instance's config.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if not cmdline or not cmdline[0].endswith(b"asterisk") or instance.conf.encode() not in cmdline:
            return None
        # Every sandbox's Asterisk has the same command line: it is ours only if it runs in our
        # chroot (a chroot copied from a running sandbox holds that sandbox's pid files).
        try:
            if Path(f"/proc/{pid}/root").resolve() != self.root.resolve():
                return None
        except OSError:
            return None
        return pid

    def rx(self, instance: Instance, command: str, timeout: float = 10) -> str:
        """Run an Asterisk CLI command in an instance (``asterisk -rx``)."""
        result = subprocess.run(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", instance.conf, "-rx", command],
            capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise SandboxError(f"{instance.name}: `{command}` failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _start(self, instance: Instance) -> None:
        if self._pid(instance):
            return
        log = open(self.path(instance.log_dir) / "console.log", "ab")
        subprocess.Popen(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-f", "-U", "asterisk", "-G", "asterisk", "-C", instance.conf],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def _wait_booted(self, instance: Instance, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                self.rx(instance, "core waitfullybooted", timeout=timeout)
                return
            except (SandboxError, subprocess.TimeoutExpired) as exc:
                last = str(exc)
                time.sleep(0.2)
        raise SandboxError(f"{instance.name} did not boot within {timeout:.0f} s: {last}; see {self.path(instance.log_dir)}")

    def wait_ari(self, timeout: float = 30) -> None:
        ari = self.settings.ari
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{ari.url}/ari/asterisk/info", auth=(ari.user, ari.password), timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:100]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.2)
        hint = (" (another Asterisk, perhaps a sandbox started with other settings, may hold the port:"
                " stop it with `livecall sandbox down` and those settings)") if last.startswith("401") else ""
        raise SandboxError(f"ARI at {ari.url} not ready within {timeout:.0f} s: {last}{hint}")

    def up(self) -> None:
        if os.geteuid() != 0:
            raise SandboxError("the sandbox needs root (it runs Asterisk in a chroot)")
        if not self.settings.ari.password or not self.settings.ami.secret:
            raise SandboxError("no ARI password or AMI secret in the settings: run `livecall init` first")
        self.ensure_chroot()
        changed = self._write_config()
        for instance in (PSTN, PBX):
            if self._pid(instance):
                # A reload does not load a module that a new file now configures: restart.
                if instance.name in changed:
                    self.restart(instance)
            else:
                self._start(instance)
        for instance in (PSTN, PBX):
            self._wait_booted(instance)
        self.wait_ari()

    def down(self) -> None:
        for instance in (PBX, PSTN):
            pid = self._pid(instance)
            if not pid:
                continue
            try:
                self.rx(instance, "core stop now", timeout=5)
            except (SandboxError, subprocess.TimeoutExpired):
                pass
            deadline = time.monotonic() + 10
            while self._pid(instance) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._pid(instance):
                os.kill(pid, signal.SIGKILL)

    def ring(self, did: str, caller: str) -> str:
        """The simulated PSTN rings ``did`` on the PBX from ``caller`` (both digits only): an
        inbound call, whose caller keeps talking and records what it hears until hung up."""
        if not (did.isdigit() and caller.isdigit()):
            raise SandboxError(f"a DID and a caller's number are digits only (got {did!r}, {caller!r})")
        return self.rx(PSTN, f"channel originate Local/{caller}-{did}@pstn-call-did/n extension {did}@pstn-caller")

    def _uptime(self, instance: Instance) -> float | None:
        try:
            out = self.rx(instance, "core show uptime seconds", timeout=5)
        except (SandboxError, subprocess.TimeoutExpired):
            return None
        for line in out.splitlines():
            if line.startswith("System uptime:"):
                return float(line.split(":", 1)[1])
        return None

    def restart(self, instance: Instance = PBX, timeout: float = 30) -> None:
        """``core restart now`` (the same process comes back in about a second), and wait until
        it has really restarted: the command returns before the old instance goes away."""
        before = self._uptime(instance)
        self.rx(instance, "core restart now")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self._uptime(instance)
            if now is not None and (before is None or now < before):
                return
            time.sleep(0.2)
        raise SandboxError(f"{instance.name} did not come back from `core restart now` within {timeout:.0f} s")

    def status(self) -> dict[str, Any]:
        sb = self.settings.sandbox
        return {
            "chroot": str(self.root),
            "running": {i.name: bool(self._pid(i)) for i in (PBX, PSTN)},
            "ari_url": self.settings.ari.url,
            "ari_user": self.settings.ari.user,
            "sip": f"127.0.0.1:{sb.sip_port}",
            "pstn": f"{sb.pstn_host}:{sb.sip_port}",
            "endpoints": [
                {"name": p["name"], "label": p["label"], "username": p["name"], "password": p["password"]}
                for p in self.phones()
            ],
            "cdr_csv": str(self.cdr_csv()),
            "cdr_custom": str(self.path(PBX.log_dir) / "cdr-custom" / "livecall.csv"),
            "heard_dir": str(self.heard_dir()),
            "recordings_dir": str(self.path(self.settings.recordings_dir())),
        }

    def remove(self) -> None:
        self.down()
        shutil.rmtree(self.root, ignore_errors=True)
