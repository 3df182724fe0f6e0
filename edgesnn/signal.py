"""Signal preparation shared by training, evaluation and the edge runtime (numpy only)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from edgesnn.errors import EdgesnnError

# Accelerometer rates outside this range are a unit mistake (kHz vs Hz), not a sensor.
MIN_FS_HZ = 1_000.0
MAX_FS_HZ = 1_000_000.0


def check_fs(fs: float | None, where: str) -> float:
    if fs is None:
        raise EdgesnnError(f"{where}: no sample rate; give one with --fs HZ")
    if not np.isfinite(fs) or not (MIN_FS_HZ <= fs <= MAX_FS_HZ):
        raise EdgesnnError(
            f"{where}: sample rate {fs:g} Hz is outside {MIN_FS_HZ:g}..{MAX_FS_HZ:g} Hz"
        )
    return float(fs)


# A signal sampled below the model's rate lacks the band the model listens to between the two
# Nyquist frequencies (a bearing's resonances ring up to 5-6 kHz), and upsampling cannot bring it
# back: such a recording is refused, not diagnosed with confidence. 1 % below is let through: a
# sensor's measured rate may sit a little under its nominal one.
MIN_RATE_SHARE = 0.99


def too_slow(fs: float, model_fs: float) -> str:
    """Why a signal at `fs` cannot be diagnosed by a model at `model_fs`, in words; "" if it can."""
    if fs >= MIN_RATE_SHARE * model_fs:
        return ""
    return (f"sampled at {fs:g} Hz, below the model's {model_fs:g} Hz: it lacks the band from {fs / 2:g} to "
            f"{model_fs / 2:g} Hz that the model diagnoses from; record at {model_fs:g} Hz or more")


def resample(x: np.ndarray, fs: float, target_fs: float) -> np.ndarray:
    """Polyphase resampling with scipy's anti-alias filter (e.g. CWRU's 48 kHz normal to 12 kHz)."""
    if fs == target_fs:
        return x
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator)


# The smallest hop is a sixteenth of the window: each window is a copy, so this bounds the windows
# (and the memory) a stretch of signal can make, in infer as in the monitor.
MAX_WINDOWS_PER_WINDOW = 16


def frame(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Windows of `window` samples every `hop` samples, as a float32 array [N, window]."""
    if len(x) < window:
        return np.empty((0, window), dtype=np.float32)
    starts = np.arange(0, len(x) - window + 1, hop)
    return np.stack([x[s : s + window] for s in starts]).astype(np.float32)


def frame_blocks(x: np.ndarray, window: int, hop: int, block: int = 1024):
    """frame()'s windows, at most `block` at a time: a recording of hours, finely hopped, would
    otherwise be copied into gigabytes of windows at once."""
    n = (len(x) - window) // hop + 1 if len(x) >= window else 0
    for first in range(0, n, block):
        yield frame(x[first * hop : (first + block - 1) * hop + window], window, hop)


# A window this still carries no vibration: a disconnected or dead sensor sends a constant, which
# per-window standardization would otherwise blow up into a confident, meaningless diagnosis.
# 1 micro-g is below the noise floor of any industrial accelerometer.
FLAT_STD_G = 1e-6
NO_SIGNAL = "no_signal"  # what infer and the monitor say of such a window, in place of a diagnosis


def flat(windows: np.ndarray) -> np.ndarray:
    """[N, L] -> [N] bool: the windows with no vibration (standard deviation below FLAT_STD_G)."""
    return np.asarray(windows, dtype=np.float64).std(axis=-1) < FLAT_STD_G


def add_noise(windows: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise at `snr_db`, signal power measured per window (CONTRACTS 1)."""
    power = np.mean(windows.astype(np.float64) ** 2, axis=-1, keepdims=True)
    sigma = np.sqrt(power / 10 ** (snr_db / 10))
    return (windows + sigma * rng.standard_normal(windows.shape)).astype(np.float32)
