"""Structural-path augmentation as first measured: trains the default's network on random paths.

(edgesnn.paths; `edgesnn train --path-share` is its form in the product, fault windows only.)
Another sensor position feels the same impacts through another structural path (other
resonances); this trains the default's network (its settings, one thread) with a share of the
training windows convolved with a random impulse response: a direct path of random weight plus
two damped resonances (1-5.5 kHz, damping 2-10 %). The impacts' timing is kept, the resonances
change, so the network should lean on the timing. Saves one checkpoint per seed; score them with sensor_position.py and
score_checkpoints.py (benchmarks/README.md has the results). `--faults-only` re-paths fault windows
only (the normal class keeps the drive end's path); `--option` passes MRA-SNN pack options as
`edgesnn train --option` does (e.g. the light views). With --faults-only it sets TrainConfig's
path_share and path_until, so it trains what `edgesnn train --seed N --timesteps 1 --bits 2
--threads 1 --path-share S --path-until F` (and the same options) does, checkpoint for checkpoint;
without it, normal windows are re-pathed as well, which only this script does. `--ball-share B`
re-paths fault windows only, ball faults at share B and the others at --share; `--keep-path C`
re-paths fault windows only and never those of class C (repeatable); `--added` adds the
re-pathed copies of fault windows to the batch instead of replacing them; `--teacher CKPT` distills
as `edgesnn train --teacher` does, and with `--teacher-on-recorded` only on the windows left on
their recorded path; `--type-only-on-repathed` asks a re-pathed window for its fault type alone (the
sum of its sizes' probabilities) and the recorded ones for their class (`--ball-share`,
`--keep-path`, `--added`, `--teacher-on-recorded` and `--type-only-on-repathed`: this script only;
benchmarks/README.md has the results).

    python benchmarks/path_augmentation.py --share 0.5 --seed 0 --out runs/path_augmentation/share0.5_s0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def objective_by_path(type_only_on_repathed: bool = False) -> None:
    """Make `edgesnn.training.train` treat the windows of each batch by the path they are on.
    By default it distills only on the windows that kept their recorded path: a teacher that
    never saw another path is no judge of a re-pathed window. With `type_only_on_repathed`
    (and no teacher), a re-pathed window is asked only for its fault type, the sum of the
    probabilities of that type's sizes (the size it shows through a random path is its own), and
    the recorded windows for their class, as ever."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from edgesnn import training
    from edgesnn.dataset import TaskData
    from edgesnn.labels import CWRU10, fault_type
    from edgesnn.losses import distill

    types = [fault_type(c) for c in CWRU10]
    same_type = torch.tensor([[a == b for b in types] for a in types])  # [true class, class]

    plain_sample, plain_repath = TaskData.sample_train, training.repath
    pathed = [np.zeros(0, bool)]  # of the batch drawn last

    def sample_train(self, count, rng, speed_jitter=0.0, classes=None):
        x, y = plain_sample(self, count, rng, speed_jitter, classes)
        pathed[0] = np.zeros(len(y), bool)  # re-pathing, when a step does it, marks its windows
        return x, y

    def repath(x, y, share, rng, normal):
        state = rng.bit_generator.state  # repath's own first draw, read without consuming it
        pathed[0] = (rng.random(len(x)) < share) & (y != normal)
        rng.bit_generator.state = state
        return plain_repath(x, y, share, rng, normal)

    def loss(model, x, y, criterion, progress, teacher=None):
        logits = model(x)
        recorded = torch.from_numpy(~pathed[0])
        if type_only_on_repathed and not recorded.all():
            each = F.cross_entropy(logits, y, reduction="none", label_smoothing=criterion.label_smoothing)
            log_type = (torch.logsumexp(logits.masked_fill(~same_type[y], float("-inf")), 1)
                        - torch.logsumexp(logits, 1))
            return torch.where(recorded, each, -log_type).mean(), logits
        if teacher is None or not recorded.any():
            return criterion(logits, y), logits
        with torch.no_grad():
            soft = teacher(x[recorded])
        return criterion(logits, y) + distill(logits[recorded], soft), logits

    TaskData.sample_train, training.repath, training._loss = sample_train, repath, loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--share", type=float, required=True,
                    help="share of training windows given a random path (with --faults-only: of fault windows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the default's)")
    ap.add_argument("--faults-only", action="store_true", help="re-path fault windows only, never normal ones")
    ap.add_argument("--until", type=float, default=1.0,
                    help="re-path only in this first share of the training steps (1: all of them)")
    ap.add_argument("--ball-share", type=float, default=None,
                    help="fault windows only, ball faults re-pathed at this share and the others at --share")
    ap.add_argument("--keep-path", action="append", default=[], metavar="CLASS",
                    help="fault windows only: windows of this class keep their recorded path (repeatable); "
                         "the other fault classes are re-pathed at --share")
    ap.add_argument("--added", action="store_true",
                    help="fault windows only: the re-pathed copies join the batch beside their recorded windows")
    ap.add_argument("--teacher", type=Path, default=None,
                    help="checkpoint to distill from, as `edgesnn train --teacher` (every window)")
    ap.add_argument("--teacher-on-recorded", action="store_true",
                    help="with --teacher and --faults-only: distill on windows left on their recorded path only")
    ap.add_argument("--type-only-on-repathed", action="store_true",
                    help="with --faults-only: re-pathed windows learn their fault type only (the sum over its sizes)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an MRA-SNN pack option, repeatable (e.g. frontend=raw+envelope)")
    args = ap.parse_args()
    import numpy as np
    import torch

    from edgesnn.cli.main import _pack_options
    from edgesnn.dataset import TaskData
    from edgesnn.labels import TASKS, fault_type
    from edgesnn.paths import repath
    from edgesnn.training import TrainConfig, train

    cfg = TrainConfig(pack="mra_snn", data=str(args.data), seed=args.seed, timesteps=1, bits=2, threads=1)
    if args.epochs:
        cfg.epochs = args.epochs
    if args.keep_path and (args.ball_share is not None or args.added or args.faults_only):
        ap.error("--keep-path re-paths fault windows only itself; drop --ball-share, --added and --faults-only")
    unknown = set(args.keep_path) - set(TASKS[cfg.task])
    if unknown:
        ap.error(f"--keep-path {', '.join(sorted(unknown))}: not a class of {cfg.task}")
    if args.added and args.ball_share is not None:
        ap.error("--added re-paths every fault type at --share; drop --ball-share")
    if args.faults_only and (args.ball_share is not None or args.added):
        ap.error("--ball-share and --added re-path fault windows only themselves; drop --faults-only")
    if args.teacher_on_recorded and not (args.teacher and args.faults_only):
        ap.error("--teacher-on-recorded needs --teacher and --faults-only")
    cfg.teacher = str(args.teacher) if args.teacher else None
    if args.type_only_on_repathed and (not args.faults_only or args.teacher):
        ap.error("--type-only-on-repathed needs --faults-only, and no --teacher")
    if args.teacher_on_recorded or args.type_only_on_repathed:
        objective_by_path(args.type_only_on_repathed)
    if args.faults_only:  # the product's form: edgesnn train --path-share S --path-until F
        cfg.path_share, cfg.path_until = args.share, args.until
    else:  # normal windows re-pathed too, which the product never does: re-path each drawn batch here
        plain = TaskData.sample_train
        last_pathed_step = args.until * cfg.epochs * cfg.steps_per_epoch
        steps = [0]
        types = np.array([fault_type(c) for c in TASKS[cfg.task]])  # of each class index
        normal = TASKS[cfg.task].index("normal")
        keep = [TASKS[cfg.task].index(c) for c in args.keep_path]

        def sample_train(self, count, rng, speed_jitter=0.0, classes=None):
            x, y = plain(self, count, rng, speed_jitter, classes)
            steps[0] += 1  # training draws one batch a step
            if steps[0] > last_pathed_step:
                return x, y
            if args.added:  # copies of about --share of the fault windows, on random paths
                pick = np.flatnonzero((rng.random(len(y)) < args.share) & (y != normal))
                return np.concatenate([x, repath(x[pick], y[pick], 1.0, rng, None)]), np.concatenate([y, y[pick]])
            if args.keep_path:  # fault windows only, the kept classes on their recorded path
                pick = np.flatnonzero(~np.isin(y, keep) & (y != normal))
                x[pick] = repath(x[pick], y[pick], args.share, rng, None)
                return x, y
            if args.ball_share is None:
                return repath(x, y, args.share, rng, None), y
            kinds = types[y]  # fault windows only, ball faults at their own share
            for group, share in ((("inner_race", "outer_race"), args.share), (("ball",), args.ball_share)):
                pick = np.flatnonzero(np.isin(kinds, group))
                x[pick] = repath(x[pick], y[pick], share, rng, None)
            return x, y

        TaskData.sample_train = sample_train
    if args.option:  # parsed as `edgesnn train --option` parses them
        cfg.extra = _pack_options("mra_snn", args.option, 1, 2)
    start = time.time()
    ckpt = train(cfg)
    ckpt["command"] = (f"python benchmarks/path_augmentation.py --share {args.share:g} --seed {args.seed}"
                       + (f" --epochs {args.epochs}" if args.epochs else "") + " --faults-only" * args.faults_only
                       + (f" --until {args.until:g}" if args.until < 1 else "")
                       + (f" --ball-share {args.ball_share:g}" if args.ball_share is not None else "")
                       + "".join(f" --keep-path {c}" for c in args.keep_path) + " --added" * args.added
                       + (f" --teacher {args.teacher}" if args.teacher else "")
                       + " --teacher-on-recorded" * args.teacher_on_recorded
                       + " --type-only-on-repathed" * args.type_only_on_repathed
                       + "".join(f" --option {o}" for o in args.option))
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.out / "checkpoint.pt")
    print(f"trained in {time.time() - start:.0f} s; wrote {args.out / 'checkpoint.pt'}")


if __name__ == "__main__":
    main()
