"""Another sensor position: models that learned the drive-end accelerometer, tested on the fan-end
and base accelerometers of the same CWRU recordings.

Every CWRU recording holds three channels recorded at once: drive end (`X<n>_DE_time`, what the
models learn), fan end (`_FE_time`, the other end of the motor) and base plate (`_BA_time`; the
normal recording has none). The defect is in the drive-end bearing; the other sensors feel the same
impacts, at the same repetition rate, through another structural path: other resonances, weaker,
mixed with more of the rest of the machine. A model that learned the fault physics keeps the fault
type there; one that learned the drive-end sensor's resonances does not. Only the time-ordered test
region of each recording is scored (CONTRACTS section 1); the drive-end row is the reference.

Models are given as NAME=PATH, a model card (.json, run with onnxruntime) or a checkpoint (.pt,
run in PyTorch). `--train DE,FE` first trains the default's network with the default's settings
on the training region of those channels (the same labels; validation on the drive end), saves
it as runs/sensor_position/trained_DE+FE/checkpoint.pt and scores it as `trained_DE+FE`. Prints
a table, writes JSON and a PNG.

    python benchmarks/sensor_position.py default=models/mra_snn/mra-snn-cwru10-int8.json \\
        wdcnn=models/wdcnn/wdcnn-cwru10.json [--train DE,FE] --out benchmarks/results/sensor_position
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.io

from edgesnn.dataset import TaskData
from edgesnn.evaluation import predict_labels
from edgesnn.labels import CWRU10, FAULT_TYPES, fault_type
from edgesnn.runtime import lower_normal, normal_classes
from edgesnn.sensors import cwru
from edgesnn.split import region_windows

CHANNELS = ("DE", "FE", "BA")
CHANNEL_NAMES = {"DE": "drive end", "FE": "fan end", "BA": "base"}


def channel_task(data: Path, channel: str, window: int = 2048) -> TaskData:
    """The 10-class task on one channel of every recording that has it."""
    recordings = []
    for entry in cwru.read_manifest(data):
        other = replace(entry, variable=entry.variable.replace("_DE_time", f"_{channel}_time"))
        if other.variable not in {name for name, *_ in scipy.io.whosmat(data / entry.file)}:
            continue  # the normal recording has no base channel
        recordings.append(cwru.read_entry(data, other))
    labels = np.array([CWRU10.index(r.entry.label()) for r in recordings])
    return TaskData(CWRU10, recordings, labels, window)


@dataclass
class DriveEndValidated(TaskData):
    """Training windows drawn from every channel's recordings; validation and test windows from
    the first `drive_end` recordings (the drive end) only."""

    drive_end: int = 0

    def windows(self, region: str):
        return TaskData(self.classes, self.recordings[: self.drive_end], self.labels[: self.drive_end],
                        self.window).windows(region)


def train_on(data: Path, channels: list[str], out: Path) -> Path:
    """The default's network and settings trained on the training region of `channels`."""
    import torch

    from edgesnn.training import TrainConfig, train

    tasks = [channel_task(data, c) for c in ["DE"] + [c for c in channels if c != "DE"]]
    recordings, labels = [r for t in tasks for r in t.recordings], np.concatenate([t.labels for t in tasks])
    task = DriveEndValidated(CWRU10, recordings, labels, tasks[0].window, drive_end=len(tasks[0].recordings))
    ckpt = train(TrainConfig(data=str(data), seed=0, threads=1), data=task)
    ckpt["command"] = f"benchmarks/sensor_position.py --train {','.join(channels)}"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out / "checkpoint.pt")
    return out / "checkpoint.pt"


def predictor(path: Path):
    """(predict function, classes) of a model card or an `edgesnn train` checkpoint."""
    if path.suffix == ".json":
        from edgesnn.runtime import Diagnoser

        model = Diagnoser(path)
        return model.logits, model.classes
    import torch

    from edgesnn.training import load_checkpoint, torch_predict

    torch.set_num_threads(1)
    model, ckpt = load_checkpoint(path)
    return torch_predict(model), ckpt["classes"]


