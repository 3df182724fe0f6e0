"""A training variant measured, not in the product: structural-path augmentation. Another sensor
position feels the same impacts through another structural path (other resonances); this trains
the default's network (its settings, one thread) with a share of the training windows convolved
with a random impulse response: a direct path of random weight plus two damped resonances
(1-5.5 kHz, damping 2-10 %). The impacts' timing is kept, the resonances change, so the network
should lean on the timing. Saves one checkpoint per seed; score them with sensor_position.py and
score_checkpoints.py (benchmarks/README.md has the results).

    python benchmarks/path_augmentation.py --share 0.5 --seed 0 --out runs/path_augmentation/share0.5_s0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

FS_HZ, TAPS = 12_000.0, 256  # 21 ms: a 1 kHz mode damped at 2 % has decayed to 7 % by then


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--share", type=float, required=True, help="share of training windows given a random path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import torch

    from edgesnn.dataset import TaskData
    from edgesnn.training import TrainConfig, train

    plain = TaskData.sample_train

    def sample_train(self, count, rng, speed_jitter=0.0, classes=None):  # the default's windows, some re-pathed
        x, y = plain(self, count, rng, speed_jitter, classes)
        pick = np.flatnonzero(rng.random(count) < args.share)
        if len(pick):
            n = x.shape[1] + TAPS
            spectrum = np.fft.rfft(x[pick], n) * np.fft.rfft(random_paths(len(pick), rng), n)
            x[pick] = np.fft.irfft(spectrum, n)[:, : x.shape[1]].astype(np.float32)
        return x, y

    TaskData.sample_train = sample_train
    cfg = TrainConfig(pack="mra_snn", data=str(args.data), seed=args.seed, timesteps=1, bits=2, threads=1)
    start = time.time()
    ckpt = train(cfg)
    ckpt["command"] = f"python benchmarks/path_augmentation.py --share {args.share:g} --seed {args.seed}"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.out / "checkpoint.pt")
    print(f"trained in {time.time() - start:.0f} s; wrote {args.out / 'checkpoint.pt'}")


if __name__ == "__main__":
    main()
