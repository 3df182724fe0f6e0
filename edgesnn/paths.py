"""Structural-path augmentation (`edgesnn train --path-share`), numpy only.

A sensor elsewhere on the machine feels the same bearing impacts, at the same repetition rate,
through another structural path: other resonances, another balance of direct and ringing
vibration. A share of the fault windows in each training batch is convolved with a random impulse
response (a direct path of random weight plus two damped resonances, 1 to 5.5 kHz, damping 2 to
10 %), so that the impacts' timing stays and the drive-end sensor's resonances stop being a
reliable cue. Normal windows keep their path (README, "Light views on random paths", has what
each choice measured).
"""

from __future__ import annotations

import numpy as np

FS_HZ = 12_000.0
TAPS = 256  # 21 ms: a 1 kHz mode damped at 2 % has decayed to 7 % by then


def random_paths(n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, TAPS] impulse responses: a direct path and two damped resonances each."""
    t = np.arange(TAPS) / FS_HZ
    h = np.zeros((n, TAPS))
    h[:, 0] = rng.uniform(0.0, 1.0, n)
    for _ in range(2):
        f = rng.uniform(1000, 5500, n)[:, None]
        zeta = rng.uniform(0.02, 0.10, n)[:, None]
        amplitude = rng.uniform(0.3, 1.0, n)[:, None]
        w = 2 * np.pi * f
        h += amplitude * np.exp(-zeta * w * t) * np.sin(w * np.sqrt(1 - zeta**2) * t) * (w / FS_HZ)
    return h


def repath(x: np.ndarray, y: np.ndarray, share: float, rng: np.random.Generator, normal: int | None) -> np.ndarray:
    """Windows x [N, L] (labels y) with about `share` of the windows not of class `normal` (None:
    of any class) convolved with a random path each, in place; the same draws whatever the share."""
    chosen = rng.random(len(x)) < share
    pick = np.flatnonzero(chosen & (y != normal) if normal is not None else chosen)
    if len(pick):
        n = x.shape[1] + TAPS
        spectrum = np.fft.rfft(x[pick], n) * np.fft.rfft(random_paths(len(pick), rng), n)
        x[pick] = np.fft.irfft(spectrum, n)[:, : x.shape[1]].astype(x.dtype)
    return x
