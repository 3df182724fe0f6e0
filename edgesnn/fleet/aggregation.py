"""How a round's accepted updates are weighted in the average.

  windows   by window count (FedAvg, arXiv 1602.05629)
  balanced  every class the round's devices hold weighs alike (class_balanced_weights)

On devices that each see one or two classes, FedAvg lets one big device of one class outweigh
the rest of its round, and the global model swings towards that class for a round; balanced
weights give the classes of the round the same say. The class mixes are estimates from model
outputs (the state a device sends with its update), never labels. README "Fleet" has the
measurements.
"""

from __future__ import annotations

import numpy as np

AGGREGATIONS = ("windows", "balanced")


def class_balanced_weights(n: list[float], mixes: list[np.ndarray]) -> list[float]:
    """w_k = n_k * sum_c q_kc / p_c, where q_k is device k's estimated class mix and
    p = sum_k n_k q_k / sum_k n_k the round's pooled mix: importance weights towards a uniform
    mix. With one-hot mixes each class present gets the same total weight, split by window
    count; devices with the same mix keep FedAvg's proportions."""
    q = np.stack([m / m.sum() for m in mixes])
    n = np.asarray(n, dtype=np.float64)
    pooled = (n[:, None] * q).sum(0) / n.sum()
    return [float(w) for w in n * (q / np.maximum(pooled, 1e-12)).sum(1)]


def weights(aggregation: str, n: list[float], mixes: list[np.ndarray]) -> list[float]:
    return class_balanced_weights(n, mixes) if aggregation == "balanced" else [float(k) for k in n]


def aggregated_mix(aggregation: str, n: list[float], mixes: list[np.ndarray]) -> np.ndarray:
    """The class mix of the data behind a round's average, as `aggregation` weighs it."""
    w = weights(aggregation, n, mixes)
    return sum(wk * q for wk, q in zip(w, mixes)) / sum(w)
