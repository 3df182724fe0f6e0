"""Score trained checkpoints side by side: validation (clean, and three noise draws per SNR,
averaged) and the test region (CONTRACTS section 1), in PyTorch. For choosing between training
variants on validation while seeing what the test region says. Prints a table, writes JSON and
a PNG of test accuracy against SNR.

    python benchmarks/score_checkpoints.py NAME=runs/a/checkpoint.pt NAME=runs/b/checkpoint.pt \
        --out benchmarks/results/default_variants_cpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

VAL_SNRS = (-10, -8, -6, -4)
DRAWS = 3  # noise draws per validation SNR: 365 validation windows are few


def score(path: Path, data: Path) -> dict:
    import torch

    from edgesnn.dataset import load_task
    from edgesnn.evaluation import evaluate, predict_labels
    from edgesnn.signal import add_noise
    from edgesnn.training import load_checkpoint, torch_predict

    torch.set_num_threads(1)
    model, ckpt = load_checkpoint(path)
    task = load_task(data, ckpt["config"]["task"], ckpt["config"]["window"])
    val, test = task.windows("val"), task.windows("test")
    predict = torch_predict(model)
    row = {"checkpoint": str(path), "command": ckpt.get("command"),
           "val_clean": float(np.mean(predict_labels(predict, val.x) == val.y))}
    for snr in VAL_SNRS:
        row[f"val_{snr}db"] = float(np.mean([np.mean(predict_labels(predict, add_noise(
            val.x, float(snr), np.random.default_rng(100 * k + 7))) == val.y) for k in range(DRAWS)]))
    r = evaluate(predict, test, task.classes)
    row["test_clean"] = r["test_accuracy"]
    row["test_snr"] = r["snr_accuracy"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="NAME=PATH")
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--out", type=Path, default=Path("bench_out/checkpoints"))
    args = ap.parse_args()
    rows = {}
    for item in args.checkpoints:
        name, _, path = item.partition("=")
        rows[name] = score(Path(path), args.data)
    test_snrs = next(iter(rows.values()))["test_snr"]
    head = ["val clean"] + [f"val {s}" for s in VAL_SNRS] + ["test clean"] + [f"{s} dB" for s in test_snrs]
    print("| variant | " + " | ".join(head) + " |")
    for name, r in rows.items():
        cells = [r["val_clean"]] + [r[f"val_{s}db"] for s in VAL_SNRS] + [r["test_clean"]] + list(r["test_snr"].values())
        print(f"| {name} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"val_noise_draws": DRAWS, "rows": rows}, indent=1))
    from edgesnn.plots import snr_curves

    snr_curves({n: r["test_snr"] for n, r in rows.items()}, args.out.with_suffix(".png"),
               "training variants of the default, test region")
    print(f"wrote {args.out.with_suffix('.json')} and .png")


if __name__ == "__main__":
    main()
