"""Export a trained checkpoint to ONNX + model card (CONTRACTS section 2)."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from edgesnn.card import FORMAT, write_card
from edgesnn.errors import EdgesnnError
from edgesnn.folders import missing, remove_empty
from edgesnn.sensors.cwru import MODEL_FS_HZ, sha256_of

OPSET = 17
TOLERANCE = 1e-4
CHECK_WINDOWS = 64
# A spiking network is discontinuous: where a membrane potential lies within float rounding
# (~1e-6) of a threshold, onnxruntime's and PyTorch's differently ordered sums can emit spike
# counts one apart, which moves a logit by ~1e-3. Such ties are rare; more than this share of
# random windows over the tolerance, or any changed decision, means a real export fault.
MAX_TIE_SHARE = 0.05


def deployed(model: torch.nn.Module) -> torch.nn.Module:
    """The network that ships. A pack may train with parts that never ship (a teacher, a
    training-only head) or a form that folds away (real-valued spike amplitudes); its
    `deployed()` returns the inference network, whose cost is what the card reports."""
    return model.deployed() if hasattr(model, "deployed") else model


def _to_ship(model: torch.nn.Module) -> tuple[torch.nn.Module, dict]:
    """The network that ships, in eval mode, and what the pack adds to its card about itself."""
    fields = model.card_fields() if hasattr(model, "card_fields") else {}
    return deployed(model).eval(), fields


def quantizable(model: torch.nn.Module) -> bool:
    """Whether `export_quantized` covers the network `model` deploys: the plain MRA-SNN with the
    learned raw-signal encoder or both views (raw+envelope), ssnn's shrinking one with its early
    exit, or the esvae detector (firmware_sim implements those networks and no other)."""
    from edgesnn.models.esvae import ESVAE
    from edgesnn.models.mra_snn import MRASNN
    from edgesnn.models.ssnn import EarlyExitSSNN, ShrinkingMRASNN

    net = deployed(model)
    net = net.model if isinstance(net, EarlyExitSSNN) else net
    return type(net) is ESVAE or (type(net) is MRASNN and net.frontend in ("raw", "raw+envelope")) or (
        type(net) is ShrinkingMRASNN and net.frontend == "raw")


def c_exportable(model: torch.nn.Module) -> bool:
    """Whether the C export (firmware_sim/c_export.py) covers the network `model` deploys: not
    ssnn's shrinking one with early exits, which firmware-sim and onnxruntime run."""
    from edgesnn.models.ssnn import EarlyExitSSNN, ShrinkingMRASNN

    return not isinstance(deployed(model), (EarlyExitSSNN, ShrinkingMRASNN))


