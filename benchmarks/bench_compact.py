"""Compact recordings and encryption at rest, per call-minute, through LiveCall's own code.

Takes a minute of call audio (the sandbox's recording notice prompt, looped; or ``--wav FILE``),
and ``--calls`` times over: finalises it the way ``livecall serve`` does after a call
(recording/compact.py: opusenc, verify, and with ``--sealed`` AES-256-GCM sealing and the
decrypt-back check), and, for comparison, seals the WAV as a WAV-only install with encryption
does. Reports CPU per call-minute (the encoder's, from the children's rusage; LiveCall's own,
from process time), sizes and the ratio, and how the notice prompt sounds before and after
(speech envelope correlation, log-spectral distance, length and energy). Usage:

    python benchmarks/bench_compact.py [--calls 20] [--kbps 12] [--wav FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livecall_ari.protection.crypto import KeyRing, encrypt_stream, plaintext_chunks  # noqa: E402
from livecall_ari.recording.compact import Compactor, OpusEncoder  # noqa: E402

RATE = 8000


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.clip(samples, -32768, 32767).astype(np.int16).tobytes())


def notice_prompt() -> np.ndarray:
    """The sandbox's notice prompt (what every called party hears first), as 8 kHz samples."""
    from livecall_ari.config import load

    ulaw = load().asterisk_root() / "usr/share/asterisk/sounds/livecall/notice.ulaw"
    out = Path(tempfile.mkdtemp()) / "notice.wav"
    subprocess.run(["sox", "-t", "ul", "-r", str(RATE), "-c", "1", str(ulaw), "-b", "16", "-e", "signed", str(out)],
                   check=True)
    samples = read_wav(out)
    shutil.rmtree(out.parent)
    return samples


def envelope(x: np.ndarray, ms: int = 20) -> np.ndarray:
    k = RATE * ms // 1000
    usable = len(x) // k * k
    return np.sqrt(np.mean(x[:usable].reshape(-1, k) ** 2, axis=1))


def compare(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """Envelope correlation (20 ms), log-spectral distance over speech frames (32 ms, dB),
    length difference (ms) and energy difference (dB) of two renderings of the same speech."""
    n = min(len(before), len(after))
    a, b = before[:n], after[:n]

    def spectrum(x: np.ndarray) -> np.ndarray:
        k = 256
        usable = len(x) // k * k
        return 20 * np.log10(np.abs(np.fft.rfft(x[:usable].reshape(-1, k) * np.hanning(k), axis=1)) + 1e-3)

    sa, sb = spectrum(a), spectrum(b)
    speech = envelope(a, 32)[:len(sa)] > 300
    return {"envelope_r": float(np.corrcoef(envelope(a), envelope(b))[0, 1]),
            "lsd_db": float(np.sqrt(np.mean((sa[speech] - sb[speech]) ** 2, axis=1)).mean()),
            "length_ms": (len(after) - len(before)) * 1000 / RATE,
            "energy_db": float(10 * np.log10(np.mean(b ** 2) / np.mean(a ** 2)))}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="one-minute recordings to finalise")
    parser.add_argument("--kbps", type=int, default=12)
    parser.add_argument("--wav", type=Path, help="8 kHz 16-bit WAV to loop to a minute (default: the notice prompt)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-compact-"))
    try:
        speech = read_wav(args.wav) if args.wav else notice_prompt()
        minute = np.tile(speech, int(np.ceil(60 * RATE / len(speech))))[:60 * RATE]
        source = work / "minute.wav"
        write_wav(source, minute)
        wav_bytes = source.stat().st_size
        ring = KeyRing.load(work / "keys" / "recording.key", create=True)
        encoder = OpusEncoder(args.kbps)
        rows = []
        for label, keys in (("opus", None), ("opus, sealed", ring)):
            compactor = Compactor(encoder, keys)
            enc0, own0, wall0 = children_cpu(), time.process_time(), time.perf_counter()
            sizes = []
            for n in range(args.calls):
                wav = work / f"{n}.wav"
                shutil.copyfile(source, wav)
                stored = compactor.finalise(wav, f"/r/{n}.wav", 60_000)
                sizes.append(stored.size_bytes)
                stored.path.unlink()
                wav.unlink()
            rows.append((label, (children_cpu() - enc0) / args.calls, (time.process_time() - own0) / args.calls,
                         (time.perf_counter() - wall0) / args.calls, float(np.mean(sizes))))
        # A WAV-only install with encryption seals the WAV itself.
        own0, wall0 = time.process_time(), time.perf_counter()
        for n in range(args.calls):
            sealed = work / f"{n}.sealed"
            with open(source, "rb") as src, open(sealed, "wb") as out:
                encrypt_stream(src, out, ring)
            size = sealed.stat().st_size
            sealed.unlink()
        rows.append(("wav, sealed", 0.0, (time.process_time() - own0) / args.calls,
                     (time.perf_counter() - wall0) / args.calls, float(size)))

        # The notice prompt before (as Asterisk plays it) and after (decoded from the stored object).
        prompt = notice_prompt() if not args.wav else speech
        write_wav(work / "prompt.wav", prompt)
        stored = Compactor(encoder, ring).finalise(work / "prompt.wav", "/r/prompt.wav", len(prompt) * 1000 // RATE)
        (work / "prompt.ogg.plain").write_bytes(b"".join(plaintext_chunks(stored.path, ring)))
        subprocess.run(["opusdec", "--quiet", "--rate", str(RATE), str(work / "prompt.ogg.plain"), str(work / "after.wav")],
                       check=True)
        heard = compare(prompt, read_wav(work / "after.wav"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, Python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{args.calls} one-minute recordings, WAV {wav_bytes / 2**20:.2f} MiB each, Opus at {args.kbps} kbit/s")
    print("| kept as | encoder CPU ms / call-minute | LiveCall CPU ms / call-minute | wall ms / call-minute | size KiB / call-minute | smaller than WAV |")
    print("|---|---|---|---|---|---|")
    for label, enc, own, wall, size in rows:
        print(f"| {label} | {enc * 1000:.0f} | {own * 1000:.1f} | {wall * 1000:.0f} | {size / 1024:.1f} | {wav_bytes / size:.1f}x |")
    print(f"notice prompt before/after ({len(prompt) / RATE:.1f} s): envelope r {heard['envelope_r']:.4f}, "
          f"log-spectral distance {heard['lsd_db']:.1f} dB, length {heard['length_ms']:+.0f} ms, energy {heard['energy_db']:+.2f} dB")


if __name__ == "__main__":
    main()
