"""An admin's own Asterisk for the install test: Debian's stock /etc/asterisk plus the admin's
phones, trunk and outbound pattern, in its own network namespace, with a far end on the trunk.

The Asterisk is the sandbox's chroot copied without its running state (multi.seed_chroot), its
/etc/asterisk put back to the chroot's stock sample configs before every run. It runs in the
network namespace NAMESPACE, so it binds 127.0.0.1:5060 and :8088 like any stock Asterisk
without meeting the sandboxes on the host's loopback; everything that talks to it over the
network (phones, the far end, LiveCall) runs in there too (`in_namespace`). Its control socket
is a file in the chroot, so `chroot ROOT asterisk -rx` reaches it from outside.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from livecall_ari.sandbox import sipp
from livecall_ari.sandbox.rtp import tone_pcap
from tests.conftest import until
from tests.integration.multi import seed_chroot, unavailable

NAMESPACE = "lc-stock-it"
STOCK_ROOT = Path.home() / ".cache/livecall/stock-it"
FAR_END = "127.0.0.2"  # the trunk's far end (PJSIP identify matches by address only)
# The admin's phones: 2101 makes marketing calls, 2102 service calls.
PHONES = ("2101", "2102")
SHADOWING_PATTERN = "exten => _0X.,1,Dial(PJSIP/${EXTEN}@mytrunk,60)"

ADMIN_PJSIP = """
; ---- the admin's own configuration ----
[office-udp]
type = transport
protocol = udp
bind = 127.0.0.1:5060
{phones}
[mytrunk]
type = endpoint
context = from-mytrunk
disallow = all
allow = alaw,ulaw
aors = mytrunk

[mytrunk]
type = aor
contact = sip:{far_end}:5060

[mytrunk]
type = identify
endpoint = mytrunk
match = {far_end}
"""

ADMIN_PHONE = """
[{name}]
type = endpoint
context = office-phones
disallow = all
allow = alaw,ulaw
auth = {name}
aors = {name}

[{name}]
type = auth
auth_type = userpass
username = {name}
password = {password}

[{name}]
type = aor
max_contacts = 1
"""

ADMIN_EXTENSIONS = f"""
; ---- the admin's own configuration ----
[office-phones]
exten => _2XXX,1,Dial(PJSIP/${{EXTEN}},30)
{SHADOWING_PATTERN}