def _to_onnx(model: torch.nn.Module, window: int, path: Path) -> None:
    if hasattr(model, "to_onnx"):  # a network with control flow builds its own graph (ssnn's early exit)
        model.to_onnx(path, OPSET)
        return
    dummy = torch.zeros(1, 1, window)
    outputs = list(getattr(model, "output_names", ["logits"]))  # an anomaly model scores, not classifies
    # a network may export a faster form of itself (the same sums in another layout); the check
    # after export compares the graph with the network as trained
    model = model.export_form() if hasattr(model, "export_form") else model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter unrolls the time loop with its explicit state into plain
        # operators (Conv, Floor, Clip, ...), which is what onnxruntime and a firmware need.
        torch.onnx.export(
            model, (dummy,), str(path), dynamo=False, opset_version=OPSET,
            input_names=["acceleration"], output_names=outputs,
            dynamic_axes={"acceleration": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
        )


def compare_with_pytorch(model: torch.nn.Module, onnx_path: Path, x: np.ndarray) -> dict:
    """|PyTorch - onnxruntime| logit differences on the windows x [N, 1, L]."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only (an overridable initializer is a warning, by design)
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    ours = session.run(None, {"acceleration": x.astype(np.float32)})[0]
    with torch.no_grad():
        theirs = model(torch.from_numpy(x.astype(np.float32))).numpy()
    per_window = np.abs(ours - theirs).max(axis=1)
    return {
        "windows": len(x),
        "max_deviation": float(per_window.max()),
        "median_deviation": float(np.median(per_window)),
        "windows_over_tolerance": int((per_window > TOLERANCE).sum()),
        "tolerance": TOLERANCE,
        "argmax_agreement": float(np.mean(ours.argmax(axis=1) == theirs.argmax(axis=1))),
    }


def check_export(check: dict, where: Path) -> None:
    if not np.isfinite(check["max_deviation"]):  # NaN compares false with any tolerance
        raise EdgesnnError(f"{where}: the model gives NaN or infinite outputs")
    if check["argmax_agreement"] < 1.0:
        raise EdgesnnError(f"{where}: ONNX and PyTorch disagree on the class of "
                           f"{1 - check['argmax_agreement']:.1%} of random windows")
    if check["windows_over_tolerance"] > MAX_TIE_SHARE * check["windows"]:
        raise EdgesnnError(f"{where}: ONNX differs from PyTorch by more than {TOLERANCE:g} on "
                           f"{check['windows_over_tolerance']} of {check['windows']} random windows")


def export(model: torch.nn.Module, ckpt: dict, out_dir: Path, name: str, default: bool = False,
           metrics: dict | None = None, command: str | None = None, seed: int = 0) -> Path:
    """Write `<out_dir>/<name>.onnx` and its card; refuse if ONNX and PyTorch disagree > 1e-4."""
    cfg = ckpt["config"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    model, fields = _to_ship(model)
    _to_onnx(model, cfg["window"], onnx_path)
    # Random inputs in g with the spread of real accelerometer windows (0.01 to 3 g RMS).
    rng = np.random.default_rng(seed)
    n = CHECK_WINDOWS
    x = rng.standard_normal((n, 1, cfg["window"])) * rng.uniform(0.01, 3.0, size=(n, 1, 1))
    check = compare_with_pytorch(model, onnx_path, x)
    try:
        check_export(check, onnx_path)
    except EdgesnnError:
        onnx_path.unlink()
        raise
    card = _card(name, default, onnx_path, ckpt, model, metrics) | fields | {"onnx_check": check}
    if command:
        card["command"] = command
    card_path = out_dir / f"{name}.json"
    write_card(card_path, card)
    return card_path


def epochs_to(history: list[dict], accuracy: float) -> int | None:
    """The first training epoch whose clean validation accuracy reached `accuracy` (how fast a
    method converges), None if none did or the history has no accuracy."""
    return next((h["epoch"] for h in history if h.get("val_accuracy", 0.0) >= accuracy and "epoch" in h), None)


def _card(name: str, default: bool, onnx_path: Path, ckpt: dict, model, metrics: dict | None) -> dict:
    cfg = ckpt["config"]
    card = {
        "format": FORMAT,
        "name": name,
        "default": default,
        "onnx": onnx_path.name,
        "onnx_sha256": sha256_of(onnx_path),
        "classes": ckpt["classes"],
        "sample_rate_hz": int(MODEL_FS_HZ),
        "window": cfg["window"],
        "timesteps": int(getattr(model, "timesteps", cfg["timesteps"])),
        "spike_bits": int(getattr(model, "spike_bits", cfg["bits"])),
        "pack": cfg["pack"],
        "trained_on": f"cwru {cfg['task']}, leak-free split (shared/CONTRACTS.md section 1)"
                      + (f", loads {cfg['loads']}" if cfg.get("loads") else "")
                      + (f", sizes {cfg['sizes']}" if cfg.get("sizes") else ""),
        "metrics": metrics or {},
        "training": {k: cfg[k] for k in ("seed", "epochs", "steps_per_epoch", "batch_size", "lr", "noise",
                                         "snr_range_db", "noise_fraction")}
                    | ({"speed_jitter": cfg["speed_jitter"]} if cfg.get("speed_jitter") else {})  # augmentation used
                    | ({"path_share": cfg["path_share"]} if cfg.get("path_share") else {})
                    | ({"path_until": cfg["path_until"]} if cfg.get("path_share") and cfg.get("path_until", 1) < 1 else {})
                    | {"seconds": round(ckpt.get("train_seconds", 0.0), 1),
                       "epochs_to_val_99": epochs_to(ckpt.get("history", []), 0.99)},
        # a fleet's global model says how it was retrained (edgesnn fleet)
        **({"fleet": {k: cfg["fleet"][k] for k in ("selection", "clients", "clients_per_round", "scenario",
                                                     "local_steps")} | {"rounds": len(ckpt.get("history", [])) - 1}}
           if cfg.get("fleet") else {}),
    }
    if cfg.get("extra"):
        card["pack_options"] = cfg["extra"]
    return card


def export_quantized(model: torch.nn.Module, ckpt: dict, out_dir: Path, name: str, calibration: np.ndarray,
                     check_windows: np.ndarray, default: bool = False, command: str | None = None,
                     seed: int = 0) -> Path:
    """Write the integer network: `<name>.onnx` (int8 weights, exact integer spikes), `<name>.npz`
    (the same network for firmware_sim and the C export) and the card. `calibration`: training-
    region windows [N, L]. The graph is checked against the simulator on `check_windows` (real
    windows) and random ones (onnx_graph.write_checked: the gateway graph by class, else bit for bit)."""
    from edgesnn.anomaly import is_anomaly_card
    from edgesnn.firmware_sim.onnx_graph import spike_encoding, write_checked
    from edgesnn.firmware_sim.quantize import quantize_esvae, quantize_mra_snn

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, fields = _to_ship(model)
    detector = is_anomaly_card(fields)
    net = quantize_esvae(model, calibration) if detector else quantize_mra_snn(model, ckpt["classes"], calibration)
    onnx_path, npz_path = out_dir / f"{name}.onnx", out_dir / f"{name}.npz"
    check = write_checked(net, onnx_path, check_windows, CHECK_WINDOWS, seed)
    net.save(npz_path)
    card = _card(name, default, onnx_path, ckpt, model, None) | fields
    card["onnx_check"] = check
    card["quantization"] = {
        "weights": "int8, symmetric, per output channel; batch norm folded into the requantization",
        "spikes": (f"exact integer counts 0..{net.levels} (the graph's float32 tensors hold them exactly)" if detector
                   else spike_encoding(net.encoder_neurons.levels)),
        "membrane": "int16 in Q8 (threshold 256), leak 0.5 as an arithmetic shift",
        "onnx_graph": onnx_graph_text(check),
        "input": f"int16 samples per window, standardized to int8 in steps of 2^-{net.s_in} RMS",
        **({"spectrum": "int8 Hann-windowed cosine and sine kernels (one scale per bin), power summed over frames in "
                        "int64, log2 in Q8 from the exponent and a 128-entry mantissa table; the score is the exact "
                        "integer squared error / (bins x 2^16), as float32"} if detector else {}),
        "calibration_windows": int(len(calibration)),
        "firmware": npz_path.name,
        "firmware_sha256": sha256_of(npz_path),
    }
    if getattr(net, "envelope", None) is not None:  # both views: the second one's input and arithmetic
        sp = net.envelope.spectrum
        bands = ("complex Morlet kernels (one scale per band), isqrt band envelopes, pair average"
                 if sp.pairs(net.window) else
                 f"{sp.bank.shape[1]}-tap Hann-windowed complex kernels at stride {sp.stride} (one scale per band), "
                 f"isqrt band envelopes")
        card["quantization"]["envelope_view"] = (
            f"the window's int16 samples less their mean; int8 {bands}, Q8 modulation depth by integer division, "
            f"int8 Hann-windowed DFT rows (one scale per bin), isqrt magnitudes >> {sp.shift} as int16; its spike "
            f"counts join the raw view's << {net.envelope.count_shift} (firmware_sim/envelope.py)")
    if getattr(net, "exits", None):  # the integer network decides per window, in integers (firmware_sim/network.py)
        card["early_exit"] |= {"rule": "each window returns the logits of the first stage whose integer confidence "
                                       "sum_j exp_q15[min((max z - z_j) >> 4, 178)] (z: Q8 logits) is at most "
                                       "floor(2^15 / threshold); > 1 runs every stage"}
    if command:
        card["command"] = command
    card_path = out_dir / f"{name}.json"
    write_card(card_path, card)
    return card_path


def onnx_graph_text(check: dict) -> str:
    """What the card says of the quantized ONNX graph that `check` (onnx_graph.write_checked) proved."""
    if check["graph"].startswith("gateway"):
        return ("int8 weights times their per-channel requantization scale, exact uint8 spike counts, float32 "
                "currents and membranes, the firmware's sigmoid tables; agrees with the integer network by class "
                "(onnx_check), not bit for bit")
    return "the integer network bit for bit (float tensors holding exact integers)"


# The integer network ships where it is as accurate as its float export: within this much clean
# test-region accuracy (the rule by which the integer network became the default).
MAX_INTEGER_LOSS = 0.003


def integer_loss(card: dict) -> str | None:
    """A one-line warning when a quantized classifier's card shows its integer model (the ONNX
    graph the card ships) clearly less accurate (clean, test region) than the float network it
    came from, else None."""
    float_metrics = card.get("quantization", {}).get("float_metrics", {})
    if "test_accuracy" not in float_metrics or "test_accuracy" not in card.get("metrics", {}):
        return None
    loss = float_metrics["test_accuracy"] - card["metrics"]["test_accuracy"]
    if loss <= MAX_INTEGER_LOSS:
        return None
    return (f"the integer model is {100 * loss:.2f} points less accurate than the float one on the test region "
            f"({card['metrics']['test_accuracy']:.4f} against {float_metrics['test_accuracy']:.4f}, more than "
            f"{100 * MAX_INTEGER_LOSS:.1f}); ship the float export (without --quantize) or retrain")


def exact_graph_fallback(card: dict) -> str | None:
    """A one-line warning when a quantized plain MRA-SNN shipped the exact graph because the
    faster gateway graph did not pick the simulator's class often enough, else None."""
    agreement = card.get("onnx_check", {}).get("gateway_real_argmax_agreement")
    if agreement is None:
        return None
    return (f"the fast gateway graph picked the integer network's class on {agreement:.2%} of the real check windows "
            "(needs 99.9%), so the slower exact graph was written; a better trained network usually passes")


