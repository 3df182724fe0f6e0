"""A simulated fleet's local data: the CWRU training region cut into skewed client shares.

Each client gets contiguous stretches of training-region windows, as a device that records its
own machines over time would. Two scenarios:
  dirichlet  class proportions per client drawn from Dirichlet(alpha): with alpha = 0.1 most
             clients see one or two fault classes;
  load       each client sees one motor load (0-3 hp) and every class at that load.
Nothing here touches the validation or test regions.
"""

from __future__ import annotations

import numpy as np

from edgesnn.dataset import TaskData
from edgesnn.errors import EdgesnnError
from edgesnn.fleet.config import SCENARIOS
from edgesnn.signal import frame
from edgesnn.split import region

MIN_WINDOWS = 8  # every client holds at least this many windows


def training_windows(data: TaskData, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All training-region windows in time order: x [N, L], class, recording index, load."""
    xs, ys, recs, loads = [], [], [], []
    for i, (rec, y) in enumerate(zip(data.recordings, data.labels)):
        w = frame(region(rec.signal, "train"), data.window, hop)
        xs.append(w)
        ys.append(np.full(len(w), y))
        recs.append(np.full(len(w), i))
        loads.append(np.full(len(w), rec.entry.load_hp))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(recs), np.concatenate(loads)


def _split_contiguous(idx: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
    cuts = np.round(np.cumsum(shares)[:-1] / shares.sum() * len(idx)).astype(int)
    return np.split(idx, cuts)


def partition(y: np.ndarray, load: np.ndarray, n_clients: int, scenario: str, alpha: float,
              seed: int) -> list[np.ndarray]:
    """Window indices of each client (disjoint, covering every training window)."""
    if scenario not in SCENARIOS:
        raise EdgesnnError(f"unknown fleet scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
    if n_clients * MIN_WINDOWS > len(y):
        raise EdgesnnError(f"{n_clients} clients need at least {n_clients * MIN_WINDOWS} training windows, have {len(y)}")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        if scenario == "dirichlet":
            for c in np.unique(y):
                shares = rng.dirichlet(np.full(n_clients, alpha))
                for k, chunk in enumerate(_split_contiguous(np.flatnonzero(y == c), shares)):
                    parts[k].append(chunk)
        else:
            loads = np.unique(load)
            if n_clients < len(loads):
                raise EdgesnnError(f"the load scenario needs a client per motor load: at least {len(loads)} clients")
            owners = [np.arange(n_clients)[i::len(loads)] for i in range(len(loads))]
            for ld, clients in zip(loads, owners):
                for c in np.unique(y):
                    chunks = _split_contiguous(np.flatnonzero((load == ld) & (y == c)), np.ones(len(clients)))
                    for k, chunk in zip(clients, chunks):
                        parts[k].append(chunk)
        out = [np.concatenate(p) if p else np.empty(0, dtype=int) for p in parts]
        if min(len(p) for p in out) >= MIN_WINDOWS:
            return out
    raise EdgesnnError(f"could not give each of {n_clients} clients {MIN_WINDOWS} windows at alpha={alpha}")
