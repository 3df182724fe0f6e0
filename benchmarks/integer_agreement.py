"""The gateway graph against the firmware, SNR by SNR. For each integer MRA-SNN card given: on the
test region (CONTRACTS section 1), clean and with the SNR sweep's own noise draws, how often
onnxruntime on the card's ONNX graph picks the class the integer simulator (the firmware, bit for
bit the C export) picks, and the accuracy of each. Prints a table, writes JSON and a PNG.

    python benchmarks/integer_agreement.py models/mra_snn/mra-snn-cwru10-int8.json \\
        models/mra_snn/mra-snn-cwru10-both-views-int8.json --out benchmarks/results/integer_agreement
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SNRS = (None, 4, 2, 0, -2, -4, -6, -8, -10)  # None: clean


def measure(card_path: Path, data: Path) -> dict:
    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.evaluation import noisy, predict_labels
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.labels import task_of
    from edgesnn.runtime import Diagnoser

    card = read_card(card_path)
    net = IntMRASNN.from_card(card_path, card)
    test = load_task(data, task_of(card["classes"]), card["window"]).windows("test")
    onnx = Diagnoser(card_path)
    rows = {}
    for snr in SNRS:
        x = test.x if snr is None else noisy(test.x, snr)
        theirs = predict_labels(onnx.logits, x)
        ours = net.q8_logits(x).argmax(1)
        rows["clean" if snr is None else f"{snr} dB"] = {
            "windows": len(x), "same_class": int(np.sum(theirs == ours)),
            "onnx_accuracy": float(np.mean(theirs == test.y)), "firmware_accuracy": float(np.mean(ours == test.y))}
    return {"card": str(card_path), "graph": card["onnx_check"].get("graph", ""), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cards", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/integer_agreement"))
    args = ap.parse_args()
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    results = [measure(c, args.data) for c in track(args.cards, description="cards")]
    for r in results:
        table = Table(title=f"{r['card']} ({r['graph'].split(':')[0]} graph)")
        for col in ("", "same class as the firmware", "accuracy, ONNX", "accuracy, firmware"):
            table.add_column(col, justify="right")
        for name, row in r["rows"].items():
            table.add_row(name, f"{row['same_class']} / {row['windows']}", f"{row['onnx_accuracy']:.4f}",
                          f"{row['firmware_accuracy']:.4f}")
        Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                          "results": results}, indent=1))
    _plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and .png")


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
        ax.plot(snrs, [row["firmware_accuracy"] for row in rows], marker="x", linestyle="--", color=line.get_color(),
                label=f"{label}, firmware")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("test-region accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Integer networks: the gateway's ONNX and the firmware")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