def card_metrics(r: dict) -> dict:
    """The card's `metrics` from an evaluation.evaluate result."""
    return {"test_accuracy": r["test_accuracy"], "test_windows": r["n_windows"],
            **{f"snr_{s}db_accuracy": a for s, a in r["snr_accuracy"].items()},
            "per_load_accuracy": r["per_load_accuracy"]}


# What an export may write besides <name>.onnx and <name>.json: files of these suffixes that the
# new export did not write belonged to the model it replaced (its integer network, its C source)
MODEL_FILE_SUFFIXES = (".npz", ".c", ".h")


def export_measured(model: torch.nn.Module, ckpt: dict, out_dir: Path, name: str, task_data=None,
                    quantize: bool = False, default: bool = False, c_source: bool = False) -> Path:
    """Export (float, or the integer network with `quantize`, and its C with `c_source`) and, given
    `task_data`, write the card's metrics measured on the exported ONNX file itself through the
    edge runtime. The new model replaces the whole model of that name: its files that the new
    export does not write (an earlier .npz, .c, .h) are removed once the new card is in place."""

    if quantize and task_data is None:
        raise EdgesnnError("the integer export calibrates on the training region: give the data")
    # Every file is made and checked in a staging folder beside its destination and moved in only
    # when all succeeded, the card last: a failed export leaves no half-written model, and does not
    # destroy a model of the same name already there (a watching monitor never sees half a model).
    out_dir = Path(out_dir)
    made = missing(out_dir)  # removed again if the export fails
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir))
    try:
        try:
            with warnings.catch_warnings():  # numpy's overflow warnings: the checks below say what is wrong
                warnings.simplefilter("ignore", RuntimeWarning)
                card_path = _export_measured(model, ckpt, staging, name, task_data, quantize, default)
                if c_source:
                    from edgesnn.card import read_card
                    from edgesnn.firmware_sim.c_export import write_c
                    from edgesnn.firmware_sim.network import IntMRASNN

                    write_c(IntMRASNN.from_card(card_path, read_card(card_path)), staging, name)
        except EdgesnnError as exc:  # name the file where it would have gone, not the staging copy
            raise EdgesnnError(str(exc).replace(str(staging), str(out_dir))) from None
        files = sorted(staging.iterdir(), key=lambda f: f == card_path)  # the card last
        for f in files:
            os.replace(f, out_dir / f.name)
        written = {f.name for f in files}
        for suffix in MODEL_FILE_SUFFIXES:  # the replaced model's, now that no card names them
            stale = out_dir / f"{name}{suffix}"
            if stale.name not in written and stale.is_file():
                stale.unlink()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_empty(made)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return out_dir / card_path.name