def score(predict, classes, w) -> dict:
    """Fault-type accuracy of a model on windows `w` (10-class labels), its recall per fault type and
    what it called each type; the 10-class accuracy too for a 10-class model."""
    pred = predict_labels(predict, w.x)
    true_type = np.array([fault_type(CWRU10[y]) for y in w.y])
    pred_type = np.array([fault_type(classes[p]) for p in pred])
    row = {"windows": int(len(w.y)), "fault_type_accuracy": float(np.mean(pred_type == true_type))}
    if list(classes) == list(CWRU10):
        row["accuracy"] = float(np.mean(pred == w.y))
    row["recall"] = {t: float(np.mean(pred_type[true_type == t] == t)) for t in FAULT_TYPES if (true_type == t).any()}
    row["called"] = {t: {p: int(np.sum(pred_type[true_type == t] == p)) for p in FAULT_TYPES}
                     for t in FAULT_TYPES if (true_type == t).any()}
    # the two ways to be wrong on a fault window: calling it normal (a missed fault), or naming
    # another fault type
    fault, called_fault = true_type != "normal", pred_type != "normal"
    row["missed"] = float(np.mean(~called_fault[fault]))
    row["type_when_called_fault"] = float(np.mean((pred_type == true_type)[fault & called_fault])) \
        if (fault & called_fault).any() else float("nan")
    return row


def with_margin(predict, classes, margin: float):
    """The model's logits with `margin` taken from the normal class's (runtime.lower_normal, what
    `--normal-margin` does): a window is called normal only when normal leads every fault by more."""
    normal = normal_classes(classes)
    return lambda x: lower_normal(np.array(predict(x), dtype=np.float64), normal, margin)


def healthy_windows(data: Path, channel: str) -> np.ndarray:
    """Every window (training, validation and test regions) of the normal recording's `channel`:
    healthy windows from a position the models never saw, the false alarms a margin buys."""
    task = channel_task(data, channel)
    return np.concatenate([region_windows(rec.signal, region, task.window)
                           for rec, y in zip(task.recordings, task.labels) if CWRU10[y] == "normal"
                           for region in ("train", "val", "test")])


def validation_normal(data: Path, draws: int = 10) -> list[np.ndarray]:
    """The drive end's validation-region normal windows, clean and in noise (`draws` draws at each
    sweep SNR): where normal_gap measures a model's lead."""
    from edgesnn.evaluation import SNR_SWEEP_DB, noisy

    val = channel_task(data, "DE").windows("val")
    x = val.x[np.array([CWRU10[y] == "normal" for y in val.y])]
    return [x] + [noisy(x, snr, seed) for snr in SNR_SWEEP_DB for seed in range(draws)]