[from-mytrunk]
exten => _X.,1,Hangup()
"""


def _ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "asterisk":
            return int(fields[2]), int(fields[3])
    raise AssertionError(f"{root} has no asterisk user")


def in_namespace(argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACE, *argv]


@dataclass
class StockAsterisk:
    """The admin's Asterisk: its chroot, its namespace, its process."""

    root: Path
    passwords: dict[str, str] = field(default_factory=lambda: {p: f"pw-{p}-{os.urandom(6).hex()}" for p in PHONES})
    proc: subprocess.Popen[bytes] | None = None

    @property
    def etc(self) -> Path:
        return self.root / "etc/asterisk"

    def prepare(self, source: Path) -> None:
        """Copy ``source`` (once, cached) and put the copy back to a stock Asterisk: Debian's
        sample configs, no logs, recordings, CDRs, Asterisk database or LiveCall prompts."""
        seed_chroot(source, self.root)
        if not (self.root / "usr/sbin/asterisk").exists():
            unavailable(f"no Asterisk chroot to copy at {source} (`livecall sandbox up` builds one)")
        # An Asterisk left running by a run that was killed would hold the control socket.
        control = self.root / "run/asterisk/asterisk.ctl"
        if control.exists():
            try:
                self.rx("core stop now")
            except (AssertionError, subprocess.SubprocessError):
                control.unlink(missing_ok=True)  # nobody answers on it: stale
            until(lambda: not control.exists(), timeout=15, what="the Asterisk left by an earlier run to stop")
        shutil.rmtree(self.etc)
        subprocess.run(["cp", "-a", str(source / "etc/asterisk"), str(self.etc)], check=True)
        for folder in ("var/log/asterisk", "var/spool/asterisk"):
            for path in (self.root / folder).rglob("*"):
                if not path.is_dir():
                    path.unlink()
        for path in (self.root / "var/lib/asterisk").glob("astdb.sqlite3*"):
            path.unlink()
        shutil.rmtree(self.root / "var/spool/asterisk/monitor/livecall", ignore_errors=True)
        shutil.rmtree(self.root / "usr/share/asterisk/sounds/livecall", ignore_errors=True)
        uid, gid = _ids(self.root)
        run_dir = self.root / "run/asterisk"  # what the package's systemd unit would create
        run_dir.mkdir(exist_ok=True)
        os.chown(run_dir, uid, gid)

    def add_admin_configuration(self) -> None:
        """What the admin had before LiveCall: a transport, two phones with digest auth, a
        trunk to the far end, and a context whose own pattern sends 0... straight out."""
        phones = "".join(ADMIN_PHONE.format(name=n, password=self.passwords[n]) for n in PHONES)
        self.append("pjsip.conf", ADMIN_PJSIP.format(phones=phones, far_end=FAR_END))
        self.append("extensions.conf", ADMIN_EXTENSIONS)

    def append(self, name: str, text: str) -> None:
        path = self.etc / name
        with path.open("a") as f:
            f.write(text)
        self._own(path)

    def edit(self, name: str, old: str, new: str) -> None:
        """Replace the one occurrence of ``old`` in an Asterisk file, as an admin's editor would."""
        path = self.etc / name
        text = path.read_text()
        assert text.count(old) == 1, f"{path}: expected {old!r} once, found it {text.count(old)} times"
        path.write_text(text.replace(old, new))
        self._own(path)

    def _own(self, path: Path) -> None:
        uid, gid = _ids(self.root)
        os.chown(path, uid, gid)
        path.chmod(0o640)

    def start(self) -> None:
        subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True)
        for argv in (["ip", "netns", "add", NAMESPACE], in_namespace(["ip", "link", "set", "lo", "up"])):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                unavailable(f"cannot make the network namespace ({' '.join(argv)}): {done.stderr.strip()}")
        log = open(self.root / "var/log/asterisk/console.log", "ab")
        self.proc = subprocess.Popen(
            in_namespace(["chroot", str(self.root), "/usr/sbin/asterisk", "-f", "-U", "asterisk", "-G", "asterisk"]),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        until(lambda: self._booted(), timeout=60, interval=0.2, what="the stock Asterisk to boot")

    def _booted(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"Asterisk exited ({self.proc.returncode}): see {self.root}/var/log/asterisk/console.log")
        try:
            self.rx("core waitfullybooted")  # returns once booted; fails while the socket is not there
            return True
        except (AssertionError, subprocess.TimeoutExpired):
            return False

    @property
    def rx_command(self) -> str:
        return f"chroot {self.root} /usr/sbin/asterisk -rx"

    def rx(self, command: str) -> str:
        done = subprocess.run(["chroot", str(self.root), "/usr/sbin/asterisk", "-rx", command],
                              capture_output=True, text=True, timeout=15)
        if done.returncode != 0:
            raise AssertionError(f"asterisk -rx {command!r} failed: {done.stderr or done.stdout}")
        return done.stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.rx("core stop now")
                self.proc.wait(15)
            except (AssertionError, subprocess.SubprocessError):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True)

    def call(self, number: str, agent: str, **kwargs: object) -> sipp.SippResult:
        """An agent's call from one of the admin's phones (sipp inside the namespace)."""
        return sipp.start_call(number, agent, self.passwords[agent], pbx="127.0.0.1:5060", **kwargs).wait()  # type: ignore[arg-type]


def sipp_in_namespace(folder: Path) -> str:
    """A folder with a `sipp` that runs the real one inside the namespace: put it first on PATH
    and the harness's sipp phones call the admin's Asterisk."""
    real = shutil.which("sipp")
    if real is None:
        unavailable("sipp is not installed (apt-get install sip-tester)")
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "sipp"
    shim.write_text(f'#!/bin/sh\nexec ip netns exec {NAMESPACE} {real} "$@"\n')
    shim.chmod(0o755)
    return str(folder)


@dataclass
class FarEnd:
    """The trunk's far end: a sipp UAS on FAR_END:5060 that answers every INVITE, sends audio
    and traces what it receives, so a test can tell which numbers reached the trunk."""

    proc: subprocess.Popen[str]
    workdir: Path

    @classmethod
    def start(cls) -> "FarEnd":
        workdir = Path(tempfile.mkdtemp(prefix="livecall-far-end-"))
        tone_pcap(workdir / "agent.pcap", 700, 30)
        stderr = open(workdir / "sipp-stderr.txt", "w")
        proc = subprocess.Popen(
            in_namespace(["sipp", "-sf", str(sipp.SCENARIO_DIR / "phone_answer.xml"), "-i", FAR_END, "-p", "5060",
                          "-mi", FAR_END, "-m", "1000", "-trace_msg", "-nostdin"]),
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )
        stderr.close()
        far_end = cls(proc, workdir)
        until(far_end.listening, timeout=10, what="the far end to listen")
        return far_end

    def listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the far end's sipp exited: {(self.workdir / 'sipp-stderr.txt').read_text()}")
        return bool(list(self.workdir.glob("*messages*")))

    def dialled(self) -> list[str]:
        """The numbers of the INVITEs that reached the far end, in order."""
        text = "".join(f.read_text(errors="replace") for f in self.workdir.glob("*messages*"))
        return re.findall(r"^INVITE sip:([^@;>\s]+)@", text, re.M)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

