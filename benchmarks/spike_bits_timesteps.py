"""Does multi-bit matter? MRA-SNN at 1, 2 and 4 spike bits x 1, 2 and 4 timesteps, same protocol.

Each configuration is trained (same seed and schedule, CPU), evaluated on the validation region
(what a choice may look at) and on the test region (clean and the SNR sweep), quantized to the
integer network (calibrated on training windows) and scored again through the simulator, and
costed: spike-triggered accumulates, energy and RAM from the integer budget, and onnxruntime
latency of its float export (one thread, batch 32), all timed side by side in this process
after training so that no training job competes with the timing.

    python benchmarks/spike_bits_timesteps.py --epochs 30 --jobs 2

Prints a table, writes JSON and a PNG (default benchmarks/results/spike_bits_timesteps*).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

BITS = (1, 2, 4)
TIMESTEPS = (1, 2, 4)


def train_job(job) -> dict:
    bits, timesteps, base = job
    import torch

    from edgesnn.dataset import load_task
    from edgesnn.evaluation import evaluate, predict_labels
    from edgesnn.signal import add_noise
    from edgesnn.training import TrainConfig, model_from_checkpoint, torch_predict, train

    torch.set_num_threads(base["threads"])
    cfg = TrainConfig(data=base["data"], seed=base["seed"], epochs=base["epochs"], steps_per_epoch=base["steps"],
                      bits=bits, timesteps=timesteps, threads=base["threads"])
    data = load_task(Path(base["data"]))
    ckpt = train(cfg, data=data)
    model = model_from_checkpoint(ckpt)
    val = data.windows("val")
    predict = torch_predict(model)
    val_noisy = add_noise(val.x, -6.0, np.random.default_rng(1234))
    r = evaluate(predict, data.windows("test"), data.classes)
    path = Path(base["out"]) / f"bits{bits}_t{timesteps}.pt"
    torch.save(ckpt, path)
    return {"bits": bits, "timesteps": timesteps, "checkpoint": str(path), "train_seconds": ckpt["train_seconds"],
            "val_accuracy": float(np.mean(predict_labels(predict, val.x) == val.y)),
            "val_-6db_accuracy": float(np.mean(predict_labels(predict, val_noisy) == val.y)),
            "test_accuracy": r["test_accuracy"], "snr_accuracy": r["snr_accuracy"]}


def integer_and_cost(row: dict, data, repeats: int) -> dict:
    """Quantize, score through the simulator, budget, and time the float export in onnxruntime."""
    import onnxruntime as ort
    import torch

    from edgesnn.export import _to_onnx
    from edgesnn.firmware_sim import budget
    from edgesnn.firmware_sim.quantize import quantize_mra_snn
    from edgesnn.signal import add_noise
    from edgesnn.training import model_from_checkpoint

    ckpt = torch.load(row["checkpoint"], weights_only=False)
    model = model_from_checkpoint(ckpt)
    calibration, _ = data.sample_train(4096, np.random.default_rng(0))
    net = quantize_mra_snn(model, data.classes, calibration)
    test = data.windows("test")
    stats: dict = {}
    clean = net.q8_logits(test.x, stats)
    noisy_x = add_noise(test.x, -4.0, np.random.default_rng([0, -4 + 100]))  # evaluate()'s -4 dB windows
    noisy = net.q8_logits(noisy_x)
    b = budget.budget(net, stats, 12_000.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        _to_onnx(model, 2048, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        x = test.x[:32, None, :].astype(np.float32)
        session.run(None, {"acceleration": x})
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            session.run(None, {"acceleration": x})
            times.append((time.perf_counter() - t) / len(x))
    return row | {"integer_test_accuracy": float(np.mean(clean.argmax(1) == test.y)),
                  "integer_snr_-4db_accuracy": float(np.mean(noisy.argmax(1) == test.y)),
                  "spike_acs": b["operations"]["snn_ac"], "energy_uj": b["energy_pj"]["snn_int8"] / 1e6,
                  "ram_bytes": b["ram_bytes"]["peak"], "float_ms_per_window": float(np.median(times) * 1e3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/cwru")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training job")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--runs", default="runs/spike_bits_timesteps", help="folder for the checkpoints")
    ap.add_argument("--out", default="benchmarks/results/spike_bits_timesteps")
    args = ap.parse_args()
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    base = {"data": args.data, "epochs": args.epochs, "steps": args.steps, "seed": args.seed,
            "threads": args.threads, "out": args.runs}
    jobs = [(b, t, base) for t in sorted(TIMESTEPS, reverse=True) for b in BITS]  # longest first
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(train_job, jobs))

    from edgesnn.dataset import load_task

    data = load_task(Path(args.data))
    rows = sorted((integer_and_cost(r, data, args.repeats) for r in rows), key=lambda r: (r["bits"], r["timesteps"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"MRA-SNN, spike bits x timesteps ({args.epochs} epochs x {args.steps} steps, seed {args.seed})")
    cols = ["bits", "T", "val clean", "val -6 dB", "test clean", "-10", "-8", "-6", "-4", "0 dB",
            "int clean", "int -4 dB", "spike ACs", "energy uJ", "RAM KiB", "float ms", "train s"]
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows:
        s = r["snr_accuracy"]
        t.add_row(str(r["bits"]), str(r["timesteps"]), f"{r['val_accuracy']:.4f}", f"{r['val_-6db_accuracy']:.4f}",
                  f"{r['test_accuracy']:.4f}", *[f"{s[k]:.3f}" for k in ("-10", "-8", "-6", "-4", "0")],
                  f"{r['integer_test_accuracy']:.4f}", f"{r['integer_snr_-4db_accuracy']:.3f}",
                  f"{r['spike_acs']:,}", f"{r['energy_uj']:.3f}", f"{r['ram_bytes'] / 1024:.1f}",
                  f"{r['float_ms_per_window']:.3f}", f"{r['train_seconds']:.0f}")
    Console(width=220).print(t)

    from edgesnn import plots  # noqa: F401  (headless backend)
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for bits in BITS:
        rs = [r for r in rows if r["bits"] == bits]
        a.plot([r["timesteps"] for r in rs], [r["val_-6db_accuracy"] for r in rs], "o-", label=f"{bits}-bit")
        b.plot([r["float_ms_per_window"] for r in rs], [r["snr_accuracy"]["-6"] for r in rs], "o-", label=f"{bits}-bit")
        for r in rs:
            b.annotate(f"T={r['timesteps']}", (r["float_ms_per_window"], r["snr_accuracy"]["-6"]), fontsize=8)
    a.set(xlabel="timesteps", ylabel="validation accuracy at -6 dB", xticks=TIMESTEPS)
    b.set(xlabel="onnxruntime ms per window (float, batch 32, 1 thread)", ylabel="test accuracy at -6 dB")
    a.legend()
    b.legend()
    fig.tight_layout()
    fig.savefig(f"{out}.png", dpi=110)
    print(f"wrote {out}.json and .png")


if __name__ == "__main__":
    main()
