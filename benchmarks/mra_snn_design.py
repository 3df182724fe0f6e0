"""Design study of MRA-SNN: which scales, neurons, timesteps and bits earn their cost.

Trains each variant with the same protocol and seed (in parallel processes), chooses on the
validation region and reports the test region beside it. Prints a table, writes JSON and a PNG.

    python benchmarks/mra_snn_design.py --data ../shared/datasets/cwru --jobs 1 --epochs 30
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

VARIANTS = {
    # the variants of the study as it was run, around T = 4 (the default has since moved to T = 1)
    "default (3 scales, dendritic, T4, 2-bit)": {"timesteps": 4},
    "no dendritic filter": {"timesteps": 4, "extra": {"dendritic": False}},
    "single scale (64)": {"timesteps": 4, "extra": {"scales": [64]}},
    "binary spikes (1-bit)": {"timesteps": 4, "bits": 1},
    "T = 2": {"timesteps": 2},
    "T = 1": {"timesteps": 1},
    "48 channels": {"timesteps": 4, "extra": {"channels": 48}},
    "WDCNN (baseline)": {"pack": "wdcnn"},
}


def run_variant(args) -> dict:
    name, overrides, base = args
    import torch

    from edgesnn.dataset import load_task
    from edgesnn.evaluation import evaluate, predict_labels
    from edgesnn.signal import add_noise
    from edgesnn.training import TrainConfig, model_from_checkpoint, torch_predict, train

    torch.set_num_threads(base["threads"])
    cfg = TrainConfig(data=base["data"], epochs=base["epochs"], steps_per_epoch=base["steps"], seed=base["seed"],
                      threads=base["threads"], device=base["device"])
    for k, v in overrides.items():
        setattr(cfg, k, v)
    data = load_task(Path(cfg.data), cfg.task, cfg.window)
    ckpt = train(cfg, data=data)
    model = model_from_checkpoint(ckpt, cfg.device)
    predict = torch_predict(model)
    val = data.windows("val")
    val_scores = {"val_clean": float(np.mean(predict_labels(predict, val.x) == val.y))}
    for snr in (-8, -4):
        noisy = add_noise(val.x, snr, np.random.default_rng(snr + 1000))
        val_scores[f"val_{snr}db"] = float(np.mean(predict_labels(predict, noisy) == val.y))
    t0 = time.perf_counter()
    test = evaluate(predict, data.windows("test"), data.classes)
    return {"name": name, "overrides": overrides, "train_seconds": ckpt["train_seconds"],
            "params": sum(p.numel() for p in model.parameters()), **val_scores,
            "test_accuracy": test["test_accuracy"], "snr_accuracy": test["snr_accuracy"],
            "eval_seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/cwru")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="variants trained at once")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per variant")
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--variants", help='JSON {"name": {TrainConfig overrides}} replacing the built-in list')
    ap.add_argument("--device", default="cpu", help="torch device for training (cuda on a GPU machine)")
    ap.add_argument("--out", default="bench_out/mra_snn_design")
    args = ap.parse_args()
    base = {"data": args.data, "epochs": args.epochs, "steps": args.steps, "seed": args.seed, "threads": args.threads,
            "device": args.device}
    variants = json.loads(args.variants) if args.variants else VARIANTS
    todo = [(n, o, base) for n, o in variants.items() if not args.only or n in args.only]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(run_variant, todo))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    from rich.console import Console
    from rich.table import Table

    snrs = list(results[0]["snr_accuracy"])
    table = Table(title=f"MRA-SNN design study, seed {args.seed}, {args.epochs}x{args.steps} steps")
    for col in ["variant", "params", "train s", "val", "val -8dB", "val -4dB", "test", *[f"test {s}dB" for s in snrs]]:
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r["name"], str(r["params"]), f"{r['train_seconds']:.0f}", f"{r['val_clean']:.4f}",
                      f"{r['val_-8db']:.4f}", f"{r['val_-4db']:.4f}", f"{r['test_accuracy']:.4f}",
                      *[f"{r['snr_accuracy'][s]:.3f}" for s in snrs])
    Console(width=220).print(table)
    from edgesnn import plots

    plots.snr_curves({r["name"]: r["snr_accuracy"] for r in results}, out / "snr.png", "MRA-SNN design study (test region)")
    print(f"wrote {out}/results.json and snr.png")


if __name__ == "__main__":
    main()
