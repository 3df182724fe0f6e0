"""`edgesnn bench inference`: what one window costs, every runtime side by side in one run.

On the same real test-region windows, one thread each, batch 1 and batch 32: the default float
model and the integer model in onnxruntime, the same MRA-SNN network in PyTorch eager (as a user
of an SNN library would run it), and WDCNN in onnxruntime. Reports latency per window, the
real-time factor (compute time / signal time), file sizes, and the integer network's operation
and energy budget beside WDCNN's MACs. Needs the training extra (torch, onnx).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgesnn.errors import EdgesnnError
from edgesnn.firmware_sim.budget import ENERGY_PJ
from edgesnn.labels import task_of

BATCH = 32


def one_at_a_time(fn):
    """`fn` run on a batch window by window (batch 1)."""
    return lambda batch: [fn(batch[i : i + 1]) for i in range(len(batch))]


def interleaved_ms_per_window(runs: dict, x: np.ndarray, repeats: int) -> dict[str, float]:
    """Median ms per window of each `runs[name](x)`, the runtimes taking turns within every
    repetition: a machine that slows down for a while (shared hosts do) slows all of them alike,
    so their ratios hold."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(x)  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run(x)
            times[name].append((time.perf_counter() - t) / len(x))
    return {name: float(np.median(t) * 1e3) for name, t in times.items()}


