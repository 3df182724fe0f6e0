"""CWRU recordings arranged for one task: class indices, region windows, training sampler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesnn.errors import EdgesnnError
from edgesnn.labels import TASKS
from edgesnn.split import region_bounds, region_windows, train_window_starts
from edgesnn.sensors import cwru


@dataclass
class Windows:
    x: np.ndarray  # [N, window] float32, in g
    y: np.ndarray  # [N] class index
    load: np.ndarray  # [N] motor load (hp) of the recording


@dataclass
class TaskData:
    classes: tuple[str, ...]
    recordings: list[cwru.Recording]
    labels: np.ndarray  # class index per recording
    window: int

    def windows(self, region: str) -> Windows:
        xs, ys, loads = [], [], []
        for rec, y in zip(self.recordings, self.labels):
            w = region_windows(rec.signal, region, self.window)
            xs.append(w)
            ys.append(np.full(len(w), y))
            loads.append(np.full(len(w), rec.entry.load_hp))
        return Windows(np.concatenate(xs), np.concatenate(ys), np.concatenate(loads))

    def sample_train(self, count: int, rng: np.random.Generator,
                     speed_jitter: float = 0.0, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """`count` overlapping training windows, balanced over classes (all, or the class indices
        `classes`), then over recordings.

        speed_jitter > 0 stretches each window in time by a random factor in 1 +- speed_jitter,
        as a change of shaft speed would (defect frequencies scale with speed), so that a model
        cannot key on one recording's exact rates.
        """
        pool = np.arange(len(self.classes)) if classes is None else np.asarray(classes)
        classes = pool[rng.integers(0, len(pool), size=count)]
        x = np.empty((count, self.window), dtype=np.float32)
        for c in np.unique(classes):
            idx = np.flatnonzero(classes == c)
            recs = np.flatnonzero(self.labels == c)
            picks = rng.choice(recs, size=len(idx))
            for r in np.unique(picks):
                rows = idx[picks == r]
                sig = self.recordings[r].signal
                span = int(np.ceil(self.window * (1 + speed_jitter)))
                for row, s in zip(rows, train_window_starts(len(sig), span, len(rows), rng)):
                    if speed_jitter:
                        length = self.window * (1 + rng.uniform(-speed_jitter, speed_jitter))
                        x[row] = np.interp(np.linspace(0, length - 1, self.window), np.arange(span), sig[s : s + span])
                    else:
                        x[row] = sig[s : s + self.window]
        return x, classes


def load_task(data: Path, task: str = "cwru10", window: int = 2048, loads=None, sizes=None,
              verify: bool = True, all_classes: bool = True) -> TaskData:
    """The recordings of `task` in `data`. all_classes=False accepts a folder that holds only
    some classes (a device of a fleet records only its own machines)."""
    if task not in TASKS:
        raise EdgesnnError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    classes = TASKS[task]
    recordings = cwru.load(Path(data), verify=verify, loads=loads, sizes=sizes)
    labels = np.array([classes.index(r.entry.label(task)) for r in recordings])
    missing = [c for i, c in enumerate(classes) if i not in labels]
    if missing and all_classes:
        chosen = "".join(f" with {name} {', '.join(map(str, v))}" for name, v in (("loads", loads), ("sizes", sizes)) if v)
        raise EdgesnnError(f"{data}: no recordings{chosen} for classes {', '.join(missing)}")
    for rec in recordings:
        lo, hi = region_bounds(len(rec.signal), "test")
        if hi - lo < window:
            raise EdgesnnError(f"{rec.entry.file}: too short for one {window}-sample test window")
    return TaskData(classes, recordings, labels, window)
