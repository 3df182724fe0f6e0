"""The leak-free split of CONTRACTS section 1.

Per recording, in time order: first 60 % training, next 10 % validation, last 30 % test.
No window crosses a boundary, test windows do not overlap. Training windows may overlap, but
only inside the training region.
"""

from __future__ import annotations

import numpy as np

from edgesnn.signal import frame

FRACTIONS = {"train": (0.0, 0.6), "val": (0.6, 0.7), "test": (0.7, 1.0)}


def region_bounds(n_samples: int, region: str) -> tuple[int, int]:
    lo, hi = FRACTIONS[region]
    return int(n_samples * lo), int(n_samples * hi)


def region(x: np.ndarray, name: str) -> np.ndarray:
    lo, hi = region_bounds(len(x), name)
    return x[lo:hi]


def region_windows(x: np.ndarray, name: str, window: int) -> np.ndarray:
    """Windows inside one region: non-overlapping for test, half-overlapping for validation."""
    hop = window if name == "test" else window // 2
    return frame(region(x, name), window, hop)


def train_window_starts(n_samples: int, window: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Random starts of overlapping training windows, each wholly inside the training region."""
    lo, hi = region_bounds(n_samples, "train")
    return rng.integers(lo, hi - window + 1, size=count)
