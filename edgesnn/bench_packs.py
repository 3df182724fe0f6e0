"""`edgesnn bench packs`: every classifier pack under one protocol, in one table.

Each pack's shipped model (or, with `train`, one trained here under the same protocol) is scored
on the same test-region windows through onnxruntime: clean accuracy and the full SNR row
(-10..+4 dB, the same noise for every model), timesteps and spike bits, latency per window (one
thread, batch 1, the same windows), an energy estimate per window, training time and epochs to
99% validation accuracy. What each method buys is in its row beside the default's. A graph
with an early exit (ssnn) is also timed with the exit off, and ssnn's per-window exit is
measured in PyTorch eager from its checkpoint. Needs the training extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesnn.bench import interleaved_ms_per_window, one_at_a_time, onnx_macs
from edgesnn.card import onnx_graph_kind
from edgesnn.errors import EdgesnnError
from edgesnn.firmware_sim.budget import ENERGY_PJ
from edgesnn.registry import timesteps_text

# What each method is for, to read its row against: the claim the row tests.
CLAIMS = {
    "mra_snn": "multi-scale attention encoder, residual attention blocks, dendritic neurons",
    "wdcnn": "non-spiking baseline",
    "inflor": "rectified membrane gradients: accuracy / robustness at the same cost",
    "realspike": "binary spikes on the device (real-valued in training, folded at export)",
    "trt": "temporal-reversal regularization: robustness, unchanged inference",
    "tssd": "self-distillation from a 2x-timestep teacher: accuracy at few timesteps",
    "ssnn": "shrinking timesteps per stage, early classifiers / early exit",
    "ltl": "local tandem learning from an ANN teacher: fast convergence",
}
# Epochs per pack under the shared protocol: as the default model, fewer where a step costs more
# (each pack trains in <= 15 minutes on one core here).
EPOCHS = {"mra_snn": 60, "wdcnn": 60, "inflor": 60, "realspike": 60, "ltl": 60, "tssd": 50, "ssnn": 40, "trt": 30}
EXIT_THRESHOLDS = (0.9, 0.99)


def _claim(card: dict) -> str:
    options = card.get("pack_options", {})
    if options:  # a pack trained with non-default options is read for those
        return f"{card['pack']} with " + ", ".join(f"{k}={v}" for k, v in options.items())
    claim = CLAIMS.get(card["pack"], "")
    return f"default: {claim}" if card.get("default") else claim


def table_row(label: str, r: dict) -> list[str]:
    """The cells of one row of `edgesnn bench packs`' table (r: a row of run()'s "packs")."""
    # an integer model whose ONNX is the exact graph (ssnn's exits, or a gateway graph that did not match)
    label += " (exact graph)" if r.get("graph") == "exact" else ""
    return [label, timesteps_text(r["timesteps"], r.get("stage_timesteps")), str(r["spike_bits"]),
            "yes" if r["quantized"] else "no", f"{r['test_accuracy']:.4f}", f"{r['snr_accuracy']['-4']:.4f}",
            f"{r['ms_per_window_batch1']:.3f}",
            f"{r['energy_pj'] / 1e6:.3f}" + (" (sim)" if r["energy_basis"] == "int8 simulator" else " (dense)"),
            f"{r['train_seconds']:.0f}" if r["train_seconds"] else "-",
            str(r["epochs"] or "-"), str(r["epochs_to_val_99"] or "-"), r["claim"]]


def _interleaved_ms(fns: dict, x: np.ndarray, repeats: int) -> dict:
    """ms per window at batch 1 of each function, the functions taking turns (bench.py)."""
    return interleaved_ms_per_window({k: one_at_a_time(fn) for k, fn in fns.items()}, x, repeats)


def energy_pj(card_path: Path, card: dict, x: np.ndarray) -> tuple[float, str]:
    """Energy per window (45 nm constants): the integer simulator's budget (int8 MACs plus the
    accumulates spikes actually trigger, on these windows) for a quantized model; otherwise
    every dense MAC of the ONNX graph at int8 MAC cost (no credit for spikes: an upper bound)."""
    if "quantization" in card:
        from edgesnn.firmware_sim import budget
        from edgesnn.firmware_sim.network import IntMRASNN

        net = IntMRASNN.from_card(card_path, card)
        stats: dict = {}
        net.q8_logits(x, stats)
        return float(budget.budget(net, stats, card["sample_rate_hz"])["energy_pj"]["snn_int8"]), "int8 simulator"
    return float(onnx_macs(Path(card["_onnx_path"]), card["window"]) * ENERGY_PJ["int8"]["mac"]), "dense int8 MACs"


def shipped_classifier_cards() -> dict[str, Path]:
    """One shipped card per classifier pack: the default model for its pack, else the pack's own
    configuration (no --option) before a variant (mra_snn's both views ship beside the default),
    the integer model before the float one."""
    from edgesnn.card import read_card
    from edgesnn.models import shipped_cards

    chosen: dict[str, tuple[tuple, Path]] = {}
    for path in shipped_cards():
        card = read_card(path)
        if card.get("kind", "classifier") != "classifier":
            continue
        rank = (bool(card.get("default")), not card.get("pack_options"), "quantization" in card)
        if card["pack"] not in chosen or rank > chosen[card["pack"]][0]:
            chosen[card["pack"]] = (rank, path)
    order = sorted(chosen, key=lambda p: (p != "mra_snn", p != "wdcnn", p))  # the default and baseline first
    return {pack: chosen[pack][1] for pack in order}


def train_all(data: Path, out: Path, packs: list[str], progress=None, epochs: dict | None = None,
              steps: int = 100) -> dict[str, Path]:
    """Train and export each pack under the shared protocol (EPOCHS x `steps`, unless `epochs`
    says otherwise); its card path per pack."""
    import torch

    from edgesnn.dataset import load_task
    from edgesnn.card import read_card
    from edgesnn.export import export_measured, integer_loss, quantizable
    from edgesnn.registry import pack_shape
    from edgesnn.training import TrainConfig, model_from_checkpoint, train

    task = load_task(data, "cwru10", 2048)
    cards = {}
    for pack in packs:
        timesteps, bits = pack_shape(pack)
        cfg = TrainConfig(pack=pack, data=str(data), epochs=(epochs or EPOCHS).get(pack, 60), steps_per_epoch=steps,
                          threads=1, timesteps=timesteps, bits=bits)
        ckpt = train(cfg, data=task, progress=(lambda e, n, row, p=pack: progress(p, e, n)) if progress else None)
        ckpt["command"] = f"edgesnn bench packs --train (pack {pack}, {cfg.epochs} epochs)"
        model = model_from_checkpoint(ckpt)
        if quantizable(model):
            cards[pack] = export_measured(model, ckpt, out / pack, f"{pack}-cwru10-int8", task, quantize=True)
        if not quantizable(model) or integer_loss(read_card(cards[pack])):
            # a network the integer path does not cover, or whose integer form lost accuracy, as float
            cards[pack] = export_measured(model, ckpt, out / pack, f"{pack}-cwru10", task)
        torch.save(ckpt, out / pack / "checkpoint.pt")
    return cards


def early_exit(checkpoint: Path, test, repeats: int, windows: int = 64) -> dict:
    """The ssnn pack's early exit in PyTorch eager: accuracy, share of windows leaving at each
    stage and ms per window at each threshold, beside running every stage."""
    import torch

    from edgesnn.training import load_checkpoint

    torch.set_num_threads(1)
    model, ckpt = load_checkpoint(checkpoint)
    if not hasattr(model, "early_exit"):
        raise EdgesnnError(f"{checkpoint}: a {ckpt['config']['pack']} checkpoint has no early exit")
    x = torch.from_numpy(test.x[:, None, :])
    sub = x[:: max(1, len(x) // windows)][:windows]
    with torch.no_grad():  # as early_exit runs: no autograd for either
        full = model(x).argmax(1).numpy()
        latency = _interleaved_ms({"all": model, **{t: (lambda b, t=t: model.early_exit(b, t)) for t in EXIT_THRESHOLDS}},
                                  sub, repeats)
    result = {"checkpoint": str(checkpoint), "stage_timesteps": list(model.stage_timesteps),
              "all_stages": {"accuracy": float(np.mean(full == test.y)), "ms_per_window": latency["all"]}}
    for threshold in EXIT_THRESHOLDS:
        logits, stage = model.early_exit(x, threshold)
        result[f"exit_at_{threshold}"] = {
            "accuracy": float(np.mean(logits.argmax(1).numpy() == test.y)),
            "stage_share": [float(np.mean(stage.numpy() == k)) for k in range(len(model.blocks))],
            "ms_per_window": latency[threshold],
            "latency_saved": 1 - latency[threshold] / latency["all"],
        }
    return result


def onnx_early_exit(diagnoser, x: np.ndarray, repeats: int) -> dict:
    """onnxruntime, batch 1: the card's exit threshold against running every stage (threshold
    above 1), the exit's own graph, timed in turn."""
    from edgesnn.runtime import onnx_session

    session = onnx_session(diagnoser.card["_onnx_path"])
    threshold = float(diagnoser.card["early_exit"]["threshold"])

    def at(t: float):
        return lambda b: session.run(None, {"acceleration": b[:, None, :], "exit_threshold": np.array(t, dtype=np.float32)})

    ms = _interleaved_ms({"exit": at(threshold), "every_stage": at(2.0)}, x, repeats)
    return {"threshold": threshold, "ms_per_window_exit": ms["exit"], "ms_per_window_every_stage": ms["every_stage"],
            "latency_saved": 1 - ms["exit"] / ms["every_stage"]}


