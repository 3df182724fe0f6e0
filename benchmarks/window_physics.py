"""Which test windows does a model get wrong in noise, and what fault does each window's own
physics point to?

For each model card: over `--draws` noise draws at `--snr` (the SNR sweep's draws, seeds
0..N-1), how often each test-region window (CONTRACTS section 1, drive end) is called the wrong
class. Beside each wrong window, the untrained envelope analysis of benchmarks/physics_reference.py
(no band-pass, the first three harmonics of BPFO / BPFI / 2 x BSF) on the clean window: the
fault type its envelope points to, and its inner-race to outer-race score ratio. And for every
class, what that analysis calls its windows, in each of physics_reference's fixed bands: a class
whose recordings do not carry their fault's defect frequency cannot be named by the physics, only
by the recording.

    python benchmarks/window_physics.py models/mra_snn/mra-snn-cwru10-light-views-paths-int8.json \\
        models/mra_snn/mra-snn-cwru10-int8.json --draws 10 --out benchmarks/results/window_physics
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from physics_reference import FAULTS, FIXED_BANDS, bandpass, envelope_spectrum, fault_scores


def envelope_calls(task, test, band) -> tuple[np.ndarray, np.ndarray]:
    """Per test window: the fault type the envelope points to, and its BPFI / BPFO score ratio."""
    rpm = np.array([rec.entry.rpm for rec in task.recordings], dtype=float)[_recording_of(task, test)]
    x = test.x.astype(np.float64)
    x -= x.mean(1, keepdims=True)
    scores = fault_scores(envelope_spectrum(bandpass(x, band)), rpm)
    ratio = scores[:, FAULTS.index("inner_race")] / scores[:, FAULTS.index("outer_race")]
    return np.array(FAULTS)[scores.argmax(1)], ratio


def _recording_of(task, test) -> np.ndarray:
    """The recording each test window came from (TaskData.windows keeps the recordings' order)."""
    from edgesnn.split import region_windows

    counts = [len(region_windows(rec.signal, "test", task.window)) for rec in task.recordings]
    assert sum(counts) == len(test.y)
    return np.repeat(np.arange(len(counts)), counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cards", nargs="+", type=Path, help="model cards (onnxruntime, the gateway graph of an integer network)")
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--snr", type=int, default=0, help="dB, one of the SNR sweep's (its noise draws)")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/window_physics"))
    args = ap.parse_args()
    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.evaluation import noisy, predict_labels
    from edgesnn.labels import task_of
    from edgesnn.runtime import Diagnoser

    first = read_card(args.cards[0])
    task = load_task(args.data, task_of(first["classes"]), first["window"])
    test = task.windows("test")
    faults = [c for c in task.classes if c != "normal"]
    physics = {}
    for name, band in FIXED_BANDS.items():
        called, _ = envelope_calls(task, test, band)
        physics[name] = {c: {f: int(np.sum(called[test.y == task.classes.index(c)] == f)) for f in FAULTS} for c in faults}
    print("the envelope analysis on the clean test windows: windows called " + " / ".join(FAULTS))
    print("| class | " + " | ".join(physics) + " |\n" + "|---" * (1 + len(physics)) + "|")
    for c in faults:
        print(f"| {c} | " + " | ".join(" / ".join(str(r[c][f]) for f in FAULTS) for r in physics.values()) + " |")
    called, ratio = envelope_calls(task, test, None)  # per window: no band-pass
    results = {}
    for card_path in args.cards:
        model = Diagnoser(card_path)
        wrong = Counter()
        for seed in range(args.draws):
            pred = predict_labels(model.logits, noisy(test.x, args.snr, seed))
            wrong.update((int(i), model.classes[pred[i]]) for i in np.flatnonzero(pred != test.y))
        rows = [{"window": i, "true": task.classes[test.y[i]], "called": p, "draws": n,
                 "envelope_calls": str(called[i]), "bpfi_over_bpfo": round(float(ratio[i]), 3)}
                for (i, p), n in wrong.most_common()]
        results[str(card_path)] = {"wrong": sum(wrong.values()), "windows": len(test.y) * args.draws, "rows": rows}
        print(f"\n{card_path.name}: {sum(wrong.values())} wrong of {len(test.y) * args.draws} at {args.snr:g} dB "
              f"over {args.draws} draws, on {len(rows)} windows")
        print("| window | true | called | draws | envelope calls | BPFI / BPFO |\n|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['window']} | {r['true']} | {r['called']} | {r['draws']} | {r['envelope_calls']} | {r['bpfi_over_bpfo']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                         "envelope_calls_by_class": physics,
                                                         "results": results}, indent=1))
    plot(task, test, ratio, results, args.out.with_suffix(".png"), args.snr)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


def plot(task, test, ratio, results, path: Path, snr: float) -> None:
    """Each fault class's BPFI / BPFO ratio, window by window, with the models' wrong windows marked."""
    from edgesnn import plots  # noqa: F401  (headless backend)
    import matplotlib.pyplot as plt

    faults = [i for i, c in enumerate(task.classes) if c != "normal"]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    rng = np.random.default_rng(0)
    for k, i in enumerate(faults):
        r = ratio[test.y == i]
        ax.scatter(k + rng.uniform(-0.25, 0.25, len(r)), r, s=8, color="0.6")
    for (card, res), marker, color in zip(results.items(), "os^v<>", ("C0", "C1", "C2", "C3", "C4", "C5")):
        pts = [(faults.index(task.classes.index(r["true"])), r["bpfi_over_bpfo"], r["draws"]) for r in res["rows"]]
        if pts:
            k, r, n = map(np.array, zip(*pts))
            ax.scatter(k, r, s=20 + 12 * n, marker=marker, facecolors="none", edgecolors=color,
                       label=f"{Path(card).stem} (wrong at {snr:g} dB; size: draws)")
    ax.axhline(1.0, color="k", lw=0.6, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(range(len(faults)), [task.classes[i] for i in faults], rotation=30, ha="right")
    ax.set_ylabel("envelope score ratio BPFI / BPFO (clean window)")
    ax.set_title("what each test window's envelope points to (above 1: inner race rather than outer race)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