def normal_gap(predict, classes, windows: list[np.ndarray]) -> float:
    """The smallest lead of the normal logit over the best fault logit on `windows`
    (validation_normal): how far a margin can go before it changes a validation decision on
    healthy windows."""
    normal = normal_classes(classes)
    leads = []
    for xs in windows:
        logits = np.asarray(predict(xs[:, None, :]), dtype=np.float64)
        leads.append(logits[:, normal].max(axis=1) - np.delete(logits, normal, axis=1).max(axis=1))
    return float(np.concatenate(leads).min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="NAME=PATH of a model card (.json) or checkpoint (.pt)")
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--train", help="channels to train the default's network on first, e.g. DE,FE")
    ap.add_argument("--normal-margin", default="", metavar="M1,M2,...",
                    help="also score each model with these margins taken from its normal logit (see with_margin)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/sensor_position"))
    args = ap.parse_args()
    margins = [float(m) for m in args.normal_margin.split(",") if m.strip()]
    margins = [0.0] + [m for m in margins if m != 0] if margins else []  # margin 0: the healthy windows too
    windows = {c: channel_task(args.data, c).windows("test") for c in CHANNELS}
    models = list(args.models)
    if args.train:
        channels = args.train.split(",")
        if any(c not in CHANNELS for c in channels):
            ap.error(f"--train takes channels of {', '.join(CHANNELS)}")
        name = "trained_" + "+".join(channels)
        models.append(f"{name}={train_on(args.data, channels, Path('runs/sensor_position') / name)}")
    results = {}
    if margins:  # the same windows for every model, read and drawn once
        healthy, val_normal = healthy_windows(args.data, "FE"), validation_normal(args.data)
    for item in models:
        name, _, path = item.partition("=")
        predict, classes = predictor(Path(path))
        results[name] = {"model": path, **{c: score(predict, classes, windows[c]) for c in CHANNELS}}
        if margins and "normal" in classes:
            results[name]["normal_gap_val"] = normal_gap(predict, classes, val_normal)
            results[name]["margins"] = {}
            for m in margins:
                shifted = with_margin(predict, classes, m)
                calls = predict_labels(shifted, healthy)
                results[name]["margins"][f"{m:g}"] = {
                    **{c: score(shifted, classes, windows[c]) for c in CHANNELS},
                    "fan_end_healthy_called_normal": float(np.mean(np.array(classes)[calls] == "normal")),
                    "fan_end_healthy_windows": int(len(healthy))}

    print("| model | " + " | ".join(f"{c} fault type" for c in CHANNELS) + " | "
          + " | ".join(f"{c} {t}" for c in CHANNELS[1:] for t in FAULT_TYPES) + " |")
    print("|---" * (1 + len(CHANNELS) + 2 * len(FAULT_TYPES)) + "|")
    for name, r in results.items():
        cells = [f"{r[c]['fault_type_accuracy']:.3f}" for c in CHANNELS]
        cells += [f"{r[c]['recall'][t]:.3f}" if t in r[c]["recall"] else "-" for c in CHANNELS[1:] for t in FAULT_TYPES]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nmissed = fault windows called normal; type = the fault type right where a fault was called")
    print("| model | margin | " + " | ".join(f"{c} fault type / missed / type" for c in CHANNELS[1:])
          + " | fan-end healthy called normal | drive-end fault type |")
    print("|---" * (4 + len(CHANNELS)) + "|")
    for name, r in results.items():
        for m, row in r.get("margins", {"0": {**{c: r[c] for c in CHANNELS}, "fan_end_healthy_called_normal": None}}).items():
            healthy = row["fan_end_healthy_called_normal"]
            print(f"| {name} | {m} | " + " | ".join(
                f"{row[c]['fault_type_accuracy']:.3f} / {row[c]['missed']:.3f} / {row[c]['type_when_called_fault']:.3f}"
                for c in CHANNELS[1:]) + f" | {'' if healthy is None else f'{healthy:.3f}'} | "
                f"{row['DE']['fault_type_accuracy']:.3f} |")
        if "normal_gap_val" in r:
            print(f"| {name} | (validation normal windows lead by at least {r['normal_gap_val']:.2f}) | | | | |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                         "results": results}, indent=1))

    plot_by_channel(results, args.out.with_suffix(".png"), "fault-type accuracy, test region",
                    "another sensor position (trained on the drive end unless named)")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


def plot_by_channel(results: dict, png: Path, ylabel: str, title: str, chance: float | None = None) -> None:
    """Bars of each row's fault-type accuracy on the three sensors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(results), 3.8))
    width = 0.8 / len(CHANNELS)
    for k, c in enumerate(CHANNELS):
        ax.bar(np.arange(len(results)) + (k - 1) * width, [r[c]["fault_type_accuracy"] for r in results.values()],
               width, label=CHANNEL_NAMES[c])
    if chance is not None:
        ax.axhline(chance, color="gray", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(results)), list(results), rotation=15)
    ax.set(ylabel=ylabel, ylim=(0, 1.15), title=title)
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