def run(data: Path, cards: dict[str, Path], repeats: int = 5, ssnn_checkpoint: Path | None = None) -> dict:
    """Score every card (label -> card path) on the same windows."""
    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.evaluation import evaluate
    from edgesnn.labels import task_of
    from edgesnn.runtime import Diagnoser

    diagnosers = {label: Diagnoser(path) for label, path in cards.items()}  # a card that cannot run fails first
    first = next(iter(diagnosers.values()))
    for label, d in diagnosers.items():  # one table scores one task's labels, before any model is scored
        if list(d.classes) != list(first.classes):
            raise EdgesnnError(f"{cards[label]}: a model of the classes {', '.join(d.classes)}; this table scores "
                               f"those of {first.model_id} ({task_of(first.classes)}): score it apart")
    rows, test = {}, None
    for label, path in cards.items():
        card = read_card(path)
        if test is None:
            test = load_task(data, task_of(card["classes"]), card["window"]).windows("test")
            timing = test.x[:: max(1, len(test.x) // 64)][:64].astype(np.float32)
        diagnoser = diagnosers[label]
        r = evaluate(diagnoser.logits, test, diagnoser.classes)
        energy, basis = energy_pj(path, card, timing)
        training = card.get("training", {})
        rows[label] = {
            "pack": card["pack"], "card": f"{Path(path).parent.name}/{Path(path).name}", "claim": _claim(card),
            "timesteps": card["timesteps"], "stage_timesteps": card.get("stage_timesteps"),
            "spike_bits": card["spike_bits"],
            "quantized": "quantization" in card, "options": card.get("pack_options", {}),
            "graph": onnx_graph_kind(card),
            "test_accuracy": r["test_accuracy"], "snr_accuracy": r["snr_accuracy"],
            "energy_pj": energy, "energy_basis": basis,
            "train_seconds": training.get("seconds"), "epochs": training.get("epochs"),
            "epochs_to_val_99": training.get("epochs_to_val_99"),
        }
    latency = _interleaved_ms({label: d.logits for label, d in diagnosers.items()}, timing, repeats)
    for label, ms in latency.items():
        rows[label]["ms_per_window_batch1"] = ms
    result = {"test_windows": int(len(test.y)), "timing_windows": int(len(timing)), "threads": 1, "packs": rows}
    for label, d in diagnosers.items():
        if isinstance(d.card.get("early_exit"), dict):  # the same graph with its exit on and off
            result.setdefault("onnx_early_exit", {})[label] = onnx_early_exit(d, timing, repeats)
    if ssnn_checkpoint is not None:
        result["ssnn_early_exit"] = early_exit(ssnn_checkpoint, test, repeats)
    return result


def plot(result: dict, path: Path) -> None:
    from edgesnn import plots  # noqa: F401  (headless backend)
    import matplotlib.pyplot as plt

    rows = result["packs"]
    labels = list(rows)
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    for label, r in rows.items():
        a.plot([int(s) for s in r["snr_accuracy"]], list(r["snr_accuracy"].values()), marker="o", ms=3, label=label)
    a.set(xlabel="SNR (dB), white noise", ylabel="test-region accuracy", title="accuracy under noise")
    a.legend(fontsize=8)
    pos = np.arange(len(labels))
    names = [f"{k} (T={timesteps_text(rows[k]['timesteps'], rows[k].get('stage_timesteps'))}, "
             f"{rows[k]['spike_bits']}b)" for k in labels]
    bars = b.barh(pos, [rows[k]["ms_per_window_batch1"] for k in labels])
    b.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
    b.set_yticks(pos, names, fontsize=8)
    b.invert_yaxis()
    b.set(xlabel="onnxruntime ms per window (1 thread, batch 1)", title="latency")
    dense = [rows[k]["energy_basis"] != "int8 simulator" for k in labels]
    bars = c.barh(pos, [rows[k]["energy_pj"] / 1e6 for k in labels], hatch=None,
                  color=["lightgray" if d else "tab:green" for d in dense])
    c.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
    c.set_yticks(pos, [])
    c.invert_yaxis()
    c.set(xlabel="estimated uJ per window (45 nm)", title="energy\n(green: integer simulator; gray: dense MACs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