def onnx_macs(path: Path, window: int) -> int:
    """Multiply-accumulates of the Conv, Gemm and MatMul nodes with constant weights for one
    window. Output shapes come from running the graph once: a spiking network folds its
    timesteps into the batch, which static shape inference cannot follow. Nodes inside If
    branches (ssnn's later stages, skipped on an early exit) are not counted."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and n.input[1] in inits]
    known = {o.name for o in model.graph.output}
    for n in nodes:
        if n.output[0] not in known:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(n.output[0]))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outs = session.run([n.output[0] for n in nodes],
                       {session.get_inputs()[0].name: np.zeros((1, 1, window), np.float32)})
    macs = 0
    for n, out in zip(nodes, outs):
        w = inits[n.input[1]]
        if n.op_type == "Conv":  # each output element sums (input channels / groups) x kernel
            per_output = int(np.prod(w[1:]))
        elif n.op_type == "Gemm":
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            per_output = w[1] if trans_b else w[0]
        else:  # MatMul by a constant [in, out]
            per_output = w[0]
        macs += int(np.prod(out.shape)) * per_output
    return macs


def compared_cards(cards: dict[Path, dict], default_path: Path) -> tuple[Path, Path, Path]:
    """Of the shipped `cards`: the default's own network (its pack and pack options, not a variant
    shipped beside it such as mra_snn's both views) as its float export and as its integer
    network, and WDCNN."""
    default = cards[default_path]
    own = [p for p, c in cards.items()
           if c["pack"] == default["pack"] and c.get("pack_options") == default.get("pack_options")]
    float_card = next((p for p in own if "quantization" not in cards[p]), None)
    int_card = next((p for p in own if "quantization" in cards[p]), None)
    wdcnn_card = next((p for p, c in cards.items() if c["pack"] == "wdcnn"), None)
    if None in (float_card, int_card, wdcnn_card):
        raise EdgesnnError(f"the installed package lacks the shipped float or integer {default['pack']} model or WDCNN")
    return float_card, int_card, wdcnn_card


def run(data: Path, checkpoint: Path | None = None, repeats: int = 20) -> dict:
    import torch

    from edgesnn.card import default_card_path, read_card
    from edgesnn.dataset import load_task
    from edgesnn.firmware_sim import budget
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.models import shipped_cards
    from edgesnn.registry import create_model
    from edgesnn.runtime import Diagnoser
    from edgesnn.training import load_checkpoint

    torch.set_num_threads(1)
    cards = {p: read_card(p) for p in shipped_cards()}
    float_card, int_card, wdcnn_card = compared_cards(cards, default_card_path())
    card = cards[float_card]
    test = load_task(data, task_of(card["classes"]), card["window"]).windows("test")
    x = test.x[:: max(1, len(test.x) // 64)][:64].astype(np.float32)
    window_s = card["window"] / card["sample_rate_hz"]
    if checkpoint is not None:
        model, ckpt = load_checkpoint(checkpoint)
        if ckpt["config"]["pack"] != card["pack"]:
            raise EdgesnnError(f"{checkpoint}: a {ckpt['config']['pack']} checkpoint; the default model is {card['pack']}")
        eager_note = f"trained weights from {checkpoint}"
    else:  # eager cost does not depend on the weight values
        model = create_model(card["pack"], n_classes=len(card["classes"]), window=card["window"],
                             timesteps=card["timesteps"], bits=card["spike_bits"]).eval()
        eager_note = "same architecture, untrained weights (eager cost does not depend on their values)"

    def eager(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch[:, None, :])).numpy()

    def label(path: Path, text: str) -> str:
        return text + (" (default)" if cards[path].get("default") else "")

    names = {float_card: label(float_card, "MRA-SNN float, onnxruntime"),
             int_card: label(int_card, "MRA-SNN integer, onnxruntime"), wdcnn_card: "WDCNN float, onnxruntime"}
    runtimes = {names[float_card]: Diagnoser(float_card).logits, names[int_card]: Diagnoser(int_card).logits,
                "MRA-SNN float, PyTorch eager": eager, names[wdcnn_card]: Diagnoser(wdcnn_card).logits}
    # every one of the windows, one at a time and in batches of BATCH
    in_batches = {name: (lambda b, fn=fn: [fn(b[i : i + BATCH]) for i in range(0, len(b), BATCH)])
                  for name, fn in runtimes.items()}
    single = interleaved_ms_per_window({name: one_at_a_time(fn) for name, fn in runtimes.items()}, x, repeats)
    batched = interleaved_ms_per_window(in_batches, x, repeats)
    rows = {name: {"ms_per_window_batch1": single[name], f"ms_per_window_batch{BATCH}": batched[name],
                   "real_time_factor_batch1": single[name] / 1e3 / window_s} for name in runtimes}
    for path, name in names.items():
        c = cards[path]
        rows[name]["file_bytes"] = Path(c["_onnx_path"]).stat().st_size
        rows[name]["test_accuracy"] = c["metrics"]["test_accuracy"]
        rows[name]["snr_-4db_accuracy"] = c["metrics"]["snr_-4db_accuracy"]

    net = IntMRASNN.from_card(int_card, cards[int_card])
    stats: dict = {}
    net.q8_logits(x, stats)
    b = budget.budget(net, stats, card["sample_rate_hz"])
    wdcnn_macs = onnx_macs(Path(cards[wdcnn_card]["_onnx_path"]), card["window"])
    energy = {"MRA-SNN integer (int8 MACs + spike ACs)": b["energy_pj"]["snn_int8"],
              "WDCNN fp32 MACs": wdcnn_macs * ENERGY_PJ["fp32"]["mac"],
              "WDCNN int8 MACs": wdcnn_macs * ENERGY_PJ["int8"]["mac"]}
    f, i, e, w = (rows[k]["ms_per_window_batch1"] for k in runtimes)
    fb, ib, eb, wb = (rows[k][f"ms_per_window_batch{BATCH}"] for k in runtimes)
    d, db = (i, ib) if cards[int_card].get("default") else (f, fb)  # the default model's times
    return {
        "windows": len(x), "window_s": window_s, "threads": 1, "pytorch_eager": eager_note, "runtimes": rows,
        "operations": b["operations"] | {"wdcnn_mac": wdcnn_macs}, "energy_pj": energy,
        "flash_bytes": b["flash_bytes"], "ram_bytes": b["ram_bytes"],
        "ratios": {"default_vs_wdcnn_batch1": d / w, f"default_vs_wdcnn_batch{BATCH}": db / wb,
                   "eager_vs_onnxruntime_float_batch1": e / f, f"eager_vs_onnxruntime_float_batch{BATCH}": eb / fb,
                   "integer_vs_float_onnxruntime_batch1": i / f, f"integer_vs_float_onnxruntime_batch{BATCH}": ib / fb,
                   "energy_integer_vs_wdcnn_fp32": energy["MRA-SNN integer (int8 MACs + spike ACs)"] / energy["WDCNN fp32 MACs"],
                   "energy_integer_vs_wdcnn_int8": energy["MRA-SNN integer (int8 MACs + spike ACs)"] / energy["WDCNN int8 MACs"]},
    }


def plot(result: dict, path: Path) -> None:
    from edgesnn import plots  # noqa: F401  (headless backend)
    import matplotlib.pyplot as plt

    names = list(result["runtimes"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 4.5))
    pos = np.arange(len(names))
    # a linear axis: bar lengths compare as the times do (a log axis made 0.05 ms look like nothing)
    single = a.barh(pos - 0.2, [result["runtimes"][n]["ms_per_window_batch1"] for n in names], 0.4, label="batch 1")
    batched = a.barh(pos + 0.2, [result["runtimes"][n][f"ms_per_window_batch{BATCH}"] for n in names], 0.4,
                     label=f"batch {BATCH}")
    for bars in (single, batched):
        a.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
    a.set_yticks(pos, names)
    longest = max(r["ms_per_window_batch1"] for r in result["runtimes"].values())
    a.set(xlabel="ms per 2048-sample window, one thread", xlim=(0, longest * 1.2))
    a.legend()
    e = result["energy_pj"]
    bars = b.barh(list(e), [v / 1e6 for v in e.values()])
    b.bar_label(bars, fmt="%.3f uJ", padding=3)
    b.set(xlabel="estimated energy per window (uJ, 45 nm)", xlim=(0, max(e.values()) / 1e6 * 1.3))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
