"""The gateway graph against the firmware, SNR by SNR. For each integer MRA-SNN card given: on the
test region (CONTRACTS section 1), clean and with the SNR sweep's own noise draws, how often
onnxruntime on the card's ONNX graph picks the class the integer simulator (the firmware, bit for
bit the C export) picks, and the accuracy of each. Prints a table, writes JSON and a PNG.
`--draws N` repeats every SNR over N noise draws (seeds 0..N-1; seed 0 is the SNR sweep's own)
and reports the mean accuracy and the range: one draw moves a rate near a target by a window
or two of 621. Each SNR also counts the wrong windows by true class and class called, over the
draws (the firmware's, or a float baseline's), to show where the errors sit. A card that is not
an integer network (WDCNN's, say) is scored in onnxruntime alone, on the same windows: the
side-by-side comparison the targets ask for.

    python benchmarks/integer_agreement.py models/mra_snn/mra-snn-cwru10-int8.json \\
        models/mra_snn/mra-snn-cwru10-both-views-int8.json --out benchmarks/results/integer_agreement
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

SNRS = (None, 4, 2, 0, -2, -4, -6, -8, -10)  # None: clean


def measure(card_path: Path, data: Path, draws: int = 1, normal_margin: float = 0.0) -> dict:
    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.evaluation import noisy, predict_labels
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.labels import task_of
    from edgesnn.runtime import Diagnoser, lower_normal, normal_classes

    card = read_card(card_path)
    net = IntMRASNN.from_card(card_path, card) if "quantization" in card else None  # None: a float baseline
    test = load_task(data, task_of(card["classes"]), card["window"]).windows("test")
    onnx = Diagnoser(card_path, normal_margin=normal_margin)
    normal = normal_classes(onnx.classes)
    rows = {}
    for snr in SNRS:
        same, by_draw, errors = 0, {"onnx": [], "firmware": []}, Counter()
        for seed in range(1 if snr is None else draws):
            x = test.x if snr is None else noisy(test.x, snr, seed)
            theirs = predict_labels(onnx.logits, x)
            by_draw["onnx"].append(float(np.mean(theirs == test.y)))
            decided = theirs
            if net is not None:
                # the same margin on the firmware's Q8 logits
                decided = ours = lower_normal(net.q8_logits(x).astype(np.float64), normal, normal_margin * 256).argmax(1)
                same += int(np.sum(theirs == ours))
                by_draw["firmware"].append(float(np.mean(ours == test.y)))
            errors.update((onnx.classes[t], onnx.classes[p]) for t, p in zip(test.y, decided) if t != p)
        name = "clean" if snr is None else f"{snr} dB"
        rows[name] = {
            "windows": len(test.y) * len(by_draw["onnx"]), "same_class": same,
            "onnx_accuracy": float(np.mean(by_draw["onnx"])), "onnx_by_draw": by_draw["onnx"],
            # wrong windows by (true class, class called), over the draws: the firmware's, or a float baseline's
            "confusions": [[t, p, n] for (t, p), n in errors.most_common()]}
        if net is not None:
            rows[name] |= {"firmware_accuracy": float(np.mean(by_draw["firmware"])), "firmware_by_draw": by_draw["firmware"]}
    return {"card": str(card_path), "graph": card["onnx_check"].get("graph", ""), "normal_margin": normal_margin,
            "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cards", nargs="+", type=Path, help="model cards: integer networks, or float baselines")
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/integer_agreement"))
    ap.add_argument("--draws", type=int, default=1, help="noise draws per SNR (seeds 0..N-1)")
    ap.add_argument("--normal-margin", type=float, default=0.0,
                    help="decide with this margin taken from the normal logit (edgesnn monitor --normal-margin)")
    args = ap.parse_args()
    if args.draws < 1:
        ap.error("--draws: give at least 1")
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    results = [measure(c, args.data, args.draws, args.normal_margin) for c in track(args.cards, description="cards")]
    for r in results:
        table = Table(title=f"{r['card']} ({r['graph'].split(':')[0] + ' graph' if r['graph'] else 'float'})")
        for col in ("", "same class as the firmware", "accuracy, ONNX", "accuracy, firmware", "most often confused"):
            table.add_column(col, justify="right")
        for name, row in r["rows"].items():
            table.add_row(name, f"{row['same_class']} / {row['windows']}" if "firmware_by_draw" in row else "-",
                          _rate(row["onnx_by_draw"]), _rate(row["firmware_by_draw"]) if "firmware_by_draw" in row else "-",
                          ", ".join(f"{t} as {p} {n}" for t, p, n in row["confusions"][:2]))
        Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                          "results": results}, indent=1))
    _plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and .png")


def _rate(by_draw: list[float]) -> str:
    """The mean accuracy, and its range over the draws when there are several."""
    mean = f"{np.mean(by_draw):.4f}"
    return mean if len(by_draw) == 1 else f"{mean} ({min(by_draw):.4f}-{max(by_draw):.4f})"


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        snrs = [int(k.split()[0]) for k in r["rows"] if k != "clean"]
        rows = [r["rows"][f"{s} dB"] for s in snrs]
        label = Path(r["card"]).stem
        line, = ax.plot(snrs, [row["onnx_accuracy"] for row in rows], marker="o", label=f"{label}, ONNX")
        if "firmware_accuracy" in rows[0]:
            ax.plot(snrs, [row["firmware_accuracy"] for row in rows], marker="x", linestyle="--",
                    color=line.get_color(), label=f"{label}, firmware")
        ranged = "firmware_by_draw" if "firmware_by_draw" in rows[0] else "onnx_by_draw"
        if len(rows[0][ranged]) > 1:  # the range over the draws: the firmware's, or a float baseline's
            ax.fill_between(snrs, [min(row[ranged]) for row in rows], [max(row[ranged]) for row in rows],
                            color=line.get_color(), alpha=0.15)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("test-region accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    draws = len(results[0]["rows"]["-10 dB"]["onnx_by_draw"]) if results else 1
    ax.set_title("Integer networks: the gateway's ONNX and the firmware"
                 + (f"\nmean of {draws} noise draws; bands: the range over the draws" if draws > 1 else ""),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
