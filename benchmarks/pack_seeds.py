"""How much of a pack's row is its seed: checkpoints of the packs trained with other seeds (each
pack's card command with only --seed changed) are exported and scored exactly as the shipped
models are (`edgesnn export --quantize` where the integer path covers the pack: its metrics are
measured on the exported ONNX file through onnxruntime, test region of CONTRACTS section 1),
beside the shipped model's card. Prints a table, writes <out>.json and <out>.png.

    python benchmarks/pack_seeds.py runs/seed1/*/checkpoint.pt --out benchmarks/results/pack_seeds
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

SNRS = ("-10", "-8", "-6", "-4", "-2", "0")


def shipped_card(pack: str, quantized: bool) -> dict:
    from edgesnn.card import read_card
    from edgesnn.models import shipped_cards

    for path in shipped_cards():
        card = read_card(path)
        # the pack's own configuration, not a variant shipped beside it (mra_snn's both views)
        if card["pack"] == pack and ("quantization" in card) == quantized and not card.get("pack_options"):
            return card
    raise SystemExit(f"no shipped {pack} model{' (integer)' if quantized else ''} to compare with")


def row(card: dict, seed: int, source: str) -> dict:
    m = card["metrics"]
    out = {"pack": card["pack"], "seed": seed, "source": source,
           "train_s": round(card["training"]["seconds"]), "to_99_val": card["training"]["epochs_to_val_99"]}
    if card.get("kind") == "anomaly":
        return out | {k: m[k] for k in ("test_auroc", "test_worst_auroc", "test_false_alarm_rate", "snr_-4db_auroc",
                                        "snr_-4db_detection_rate")}
    float_clean = card.get("quantization", {}).get("float_metrics", {}).get("test_accuracy")
    return out | {"clean": m["test_accuracy"], **{f"{s} dB": m[f"snr_{s}db_accuracy"] for s in SNRS},
                  "float clean": float_clean if float_clean is not None else "-"}


def score(path: Path, data: Path, tmp: Path) -> tuple[dict, dict]:
    """(the checkpoint's row, the shipped model's row) for one checkpoint."""
    import torch

    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.export import export_measured, quantizable
    from edgesnn.training import load_checkpoint

    torch.set_num_threads(1)
    model, ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    quantize = quantizable(model)
    task = load_task(data, cfg["task"], cfg["window"])
    card = read_card(export_measured(model, ckpt, tmp / cfg["pack"], f"{cfg['pack']}-seed{cfg['seed']}", task,
                                     quantize=quantize))
    return row(card, cfg["seed"], str(path)), row(shipped_card(cfg["pack"], quantize), 0, "shipped card")


def plot(rows: list[dict], path: Path) -> None:
    from edgesnn import plots  # noqa: F401  (headless backend)
    import matplotlib.pyplot as plt

    classifiers = [r for r in rows if "clean" in r]
    packs = sorted({r["pack"] for r in classifiers})
    fig, axes = plt.subplots(1, len(packs), figsize=(3.2 * len(packs), 3.4), sharey=True, squeeze=False)
    for ax, pack in zip(axes[0], packs):
        for r in (r for r in classifiers if r["pack"] == pack):
            ax.plot([int(s) for s in SNRS] + [10], [r[f"{s} dB"] for s in SNRS] + [r["clean"]], marker="o", ms=3,
                    label=f"seed {r['seed']}")
        ax.set(title=pack, xlabel="SNR (dB); 10 = clean")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("test-region accuracy (integer model)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pack_seeds"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.checkpoints:
            ours, shipped = score(path, args.data, Path(tmp))
            rows += [shipped, ours]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=1))
    plot(rows, args.out.with_suffix(".png"))
    for kind in ("clean", "test_auroc"):
        chosen = [r for r in rows if kind in r]
        if not chosen:
            continue
        cols = [k for k in chosen[0] if k not in ("pack", "seed", "source")]
        t = Table(title="packs by seed: the shipped model (seed 0) and retrained ones, test region")
        for c in ["pack", "seed", *cols]:
            t.add_column(c, justify="right")
        for r in chosen:
            t.add_row(r["pack"], str(r["seed"]), *[f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols])
        Console(width=160).print(t)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
