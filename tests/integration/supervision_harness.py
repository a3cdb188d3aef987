"""Audio-path helpers for the supervision tests: parties that send a tone, an RTP capture of
what each receives, and a Goertzel check of which tones are in it.

Each sipp party sends its own tone (made with sox into a pcap in the party's temporary working
folder, which its scenario plays as ``party.pcap``). What a party receives is captured off the
loopback interface (an AF_PACKET socket, so the tests run as root like the sandbox) by UDP port,
decoded from G.711 and checked by frequency: who heard whom.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from livecall_ari.sandbox.rtp import tone_pcap
from livecall_ari.sandbox.sipp import SCENARIO_DIR
from tests.conftest import until

if TYPE_CHECKING:
    from livecall_ari.config import Settings

AGENT_HZ = 600
SUPERVISOR_HZ = 1000
FAR_END_HZ = 1400  # the simulated PSTN's tone number sends this
TONE_NUMBER = "02079460777"

_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4


# -- G.711 ------------------------------------------------------------------------------------

def _alaw(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _ulaw(byte: int) -> int:
    u = ~byte & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if u & 0x80 else (t - 0x84)


_DECODE = {0: [_ulaw(b) for b in range(256)], 8: [_alaw(b) for b in range(256)]}


# -- tones --------------------------------------------------------------------------------------

def tone_power(samples: list[int], hz: float, rate: int = 8000) -> float:
    """Share of the block's energy at ``hz`` (Goertzel): about 1 for a pure tone at hz, 0.5 each
    for two equal tones, near 0 when absent."""
    n = len(samples)
    energy = sum(s * s for s in samples)
    if n == 0 or energy == 0:
        return 0.0
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * power / (n * energy)


def seconds_with_tone(samples: list[int], hz: float, rate: int = 8000, threshold: float = 0.1) -> float:
    """How many seconds (in 100 ms blocks with some signal) carry the tone."""
    block = rate // 10
    found = 0
    for start in range(0, len(samples) - block + 1, block):
        chunk = samples[start:start + block]
        if max(abs(s) for s in chunk) < 200:
            continue
        if tone_power(chunk, hz, rate) >= threshold:
            found += 1
    return found / 10


def wav_samples(path: Path) -> list[int]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        data = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def service_settings(env: dict[str, str]) -> "Settings":
    """The settings a test's service runs with: the environment's, with its own overrides."""
    from livecall_ari.config import load

    full = {**os.environ, **env}
    return load(full.get("LIVECALL_CONFIG"), environ=full)


def recorded_samples(env: dict[str, str], path: Path) -> list[int]:
    """A finished recording's samples, as recorded: when the service (its settings in ``env``)
    encrypts recordings at rest, once it has sealed the file, decrypted with its key."""
    from livecall_ari.protection.crypto import is_encrypted, plaintext_chunks, recording_keys

    settings = service_settings(env)
    sizes: list[int] = []

    def finished() -> bool:
        if not path.exists():
            return False
        if settings.protection.encrypt_recordings:
            return is_encrypted(path)
        sizes.append(path.stat().st_size)
        return len(sizes) > 2 and sizes[-1] == sizes[-3] and sizes[-1] > 44

    until(finished, timeout=60, interval=0.3, what=f"{path.name} to be finished")
    keys = recording_keys(settings) if settings.protection.encrypt_recordings else None
    data = b"".join(plaintext_chunks(path, keys))
    assert data[:4] == b"RIFF", path
    pcm = data[44:]
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2]))


# -- RTP capture --------------------------------------------------------------------------------

@dataclass
class RtpCapture:
    """RTP to and from one UDP port on loopback, as decoded audio, in arrival order."""

    port: int
    received: list[tuple[float, int, bytes]] = field(default_factory=list)  # (time, payload type, payload)
    sent: list[tuple[float, int, bytes]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "RtpCapture":
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(_ETH_P_ALL))
        sock.bind(("lo", 0))
        sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()
        return self

    def _run(self, sock: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame, addr = sock.recvfrom(65535)
                except socket.timeout:
                    continue
                if addr[2] == _PACKET_OUTGOING or len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00":
                    continue
                ip = frame[14:]
                if ip[9] != 17:
                    continue
                udp = ip[(ip[0] & 0x0F) * 4:]
                src, dst = struct.unpack("!HH", udp[:4])
                rtp = udp[8:]
                if rtp[0] >> 6 != 2:
                    continue
                pt = rtp[1] & 0x7F
                header = 12 + 4 * (rtp[0] & 0x0F)
                packet = (time.monotonic(), pt, bytes(rtp[header:]))
                if dst == self.port:
                    self.received.append(packet)
                elif src == self.port:
                    self.sent.append(packet)
        finally:
            sock.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    @staticmethod
    def audio(packets: list[tuple[float, int, bytes]], since: float = 0.0) -> list[int]:
        out: list[int] = []
        for at, pt, payload in packets:
            if at >= since and pt in _DECODE:
                table = _DECODE[pt]
                out.extend(table[b] for b in payload)
        return out

    def heard(self, hz: float, since: float = 0.0) -> float:
        """Seconds of ``hz`` in what this port received."""
        return seconds_with_tone(self.audio(self.received, since), hz)

    def said(self, hz: float) -> float:
        return seconds_with_tone(self.audio(self.sent), hz)


# -- parties ------------------------------------------------------------------------------------

def free_port_block(size: int = 4) -> int:
    """The first of ``size`` free UDP ports, outside both sandboxes' RTP ranges (10000-29999)."""
    for _ in range(200):
        first = random.randrange(30000, 39990, 2)
        socks = []
        try:
            for p in range(first, first + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free UDP ports for a sipp party")


@dataclass
class Party:
    """A sipp process sending its tone, with the capture of its media port."""

    name: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    capture: RtpCapture

    def wait(self, timeout: float = 60) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.capture.stop()
        return self.proc.returncode

    def errors(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*errors*")) + (
            (self.workdir / "stderr.txt").read_text(errors="replace")
        )

    def messages(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*messages*"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.capture.stop()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_party(
    name: str, scenario: str, *, pbx: str, hz: int | None, user: str, password: str, service: str = "",
    sip_port: int = 0, extra: list[str] | None = None, timeout: int = 90,
) -> Party:
    """Start sipp as a phone of the sandbox; ``hz`` is the tone it sends (None: no party.pcap)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"livecall-{name}-"))
    media = free_port_block()
    if hz is not None:
        tone_pcap(workdir / "party.pcap", hz, 60.0)
    (workdir / "party.csv").write_text(f"SEQUENTIAL\n{user};\n")
    cmd = [
        "sipp", pbx, "-sf", str(SCENARIO_DIR / scenario), "-inf", str(workdir / "party.csv"),
        "-au", user, "-ap", password, "-i", "127.0.0.1", "-p", str(sip_port), "-mi", "127.0.0.1",
        "-mp", str(media), "-m", "1", "-timeout", str(timeout), "-timeout_error", "-trace_err", "-trace_msg",
        "-nostdin", *(["-s", service] if service else []), *(extra or []),
    ]
    capture = RtpCapture(media).start()
    with open(workdir / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr)
    return Party(name, proc, workdir, capture)


def register(pbx: str, user: str, password: str, port: int, expires: int) -> None:
    """Register (or, with 0, unregister) ``user`` from 127.0.0.1:``port``."""
    workdir = Path(tempfile.mkdtemp(prefix="livecall-register-"))
    (workdir / "party.csv").write_text(f"SEQUENTIAL\n{user};\n")
    try:
        result = subprocess.run(
            ["sipp", pbx, "-sf", str(SCENARIO_DIR / "phone_register.xml"), "-inf", str(workdir / "party.csv"),
             "-au", user, "-ap", password, "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-key", "expires",
             str(expires), "-timeout", "10", "-timeout_error", "-nostdin", "-trace_err"],
            cwd=workdir, capture_output=True, timeout=30,
        )
        assert result.returncode == 0, f"REGISTER {user} failed: {result.stderr.decode(errors='replace')}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def channel_names(rx_output: str, endpoint: str) -> list[str]:
    """PJSIP channels of an endpoint in ``core show channels concise`` output."""
    return [line.split("!")[0] for line in rx_output.splitlines() if line.startswith(f"PJSIP/{endpoint}-")]


def wait_until_heard(party: Party, hz: float, seconds: float = 1.0, timeout: float = 40, what: str = "") -> None:
    until(lambda: party.proc.poll() is None and party.capture.heard(hz) >= seconds or _died(party),
          timeout=timeout, interval=0.5, what=what or f"{party.name} to hear {hz} Hz")
    assert party.proc.poll() is None, f"{party.name} ended early:\n{party.errors()}"


def _died(party: Party) -> bool:
    return party.proc.poll() is not None


def heard_file(heard_dir: Path, number: str, before: set[Path]) -> Path:
    [path] = until(lambda: set(heard_dir.glob(f"{number}-*-heard.wav")) - before, what="the far end's recording")
    return path

