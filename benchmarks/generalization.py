"""Beyond the training distribution: the 4x4 load-transfer table and leave-one-severity-out.

- Load transfer: train on one motor load (training region), test on the test region of every
  load. CWRU has a normal recording at load 0 only, so every model sees that one normal
  recording and the normal class is scored in the load-0 column only.
- Leave one severity out: a 4-class fault-type model (normal, ball, inner race, outer race)
  trained on two defect sizes is tested on the test region of the third size (and normal).

MRA-SNN and WDCNN are trained side by side with the same protocol and seed. Prints the tables,
writes JSON and a PNG.

    python benchmarks/generalization.py --data ../shared/datasets/cwru --jobs 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edgesnn.cli.main import _pack_options

SIZES = (0.007, 0.014, 0.021)
PACKS = ("mra_snn", "wdcnn")


def run_job(job) -> dict:
    kind, pack, held, base = job
    import torch

    from edgesnn.dataset import load_task
    from edgesnn.evaluation import evaluate
    from edgesnn.training import TrainConfig, model_from_checkpoint, torch_predict, train

    torch.set_num_threads(base["threads"])
    if kind == "load":
        cfg = TrainConfig(pack=pack, data=base["data"], loads=[held])
        test_data = load_task(Path(base["data"]))
    else:
        cfg = TrainConfig(pack=pack, data=base["data"], task="fault_type", sizes=[s for s in SIZES if s != held])
        test_data = load_task(Path(base["data"]), "fault_type", sizes=[held])
    cfg.epochs, cfg.steps_per_epoch, cfg.seed, cfg.device = base["epochs"], base["steps"], base["seed"], base["device"]
    cfg.speed_jitter, cfg.path_share, cfg.path_until = base["speed_jitter"], base["path_share"], base["path_until"]
    cfg.timesteps = base["timesteps"]
    if pack == "mra_snn":
        cfg.extra = dict(base["options"])
    ckpt = train(cfg)
    model = model_from_checkpoint(ckpt, cfg.device)
    r = evaluate(torch_predict(model), test_data.windows("test"), test_data.classes, snrs=())
    return {"kind": kind, "pack": pack, "held": held, "test_accuracy": r["test_accuracy"],
            "per_load_accuracy": r["per_load_accuracy"], "confusion": r["confusion"],
            "train_seconds": ckpt["train_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/cwru")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--speed-jitter", type=float, default=0.0, help="training time-stretch augmentation")
    ap.add_argument("--path-share", type=float, default=0.0, help="structural-path augmentation (edgesnn train "
                                                                   "--path-share)")
    ap.add_argument("--path-until", type=float, default=1.0, help="edgesnn train --path-until")
    ap.add_argument("--timesteps", type=int, default=4, help="MRA-SNN timesteps (4: the recorded results)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an MRA-SNN pack option, repeatable (e.g. frontend=envelope)")
    ap.add_argument("--packs", default=",".join(PACKS), help="packs to train, of " + ",".join(PACKS))
    ap.add_argument("--kinds", default="load,severity", help="load (4x4 transfer), severity (leave one size out)")
    ap.add_argument("--held-out", default=",".join(map(str, SIZES)), help="sizes to hold out, of the three (severity)")
    ap.add_argument("--out", default="bench_out/generalization", help="writes <out>.json and <out>.png")
    args = ap.parse_args()
    base = {k: getattr(args, k) for k in ("data", "epochs", "steps", "seed", "threads", "device",
                                          "speed_jitter", "path_share", "path_until", "timesteps")}
    # parsed as `edgesnn train --option` parses them (numbers, true/false and lists as JSON)
    base["options"] = _pack_options("mra_snn", args.option, args.timesteps, 2) if args.option else {}
    packs, kinds = args.packs.split(","), args.kinds.split(",")
    jobs = [("load", p, load, base) for p in packs for load in range(4) if "load" in kinds]
    held_out = [float(s) for s in args.held_out.split(",")]
    jobs += [("severity", p, size, base) for p in packs for size in held_out if "severity" in kinds]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(run_job, jobs))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))

    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    for pack in (packs if "load" in kinds else []):
        t = Table(title=f"{pack}: load transfer (rows: training load, columns: test load; test region)")
        for col in ["train \\ test", "0", "1", "2", "3", "mean off-diagonal"]:
            t.add_column(col, justify="right")
        for r in (r for r in results if r["kind"] == "load" and r["pack"] == pack):
            acc = r["per_load_accuracy"]
            off = np.mean([acc[str(j)] for j in range(4) if j != r["held"]])
            t.add_row(f"load {r['held']}", *[f"{acc[str(j)]:.4f}" for j in range(4)], f"{off:.4f}")
        console.print(t)
    if "severity" in kinds:
        t = Table(title="leave one severity out: fault-type accuracy on the unseen size (test region)")
        for col in ["held-out size", *packs]:
            t.add_column(col, justify="right")
        for size in held_out:
            row = {r["pack"]: r["test_accuracy"] for r in results if r["kind"] == "severity" and r["held"] == size}
            t.add_row(f"{size:.3f} in", *[f"{row[p]:.4f}" for p in packs])
        console.print(t)

    plot(results, packs, kinds, held_out, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


def plot(results: list[dict], packs: list[str], kinds: list[str], held_out: list[float], path: Path) -> None:
    """A load-transfer heat map per pack (when measured), then leave one severity out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = packs if "load" in kinds else []
    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(4.7 * (len(maps) + 1), 4), squeeze=False)
    for ax, pack in zip(axes[0], maps):
        m = np.array([[r["per_load_accuracy"][str(j)] for j in range(4)]
                      for r in results if r["kind"] == "load" and r["pack"] == pack])
        ax.imshow(m, vmin=0.5, vmax=1, cmap="viridis")
        for i in range(4):
            for j in range(4):  # dark text on the bright (accurate) cells
                ax.text(j, i, f"{m[i, j]:.3f}", ha="center", va="center", color="k" if m[i, j] > 0.85 else "w",
                        fontsize=8)
        ax.set(title=f"{pack} load transfer", xlabel="test load", ylabel="training load",
               xticks=range(4), yticks=range(4))
    last = axes[0][-1]
    if "severity" in kinds:
        for pack in packs:
            last.plot([f"{s:.3f}" for s in held_out],
                      [next(r["test_accuracy"] for r in results if r["kind"] == "severity" and r["pack"] == pack
                            and r["held"] == s) for s in held_out], marker="o", label=pack)
        last.set(title="leave one severity out", xlabel="held-out defect size (in)", ylabel="fault-type accuracy",
                 ylim=(0, 1))
        last.legend()
    else:
        last.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
