"""Small audio checks for the integration tests: read WAV and G.711 prompt files, compare
loudness envelopes, find silence. numpy only; no audioop (gone in Python 3.13)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]
RATE = 8000


def read_wav(path: Path) -> Samples:
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2, f"{path}: not 8 kHz 16-bit"
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def samples_when_complete(path: Path) -> int:
    """How many samples a WAV file holds, or 0 while its header is not yet whole."""
    try:
        with wave.open(str(path)) as w:
            return w.getnframes()
    except (wave.Error, EOFError, OSError):
        return 0


def read_ulaw(path: Path) -> Samples:
    """Decode raw G.711 mu-law (the prompts' .ulaw files) to linear samples."""
    u = ~np.frombuffer(path.read_bytes(), dtype=np.uint8)
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    linear = magnitude - 0x84
    return np.where(sign != 0, -linear, linear).astype(np.float64)


def envelope(x: Samples, window_ms: int = 50) -> Samples:
    n = RATE * window_ms // 1000
    usable = len(x) // n * n
    return np.sqrt(np.mean(x[:usable].reshape(-1, n) ** 2, axis=1))


def best_match(haystack: Samples, needle: Samples, max_lag_s: float = 1.0, window_ms: int = 50) -> tuple[float, float]:
    """(correlation, lag in seconds) of ``needle``'s envelope at its best place near the start
    of ``haystack``'s."""
    h, n = envelope(haystack, window_ms), envelope(needle, window_ms)
    best = (-1.0, 0.0)
    for lag in range(0, int(max_lag_s * 1000 / window_ms) + 1):
        seg = h[lag:lag + len(n)]
        if len(seg) < len(n) * 0.9:
            break
        m = min(len(seg), len(n))
        if np.std(seg[:m]) == 0 or np.std(n[:m]) == 0:
            continue
        r = float(np.corrcoef(seg[:m], n[:m])[0, 1])
        if r > best[0]:
            best = (r, lag * window_ms / 1000)
    return best


def rms(x: Samples) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0


def silent_stretches(x: Samples, min_s: float, threshold: float = 1.0, window_ms: int = 20) -> list[tuple[float, float]]:
    """Stretches (start, end in seconds) at least ``min_s`` long whose every window is below
    ``threshold`` RMS: MixMonitorMute writes digital silence."""
    env = envelope(x, window_ms)
    quiet = env < threshold
    out, start = [], None
    for i, q in enumerate([*quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) * window_ms / 1000 >= min_s:
                out.append((start * window_ms / 1000, i * window_ms / 1000))
            start = None
    return out
