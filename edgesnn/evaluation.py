"""Test-region evaluation (CONTRACTS section 1) of any model given as a predict function.

The same code scores a PyTorch checkpoint and an onnxruntime session: `predict(windows [N, 1, L])
-> logits [N, C]`, numpy in and out.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgesnn.dataset import Windows
from edgesnn.errors import EdgesnnError
from edgesnn.signal import add_noise

SNR_SWEEP_DB = (-10, -8, -6, -4, -2, 0, 2, 4)
Predict = Callable[[np.ndarray], np.ndarray]


def predict_labels(predict: Predict, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The class of each window; a model giving NaN or infinite logits is refused (argmax would
    read them as class 0, and score it)."""
    out = []
    for i in range(0, len(x), batch):
        logits = predict(x[i : i + batch, None, :])
        if not np.isfinite(logits).all():
            raise EdgesnnError("the model gives NaN or infinite outputs (a diverged training?); not scored")
        out.append(logits.argmax(axis=1))
    return np.concatenate(out) if out else np.empty(0, dtype=int)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def evaluate(predict: Predict, test: Windows, classes, snrs=SNR_SWEEP_DB, seed: int = 0) -> dict:
    """Clean accuracy, confusion matrix, per-load accuracy and the SNR sweep on test windows.

    Noise is drawn from a fixed seed per SNR so that two models compared in one run see the
    very same noisy windows.
    """
    pred = predict_labels(predict, test.x)
    result = {
        "n_windows": int(len(test.y)),
        "test_accuracy": float(np.mean(pred == test.y)),
        "confusion": confusion(test.y, pred, len(classes)).tolist(),
        "classes": list(classes),
        "per_load_accuracy": {
            str(int(load)): float(np.mean(pred[test.load == load] == test.y[test.load == load]))
            for load in np.unique(test.load)
        },
        "snr_accuracy": {},
    }
    for snr in snrs:
        result["snr_accuracy"][str(snr)] = float(np.mean(predict_labels(predict, noisy(test.x, snr, seed)) == test.y))
    return result


def noisy(x: np.ndarray, snr: float, seed: int = 0) -> np.ndarray:
    """The sweep's noisy copy of windows `x` at `snr` dB: the same draw for every model."""
    return add_noise(x, snr, np.random.default_rng([seed, snr + 100]))
