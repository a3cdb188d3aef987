"""RTP audio for the sandbox's sipp phones: a pcap file that sipp's play_pcap_audio replays.

Phones send 20 ms G.711 packets. (sipp's own g711a.pcap uses 30 ms packets; bridged with a
20 ms leg, Asterisk's MixMonitor loses that side's audio, so the sandbox does not use it.)
"""

from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path

PACKET_SAMPLES = 160  # 20 ms at 8 kHz
PCMA = 8


def pcap_of_alaw(path: Path, alaw: bytes, port: int = 4000) -> Path:
    """Write A-law audio as a pcap of RTP packets, 20 ms apart."""
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # pcap header, Ethernet
    for n, offset in enumerate(range(0, len(alaw) - PACKET_SAMPLES + 1, PACKET_SAMPLES)):
        rtp = struct.pack("!BBHII", 0x80, PCMA, n & 0xFFFF, n * PACKET_SAMPLES, 0x4C49_5645) + alaw[offset:offset + PACKET_SAMPLES]
        udp = struct.pack("!HHHH", port, port, 8 + len(rtp), 0) + rtp
        loopback = socket.inet_aton("127.0.0.1")
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0, loopback, loopback) + udp
        frame = bytes(12) + b"\x08\x00" + ip
        micros = n * 20_000
        records.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(records))
    return path


def tone_pcap(path: Path, hz: float, seconds: float) -> Path:
    """A pcap of a sine at ``hz`` (half scale), ``seconds`` long."""
    result = subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "al", "-", "synth", str(seconds), "sine", str(hz), "vol", "0.5"],
        capture_output=True, check=True,
    )
    return pcap_of_alaw(path, result.stdout)