def _export_measured(model, ckpt: dict, out_dir: Path, name: str, task_data, quantize: bool, default: bool) -> Path:
    from edgesnn.card import read_card
    from edgesnn.evaluation import evaluate
    from edgesnn.runtime import Diagnoser
    from edgesnn.training import torch_predict

    if quantize:
        calibration, _ = task_data.sample_train(4096, np.random.default_rng(ckpt["config"]["seed"]))
        card_path = export_quantized(model, ckpt, out_dir, name, calibration, task_data.windows("val").x,
                                     default=default, command=ckpt.get("command"))
    else:
        card_path = export(model, ckpt, out_dir, name, default=default, command=ckpt.get("command"))
    model = deployed(model)
    if task_data is not None:
        test = task_data.windows("test")
        card = read_card(card_path)
        if card.get("kind") == "anomaly":  # a detector: AUROC of normal vs each fault (edgesnn/anomaly.py)
            from edgesnn.anomaly import AnomalyScorer, calibrate_threshold, detector_metrics

            score = AnomalyScorer(card_path, threshold=0.0).scores  # the threshold is set here
            card |= calibrate_threshold(score, task_data)
            card["metrics"] = detector_metrics(score, test, task_data.classes, card["threshold"])
            if quantize:  # the float detector on the same windows, its threshold set the same way
                threshold = calibrate_threshold(model.scores, task_data)["threshold"]
                card["quantization"]["float_metrics"] = detector_metrics(model.scores, test, task_data.classes, threshold)
        else:
            card["metrics"] = card_metrics(evaluate(Diagnoser(card_path).logits, test, task_data.classes))
            if quantize:  # the float network on the same windows, for the comparison
                card["quantization"]["float_metrics"] = card_metrics(evaluate(torch_predict(model), test, task_data.classes))
        write_card(card_path, card)
    return card_path
