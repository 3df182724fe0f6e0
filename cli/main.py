"""`edgesnn`: train, evaluate, export and run spiking fault-diagnosis models.

Commands that need torch (train, eval, export) import it inside the command, so the edge
commands (infer) run on the plain install.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import shlex
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console

from edgesnn.cli.extras import need_training_extra
from edgesnn.cli.fleet import fleet_app
from edgesnn.cli.options import finite
from edgesnn.errors import EdgesnnError
from edgesnn.folders import check_folder, check_writable, require_file

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Spiking neural networks for vibration fault diagnosis of rotating machines.")
# Piped output is not cut to 80 columns: tables stay readable in logs.
out = Console() if sys.stdout.isatty() else Console(width=200)
err = Console(stderr=True)

DATA_HELP = "CWRU folder (with MANIFEST.csv, or files with standard CWRU names); env EDGESNN_CWRU"
DEFAULT_DATA = os.environ.get("EDGESNN_CWRU", "../shared/datasets/cwru")


def _csv(text: Optional[str], option: str, kind=int) -> Optional[list]:
    if text is None:
        return None
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        what = "whole numbers" if kind is int else "numbers"
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of {what}", param_hint=option) from None
    if not values:  # an empty list would train on no fault recording at all
        raise typer.BadParameter(f"{text!r} names no value", param_hint=option)
    return values


BROKER_HELP = "MQTT broker: mqtt://HOST:PORT, or mqtts://HOST[:PORT] for TLS (port 8883); user:password@ before HOST"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
SHAPE_KEYWORDS = ("n_classes", "window", "timesteps", "bits")  # set by train's own flags, not --option


def _option_names(pack: str) -> list[str]:
    """The options pack `pack` takes, as `edgesnn packs` lists them: its factory's own keywords,
    then those of the network it builds where the factory passes the rest on."""
    from edgesnn.registry import get_factory, pack_defaults

    factory = get_factory(pack)
    options = [k for k in pack_defaults(pack) if k not in SHAPE_KEYWORDS]
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values()):
        # the factory passes options on to the network it builds: name that network's
        built = factory()
        if "frontend" in getattr(built, "config", {}):
            from edgesnn.models.mra_snn import ENVELOPE_BANKS, FRONTENDS, MAX_ENVELOPE_BLOCKS, takes_both_views

            both = takes_both_views(type(built))
            fronts = "|".join(f for f in FRONTENDS if both or "+" not in f)
            second = (f"; with frontend=raw+envelope envelope_bank={'|'.join(ENVELOPE_BANKS)}, "
                      f"envelope_blocks=0..{MAX_ENVELOPE_BLOCKS}" if both else "")
            options.append(f"the MRA-SNN backbone's (frontend={fronts}, channels, blocks, dendritic{second})")
        else:
            options += [k for k, p in inspect.signature(type(built).__init__).parameters.items()
                        if p.default is not p.empty and k not in SHAPE_KEYWORDS and k not in options]
    return options


_NUMBER = r"\s*-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?\s*"  # a JSON number
NUMBER_LIST = re.compile(rf"{_NUMBER}(,{_NUMBER})+")


def _pack_options(pack: str, pairs: list[str], timesteps: int, bits: int) -> dict:
    """KEY=VALUE pairs -> keyword arguments of the pack's build(); values parsed as JSON when
    they are (numbers, true/false, lists), else kept as text. A bad option fails here, before
    any data is read, by building the network once and running it on one silent window."""
    import torch

    from edgesnn.registry import create_model

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        if value.strip().lower() in BOOLEAN_WORDS:  # False, off, no: not the (truthy) text "False"
            options[key] = BOOLEAN_WORDS[value.strip().lower()]
            continue
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:  # text, or a list as `edgesnn packs` shows one: 4,2,1 for [4,2,1]
            options[key] = json.loads(f"[{value}]") if NUMBER_LIST.fullmatch(value) else value
        if isinstance(options[key], float) and not math.isfinite(options[key]):
            raise typer.BadParameter(f"{pair!r}: not a finite number", param_hint="--option")
    # without options, a refusal can only be about the pack's timesteps or bits
    hint = "--option" if options else "'--timesteps' / '--bits'"
    try:
        model = create_model(pack, n_classes=10, window=2048, timesteps=timesteps, bits=bits, **options)
    except (TypeError, ValueError, RuntimeError) as exc:
        # Python words an unknown key as "__init__() got an unexpected keyword argument": name the valid ones
        unknown = [k for k in options if f"unexpected keyword argument '{k}'" in str(exc)]
        if isinstance(exc, TypeError) and unknown:
            valid = ", ".join(_option_names(pack)) or "none"
            raise typer.BadParameter(f"pack {pack} has no option {unknown[0]!r}; its options: {valid}",
                                     param_hint=hint) from None
        raise typer.BadParameter(f"pack {pack}: {str(exc).splitlines()[0]}", param_hint=hint) from None
    try:  # options each pack accepts may still not fit together (a third-party pack checks less)
        with torch.no_grad():
            model.eval()(torch.zeros(1, 1, 2048))
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise typer.BadParameter(f"pack {pack}: these settings build a network that cannot run a window "
                                 f"({str(exc).splitlines()[0][:160]})", param_hint=hint) from None
    return options


def _validation_text(row: dict) -> str:
    """An epoch's validation metrics: accuracy, or a pack's own (an anomaly model has no accuracy)."""
    if "val_accuracy" in row:
        return f"val {row['val_accuracy']:.4f} val-6dB {row['val_snr_-6db_accuracy']:.4f}"
    return " ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith("val_") and isinstance(v, (int, float)))


@app.command()
def train(
    pack: str = typer.Option("mra_snn", help="model pack (see `edgesnn packs`)"),
    data: Path = typer.Option(DEFAULT_DATA, help=DATA_HELP),
    out_dir: Path = typer.Option(Path("runs/train"), "--out", help="folder for checkpoint, history and PNG"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1),
    epochs: int = typer.Option(60, min=1),
    steps: int = typer.Option(100, min=1, help="optimizer steps per epoch"),
    batch_size: int = typer.Option(64, min=1, max=4096),
    lr: float = typer.Option(3e-3, callback=finite, min=1e-8, max=1.0),
    bits: Optional[int] = typer.Option(None, min=1, max=8, help="spike bits (multi-bit neurons emit 0..2^bits-1); "
                                                               "default: the pack's (mra_snn: 2)"),
    timesteps: Optional[int] = typer.Option(None, min=1, max=64, help="timesteps T; default: the pack's "
                                                                      "(mra_snn: 1, see README)"),
    noise: bool = typer.Option(True, help="additive white noise augmentation in training"),
    speed_jitter: float = typer.Option(0.0, callback=finite, min=0.0, max=0.5,
                                       help="time-stretch augmentation: each training window stretched by a "
                                            "random factor in 1 +- this, as a shaft-speed change would; better "
                                            "load transfer, worse accuracy under noise (README)"),
    path_share: float = typer.Option(0.0, callback=finite, min=0.0, max=1.0,
                                     help="structural-path augmentation: this share of the fault windows goes "
                                          "through a random path of two resonances, as a sensor elsewhere on "
                                          "the machine hears them (README, light views on random paths)"),
    path_until: float = typer.Option(1.0, callback=finite, min=0.05, max=1.0,
                                     help="with --path-share: re-path only in this first share of the training "
                                          "steps, the rest on the recorded path (0.7: better in noise, README)"),
    task: str = typer.Option("cwru10", help="cwru10 (fault and size) or fault_type (4 classes)"),
    loads: Optional[str] = typer.Option(None, help="train only on these motor loads, e.g. 0 or 1,2"),
    sizes: Optional[str] = typer.Option(None, help="train only on these fault sizes (in), e.g. 0.007,0.014"),
    threads: int = typer.Option(0, min=0, max=256, help="torch threads (0: torch's default)"),
    teacher: Optional[Path] = typer.Option(None, help="checkpoint of the same task to distill from: the network "
                                                      "also learns its softened outputs (README: the default model)"),
    option: Optional[list[str]] = typer.Option(None, "--option", "-o",
                                               help="pack option KEY=VALUE, repeatable (e.g. frontend=cwt; "
                                                    "see README, model packs)"),
):
    """Train a model pack on the training region; keeps the best validation epoch."""
    # what the command line alone can refuse is refused before torch is imported (seconds) ...
    if out_dir.resolve().is_relative_to(data.resolve()):  # results would mix with the recordings they came from
        raise EdgesnnError(f"--out {out_dir} is the data folder {data} or inside it; write the results elsewhere")
    check_writable(out_dir)  # and an --out that cannot hold the results, before an hour of training
    # a result's name taken by a folder would fail only after training, the files before it replaced
    for name in ("checkpoint.pt", "history.json", "learning_curve.png"):
        if (out_dir / name).exists() and not (out_dir / name).is_file():
            raise EdgesnnError(f"{out_dir / name}: not a file, and train writes its {name} there; "
                               "remove it or choose another --out")
    if path_until < 1 and not path_share:
        raise EdgesnnError(f"--path-until {path_until:g} limits the structural-path augmentation to the first "
                           "steps: give --path-share too")
    train_loads, train_sizes = _csv(loads, "--loads"), _csv(sizes, "--sizes", float)
    if teacher is not None:
        require_file(teacher, "checkpoint")
    from edgesnn.sensors import cwru

    cwru.entries(data)  # a --data that holds no recordings
    need_training_extra()  # ... and the pack and its options after, before any data is read
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from edgesnn import plots
    from edgesnn.registry import get_factory, pack_shape
    from edgesnn.training import TrainConfig, train as run_training

    get_factory(pack)
    timesteps, bits = pack_shape(pack, timesteps, bits)
    extra = _pack_options(pack, option or [], timesteps, bits)
    cfg = TrainConfig(pack=pack, data=str(data), task=task, seed=seed, epochs=epochs, steps_per_epoch=steps,
                      batch_size=batch_size, lr=lr, timesteps=timesteps, bits=bits, noise=noise,
                      speed_jitter=speed_jitter, path_share=path_share, path_until=path_until,
                      loads=train_loads, sizes=train_sizes, threads=threads,
                      extra=extra, teacher=str(teacher) if teacher else None)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err, disable=not err.is_terminal) as progress:
        bar = progress.add_task(f"train {pack}", total=epochs, info="")

        def report(epoch, total, row):
            info = f"loss {row['loss']:.3f} {_validation_text(row)}"
            progress.update(bar, completed=epoch, info=info)
            if not err.is_terminal:
                err.print(f"epoch {epoch}/{total} {info}")

        try:
            ckpt = run_training(cfg, progress=report)
        except KeyboardInterrupt:  # the files are written at the end only: say that this run left none
            err.print(f"error: training interrupted after epoch {int(progress.tasks[bar].completed)} of {epochs}; "
                      f"nothing was written to {out_dir}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
    ckpt["command"] = "edgesnn " + shlex.join(sys.argv[1:])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out_dir / "checkpoint.pt")
    (out_dir / "history.json").write_text(json.dumps(ckpt["history"], indent=1))
    plots.learning_curve(ckpt["history"], out_dir / "learning_curve.png", f"{pack} on {task}")
    best = ckpt["history"][ckpt["best_epoch"] - 1]
    out.print(f"trained {pack} in {ckpt['train_seconds']:.0f} s; best validation epoch {best['epoch']}: "
              f"{_validation_text(best)}")
    out.print(f"wrote {out_dir / 'checkpoint.pt'}, history.json, learning_curve.png")


def _snr_table(results: dict, title: str):
    """One row per model: clean test accuracy and the SNR sweep (evaluation.evaluate results)."""
    from rich.table import Table

    snrs = list(next(iter(results.values()))["snr_accuracy"])
    table = Table(title=title)
    for col in ["model", "clean", *[f"{s} dB" for s in snrs]]:
        table.add_column(col, justify="right")
    for k, r in results.items():
        table.add_row(k, f"{r['test_accuracy']:.4f}", *[f"{r['snr_accuracy'][s]:.4f}" for s in snrs])
    return table


@app.command("eval")
def evaluate_cmd(
    checkpoints: list[Path] = typer.Argument(..., help="checkpoints from `edgesnn train` (several: one table)"),
    data: Path = typer.Option(DEFAULT_DATA, help=DATA_HELP),
    out_dir: Path = typer.Option(Path("runs/eval"), "--out", help="folder for PNGs and eval.json"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
):
    """Test-region accuracy, confusion matrix, SNR sweep (-10..+4 dB) and accuracy per test load.

    Given one checkpoint trained on each load (`train --loads N`), the per-load rows form the
    4x4 load-transfer table.
    """
    check_folder(out_dir)  # the cheap checks before torch is imported
    for path in checkpoints:
        require_file(path, "checkpoint")
    from edgesnn.sensors import cwru

    cwru.entries(data)  # a --data that holds no recordings
    need_training_extra()
    from rich.table import Table

    from edgesnn import plots
    from edgesnn.dataset import load_task
    from edgesnn.evaluation import evaluate
    from edgesnn.training import load_checkpoint, torch_predict

    models = [load_checkpoint(p) for p in checkpoints]
    for path, (model, _) in zip(checkpoints, models):
        if hasattr(model, "card_fields") and model.card_fields().get("kind") == "anomaly":
            raise EdgesnnError(f"{path}: an anomaly model scores windows, it does not classify; "
                               "`edgesnn export` measures its AUROC on the test region")
    tasks = {ckpt["config"]["task"] for _, ckpt in models}
    if len(tasks) != 1:  # say which is which: the paths alone do not tell
        which = ", ".join(f"{path} is {ckpt['config']['task']}" for path, (_, ckpt) in zip(checkpoints, models))
        raise EdgesnnError(f"checkpoints of different tasks ({which}); evaluate them apart")
    task_data = load_task(data, tasks.pop(), models[0][1]["config"]["window"])
    test = task_data.windows("test")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for path, (model, ckpt) in zip(checkpoints, models):
        cfg = ckpt["config"]
        label = f"{cfg['pack']}" + (f" loads={','.join(map(str, cfg['loads']))}" if cfg.get("loads") else "")
        label = label if label not in results else f"{label} ({path})"
        r = evaluate(torch_predict(model), test, task_data.classes)
        r["checkpoint"], r["train_loads"] = str(path), cfg.get("loads")
        results[label] = r
        plots.confusion_matrix(r["confusion"], task_data.classes, out_dir / f"confusion_{len(results)}.png",
                               f"{label}: {r['test_accuracy']:.4f}")
    plots.snr_curves({k: r["snr_accuracy"] for k, r in results.items()}, out_dir / "snr.png",
                     "test-region accuracy under white noise")
    (out_dir / "eval.json").write_text(json.dumps(results, indent=1))
    if as_json:
        print(json.dumps(results, indent=1))
        return
    out.print(_snr_table(results, f"test region, {test.x.shape[0]} windows"))
    loads = sorted({l for r in results.values() for l in r["per_load_accuracy"]}, key=int)
    by_load = Table(title="accuracy by test load (rows: model / training loads)")
    for col in ["model", *[f"test load {l}" for l in loads]]:
        by_load.add_column(col, justify="right")
    for k, r in results.items():
        by_load.add_row(k, *[f"{r['per_load_accuracy'].get(l, float('nan')):.4f}" for l in loads])
    out.print(by_load)
    out.print(f"wrote {out_dir}/eval.json, snr.png, confusion_*.png")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="checkpoint from `edgesnn train`"),
    out_dir: Path = typer.Option(Path("runs/export"), "--out", help="folder for <name>.onnx and <name>.json"),
    name: Optional[str] = typer.Option(None, help="model name (default: <pack>-<task>, -int8 when quantized)"),
    default: bool = typer.Option(False, help='mark the card "default": true'),
    data: Path = typer.Option(DEFAULT_DATA, help="CWRU folder: the card's metrics are measured on its test region "
                                                 "(and --quantize calibrates on its training region)"),
    quantize: bool = typer.Option(False, help="the integer network: int8 weights, exact integer spikes, calibrated "
                                              "on training-region windows of --data; checked against "
                                              "edgesnn.firmware_sim (the same class on 99.9% of real windows, "
                                              "or bit for bit)"),
    c_source: bool = typer.Option(False, "--c", help="with --quantize: also write <name>.c and <name>.h, the "
                                                     "integer network as self-contained C99 (no heap, no floats)"),
):
    """Write ONNX + model card, checked against PyTorch (float: 1e-4 on random windows, see README)
    or against the integer simulator (--quantize: the same class on 99.9% of real windows for the
    fast gateway graph, else bit for bit; README: "The integer network")."""
    if c_source and not quantize:  # the command line's own mistakes, before torch is imported
        raise EdgesnnError("--c writes the integer network: add --quantize")
    check_folder(out_dir)
    if name is not None and not MODEL_NAME.match(name):
        raise EdgesnnError(f"--name {name!r}: a model name of letters, digits, '.', '_' and '-', starting with a "
                           "letter or digit (it names the files in --out, and the C source includes its header by it)")
    require_file(checkpoint, "checkpoint")
    from edgesnn.sensors import cwru

    cwru.entries(data)  # a --data that holds no recordings
    need_training_extra()
    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.export import c_exportable, exact_graph_fallback, export_measured, integer_loss, quantizable
    from edgesnn.training import load_checkpoint

    model, ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    if quantize and not quantizable(model):  # before the data is read, naming the checkpoint
        front = cfg.get("extra", {}).get("frontend", "raw")
        raise EdgesnnError(f"{checkpoint}: the integer network covers the plain MRA-SNN with its learned raw-signal "
                           f"encoder or both views (raw+envelope), ssnn's shrinking one and the esvae detector, not "
                           f"this {cfg['pack']} model"
                           + (f" ({front} front end)" if front != "raw" else "") + "; export it without --quantize")
    if c_source and hasattr(model, "scores"):
        raise EdgesnnError(f"{checkpoint}: --c writes a classifier's C; this {cfg['pack']} model is an anomaly "
                           "detector (its integer network is in firmware_sim/esvae.py)")
    if c_source and not c_exportable(model):  # before the export: a refusal after it would leave its files
        raise EdgesnnError(f"{checkpoint}: --c writes the plain MRA-SNN's C, not this {cfg['pack']} model's "
                           "shrinking network with early exits (firmware-sim and onnxruntime run it); export it "
                           "without --c")
    name = name or f"{cfg['pack'].replace('_', '-')}-{cfg['task']}" + ("-int8" if quantize else "")
    if default:  # two shipped defaults would leave every command without a default model
        from edgesnn.models import SHIPPED_DIR, shipped_cards

        if out_dir.resolve().is_relative_to(SHIPPED_DIR.resolve()):
            others = [p for p in shipped_cards() if json.loads(p.read_text()).get("default")
                      and p.resolve() != (out_dir / f"{name}.json").resolve()]
            if others:
                raise EdgesnnError(f"--default: {others[0]} is the shipped default; set its \"default\" to false "
                                   "first (one default model only)")
    task_data = load_task(data, cfg["task"], cfg["window"])
    # the C is written with the model (in its staging folder), so a failed export leaves the old C too
    card_path = export_measured(model, ckpt, out_dir, name, task_data, quantize, default, c_source=c_source)
    out.print(f"wrote {card_path.with_suffix('.onnx')} and {card_path}")
    written = read_card(card_path)
    for warning in (integer_loss(written), exact_graph_fallback(written)) if quantize else ():
        if warning:
            err.print(f"[yellow]warning:[/yellow] {card_path.name}: {warning}", soft_wrap=True)
    if c_source:
        out.print(f"wrote {card_path.with_suffix('.c')} and {card_path.with_suffix('.h')}")


NORMAL_MARGIN = typer.Option(0.0, callback=finite, min=0.0, max=20.0,
                             help="call a window normal only when the normal class leads every fault by more "
                                  "than this (logits): fewer missed faults from a sensor away from the drive-end "
                                  "bearing, more false alarms (README, missed faults at another sensor position)")


@app.command()
def infer(
    path: Path = typer.Argument(..., help="recording: .mat, .csv, .npy or .wav"),
    fs: Optional[float] = typer.Option(None, help="sample rate in Hz (a .wav file carries its own, and a CWRU file "
                                                  "its standard name's or its folder's manifest's)"),
    model: Optional[Path] = typer.Option(None, help="model card (.json) or a shipped model's name, e.g. mra-snn-cwru10; default: the shipped default model"),
    variable: Optional[str] = typer.Option(None, help="variable (.mat; NAME:INDEX for one channel of a matrix), column name or index (.csv), channel (.npy/.wav)"),
    hop: Optional[int] = typer.Option(None, min=1, help="samples between windows at the model's rate, at least "
                                                       "a sixteenth of a window (default: one window)"),
    anomaly_model: Optional[Path] = typer.Option(None, help="card or shipped name of an anomaly model (e.g. esvae-cwru-normal) "
                                                            "scoring the same windows"),
    normal_margin: float = NORMAL_MARGIN,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """Diagnose a recording window by window with onnxruntime, and summarise it."""
    import numpy as np
    from rich.table import Table

    from edgesnn.anomaly import AnomalyScorer
    from edgesnn.labels import fault_type
    from edgesnn.runtime import Diagnoser
    from edgesnn.sensors.recordings import at_rate, read_recording
    from edgesnn.signal import MAX_WINDOWS_PER_WINDOW, NO_SIGNAL, flat, frame_blocks

    diagnoser = Diagnoser(model, normal_margin=normal_margin)
    anomaly = AnomalyScorer(anomaly_model) if anomaly_model else None
    if anomaly:
        anomaly.check_matches(diagnoser.window, diagnoser.sample_rate_hz, f"the classifier {diagnoser.model_id}")
    hop = hop or diagnoser.window
    if hop < diagnoser.window // MAX_WINDOWS_PER_WINDOW:  # each window is a copy: bounds the memory, as in monitor
        raise EdgesnnError(f"--hop {hop} is below {diagnoser.window // MAX_WINDOWS_PER_WINDOW} samples: at most "
                           f"{MAX_WINDOWS_PER_WINDOW} windows per window length")
    recorded = read_recording(path, fs=fs, variable=variable)
    x, rate, channel = at_rate(recorded, diagnoser.sample_rate_hz, path)
    read_at = "" if recorded.rate_hz == rate else f", resampled from {recorded.rate_hz:g} Hz"  # a rate to check
    if len(x) < diagnoser.window:
        raise EdgesnnError(f"{path}: {len(x)} sample{'' if len(x) == 1 else 's'} ({len(x) / rate:.3g} s) of signal "
                           f"at {rate:g} Hz is shorter than one {diagnoser.window}-sample "
                           f"({diagnoser.window / rate:.3f} s) window")
    # Block by block, so that memory follows the block, not the recording; kept per window are
    # only its probabilities (and anomaly score).
    parts = []
    for windows in frame_blocks(x, diagnoser.window, hop):
        quiet = flat(windows)
        parts.append((quiet, diagnoser.probabilities(windows),
                      np.where(quiet, np.nan, anomaly.scores(windows)) if anomaly else None))
    quiet, probs = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    # windows without vibration are not scored either: a dead sensor is not an anomaly of the machine
    scores = np.concatenate([p[2] for p in parts]) if anomaly else None
    if quiet.all():
        raise EdgesnnError(f"{path}: no vibration in any window (constant signal): a disconnected sensor, "
                           "or the wrong variable?")
    broken = ~np.isfinite(probs).all(axis=1) & ~quiet
    if broken.any():
        raise EdgesnnError(f"{path}: the model {diagnoser.model_id} gave non-finite probabilities for "
                           f"{int(broken.sum())} windows; no diagnosis")
    labels = [NO_SIGNAL if q else diagnoser.classes[i] for q, i in zip(quiet, probs.argmax(axis=1))]
    diagnosed = [l for l in labels if l != NO_SIGNAL]
    counts = {c: diagnosed.count(c) for c in dict.fromkeys(diagnosed)}
    verdict = max(counts, key=counts.get)
    summary = {
        "file": str(path), "channel": channel, "sample_rate_hz": recorded.rate_hz, "model": diagnoser.model_id,
        "windows": len(labels), "label": verdict,
        "fault_type": fault_type(verdict), "share": counts[verdict] / len(diagnosed),
        "mean_confidence": float(probs.max(axis=1)[[l == verdict for l in labels]].mean()),
        "labels": counts, "no_signal_windows": int(quiet.sum()),
        **({"normal_margin": diagnoser.normal_margin} if diagnoser.normal_margin else {}),
    }
    if anomaly:
        summary |= {"anomaly_model": anomaly.model_id, "anomaly_threshold": anomaly.threshold,
                    "anomalous_share": float(np.mean(anomaly.alarms(scores[~quiet]))),
                    "max_anomaly_score": float(scores[~quiet].max())}
    if as_json:
        rows = [{"start_s": i * hop / rate, "label": l, "confidence": None if l == NO_SIGNAL else float(p.max()),
                 **({"anomaly_score": None if l == NO_SIGNAL else float(scores[i]),
                     "anomaly": None if l == NO_SIGNAL else bool(scores[i] > anomaly.threshold)}
                    if anomaly else {})}
                for i, (l, p) in enumerate(zip(labels, probs))]
        print(json.dumps({"summary": summary, "windows": rows}, indent=1))
        return
    # the title on its own line: as a table title it would wrap to the narrow table's width
    out.print(f"{path.name}{f' ({channel})' if channel else ''}: {len(labels)} windows of {diagnoser.window} "
              f"samples at {rate:g} Hz{read_at}", markup=False, soft_wrap=True)
    table = Table()
    for col in ("start (s)", "label", "confidence") + (("anomaly score",) if anomaly else ()):
        table.add_column(col, justify="right")
    for i, (l, p) in enumerate(zip(labels, probs)):
        table.add_row(f"{i * hop / rate:.3f}", l, "-" if l == NO_SIGNAL else f"{p.max():.3f}",
                      *(("-" if l == NO_SIGNAL else f"{scores[i]:.3g}",) if anomaly else ()))
    out.print(table)
    out.print(f"[bold]{verdict}[/bold] ({summary['fault_type']}) in {summary['share']:.0%} of diagnosed windows, "
              f"mean confidence {summary['mean_confidence']:.3f}; model {diagnoser.model_id}"
              + (f", normal margin {diagnoser.normal_margin:g}" if diagnoser.normal_margin else ""))
    if hop > diagnoser.window:  # allowed (a quick look at a long recording), but said
        out.print(f"[yellow]--hop {hop} is longer than a window: {1 - diagnoser.window / hop:.0%} of the recording "
                  "lies between windows and was not diagnosed[/yellow]")
    if quiet.any():
        out.print(f"[yellow]{int(quiet.sum())} of {len(labels)} windows had no vibration (constant signal) "
                  "and were not diagnosed: is the sensor connected?[/yellow]")
    if anomaly:
        out.print(f"anomalous (score > {anomaly.threshold:g}) in {summary['anomalous_share']:.0%} of the windows with vibration, "
                  f"highest score {summary['max_anomaly_score']:.3g}; anomaly model {anomaly.model_id}")


@app.command("firmware-sim")
def firmware_sim(
    model: Optional[Path] = typer.Option(None, help="card or shipped name of a quantized model (export "
                                                    "--quantize); default: the shipped default model"),
    recording: Optional[Path] = typer.Option(None, help="run on this recording instead of the CWRU test region"),
    fs: Optional[float] = typer.Option(None, help="sample rate of --recording in Hz"),
    variable: Optional[str] = typer.Option(None, help="--recording's variable, column or channel, as for infer"),
    data: Path = typer.Option(DEFAULT_DATA, help=DATA_HELP),
    limit: int = typer.Option(0, min=0, help="use at most this many windows (0: all): a recording's first "
                                                 "ones, or of the test region every class in turn"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """Run the integer-only reference of the device on real windows; print what the device needs
    (flash, RAM, operations, energy, cycles) and how it agrees with onnxruntime."""
    import numpy as np
    from rich.table import Table

    from edgesnn.anomaly import AnomalyScorer, auroc, is_anomaly_card
    from edgesnn.card import onnx_graph_kind, read_card, resolve_card
    from edgesnn.firmware_sim import budget
    from edgesnn.firmware_sim.esvae import IntESVAE
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.runtime import Diagnoser
    from edgesnn.signal import flat, frame

    if (fs is not None or variable is not None) and recording is None:
        raise EdgesnnError("--fs and --variable describe --recording: give the recording too")
    card_path = resolve_card(model) if model else _shipped_quantized_card()
    card = read_card(card_path)
    detector = is_anomaly_card(card)
    net = (IntESVAE if detector else IntMRASNN).from_card(card_path, card)
    labels, quiet = None, np.zeros(0, bool)
    if recording is not None:
        from edgesnn.sensors.recordings import read_recording

        x = read_recording(recording, fs=fs, target_fs=card["sample_rate_hz"], variable=variable).signal
        windows, where = frame(x, net.window, net.window), str(recording)
        if len(windows) == 0:
            raise EdgesnnError(f"{recording}: shorter than one {net.window}-sample window")
        quiet = flat(windows)  # as in infer: a window with no vibration is not diagnosed
        if quiet.all():
            raise EdgesnnError(f"{recording}: no vibration in any window (constant signal): a disconnected sensor, "
                               "or the wrong variable?")
        windows = windows[~quiet]
    else:
        from edgesnn.dataset import load_task
        from edgesnn.labels import task_of

        try:  # a detector is measured on the windows of every class, normal against the faults
            task = "cwru10" if detector else task_of(card["classes"])
        except ValueError as exc:
            raise EdgesnnError(f"{card_path}: {exc}; give --recording instead") from None
        test = load_task(data, task, net.window).windows("test")
        windows, labels, where = test.x, test.y, f"CWRU test region ({data})"
    if limit:  # a recording's first windows; the test region (ordered by class) every class in turn
        pick = np.arange(min(limit, len(windows))) if labels is None else _every_class(labels, limit)
        windows = windows[pick]
        labels = labels[pick] if labels is not None else None
    stats: dict = {}
    report = {"model": card["name"], "input": where, "windows": len(windows)}
    if recording is not None:
        report["no_signal_windows"] = int(quiet.sum())
    if detector:
        scorer = AnomalyScorer(card_path)
        ours = net.scores(windows, stats)
        alarms = scorer.alarms(ours)
        report |= {"onnxruntime_bit_exact_windows": int(np.sum(ours == scorer.scores(windows))),
                   "alarm_share": float(np.mean(alarms)),
                   **budget.detector_budget(net, stats, card["sample_rate_hz"])}
        if labels is not None and 0 < np.sum(labels == 0) < len(labels):
            # the share over all windows mixes normal and fault ones: they are reported apart too
            report |= {"auroc": auroc(ours[labels == 0], ours[labels != 0]),
                       "false_alarm_share": float(np.mean(alarms[labels == 0])),
                       "fault_alarm_share": float(np.mean(alarms[labels != 0]))}
    else:
        ours = net.q8_logits(windows, stats)
        theirs = Diagnoser(card_path).logits(windows) * 256
        report |= {"onnx_graph": onnx_graph_kind(card),
                   "onnxruntime_bit_exact_windows": int(np.all(ours == theirs, axis=1).sum()),
                   "onnxruntime_argmax_agreement": float(np.mean(ours.argmax(1) == theirs.argmax(1))),
                   "onnxruntime_max_logit_difference": float(np.abs(ours - theirs).max(initial=0.0) / 256),
                   **budget.budget(net, stats, card["sample_rate_hz"])}
        if labels is not None:
            report["accuracy"] = float(np.mean(ours.argmax(1) == labels))
    if as_json:
        print(json.dumps(report, indent=1))
        return
    t = Table(title=f"{card['name']} on {where}: {len(windows)} windows, integer simulator")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    ops, e, fl, ram = report["operations"], report["energy_pj"], report["flash_bytes"], report["ram_bytes"]
    if detector:
        rows = [("AUROC, normal vs fault windows", f"{report['auroc']:.4f}" if "auroc" in report else "-")]
        if "auroc" in report:
            rows += [("normal windows over the alarm threshold (false alarms)", f"{report['false_alarm_share']:.1%}"),
                     ("fault windows over it (detected)", f"{report['fault_alarm_share']:.1%}")]
        else:
            rows += [("windows over the alarm threshold", f"{report['alarm_share']:.1%}")]
    else:
        rows = [("accuracy", f"{report['accuracy']:.4f}" if labels is not None else "-")]
        same = round(report["onnxruntime_argmax_agreement"] * len(windows))
        rows.append(("same class as onnxruntime", f"{same}/{len(windows)}"))
    if onnx_graph_kind(card) == "gateway":
        # float32 currents and membranes (firmware_sim/gateway_graph.py): by class, not bit for bit
        rows.append(("largest logit difference from onnxruntime", f"{report['onnxruntime_max_logit_difference']:.3f}"))
    else:
        rows.append(("bit for bit with onnxruntime", f"{report['onnxruntime_bit_exact_windows']}/{len(windows)}"))
    rows += [
            ("flash: weights + tables", f"{fl['weights']} + {fl['tables']} = {fl['total'] / 1024:.1f} KiB"),
            ("RAM: static buffers + the int16 input window",
             f"{ram['static'] / 1024:.1f} + {(ram['peak'] - ram['static']) / 1024:.1f} = {ram['peak'] / 1024:.1f} KiB"),
            ("dense multiply-accumulates", f"{ops['snn_mac']:,}"),
            ("spike-triggered accumulates", f"{ops['snn_ac']:,}"),
            ("neuron updates", f"{ops['neuron_updates']:,}"),
            ("same network as an ANN: MACs", f"{ops['ann_mac']:,}"),
            ("energy, SNN int8 (45 nm)", f"{e['snn_int8'] / 1e6:.3f} uJ"),
            ("energy, same net as ANN fp32 / int8", f"{e['ann_fp32'] / 1e6:.3f} / {e['ann_int8'] / 1e6:.3f} uJ")]
    if "exit_share" in ops:  # a network with early exits: where the windows left
        rows.append(("windows leaving at each stage", " / ".join(f"{v:.1%}" for v in ops["exit_share"].values())))
    rows += [(f"{m['mcu']}", f"{m['ms_per_window']:.2f} ms/window (RTF {m['real_time_factor']:.3f})")
             for m in report["mcu"]]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    if quiet.any():
        out.print(f"[yellow]{int(quiet.sum())} windows had no vibration (constant signal) and were not "
                  "simulated: is the sensor connected?[/yellow]")


def _every_class(labels, limit: int):
    """Indices of at most `limit` windows, the classes in turn (each class's windows in a fixed
    random order, so that every load is drawn), in their original order: the test region lists
    its windows class by class, and its first `limit` would all be one class."""
    import numpy as np

    order = np.random.default_rng(0).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
    return np.sort(np.lexsort((labels, rank))[:limit])


def _shipped_quantized_card() -> Path:
    """The default model's card: it is the integer network (the first quantized card in path
    order would be a pack's)."""
    from edgesnn.card import default_card_path, read_card

    card = default_card_path()
    if "quantization" not in read_card(card):
        raise EdgesnnError(f"{card}: the default model is not quantized; give --model CARD from "
                           f"`edgesnn export --quantize`")
    return card


def _tls_and_auth(ca_file, cert_file, key_file, username, password) -> dict:
    return {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file, "username": username,
            "password": password if password is not None else os.environ.get("EDGESNN_MQTT_PASSWORD")}


CA_FILE = typer.Option(None, "--ca-file", help="CA certificate (PEM) that signed the broker's, for mqtts://")
CERT_FILE = typer.Option(None, "--cert", help="client certificate (PEM), for brokers that require one")
KEY_FILE = typer.Option(None, "--key", help="client private key (PEM)")
USERNAME = typer.Option(None, "--username", help="broker user name (or user@ in the URL)")
PASSWORD = typer.Option(None, "--password", help="broker password (or env EDGESNN_MQTT_PASSWORD)")


@app.command()
def monitor(
    broker: str = typer.Option("mqtt://127.0.0.1:1883", help=BROKER_HELP),
    root: str = typer.Option("edgesnn", help="topic root (CONTRACTS section 3)"),
    model: Optional[Path] = typer.Option(None, help="model card (.json) or a shipped model's name, e.g. mra-snn-cwru10; default: the shipped default model"),
    hop: Optional[int] = typer.Option(None, min=1, help="samples between windows at the model's rate (default: one window)"),
    duration: float = typer.Option(0.0, callback=finite, min=0.0, help="stop after this many seconds (0: until Ctrl-C / SIGTERM)"),
    journal: Path = typer.Option(Path("edgesnn-monitor.sqlite"),
                                 help="SQLite store-and-forward journal of diagnoses and state changes"),
    metrics_port: int = typer.Option(0, min=0, max=65535, help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: off)"),
    inbox_mb: float = typer.Option(64.0, callback=finite, min=0.1, help="MiB of frames that may wait for diagnosis; beyond it frames are dropped and counted"),
    sensor_inbox_mb: float = typer.Option(4.0, callback=finite, min=0.1, help="MiB of frames one sensor may have waiting (<= --inbox-mb)"),
    max_sensors: int = typer.Option(2000, min=1, help="sensors tracked at once; frames of more are rejected and counted"),
    max_jitter_ms: float = typer.Option(5.0, callback=finite, min=0.0, max=1000.0,
                                        help="how far a frame's t0 may be off where its sensor's last frame ended "
                                             "before it is a gap in time, which restarts the window"),
    threads: int = typer.Option(1, min=1, max=64, help="onnxruntime threads for diagnosis"),
    model_dir: Optional[Path] = typer.Option(None, help="watch this folder for newer model cards (fleet exports); "
                                                        "a newer one is verified (sha256, classes, window, rate) "
                                                        "and swapped in without a restart"),
    anomaly_model: Optional[Path] = typer.Option(None, help="card or shipped name of an anomaly model (e.g. esvae-cwru-normal) run "
                                                            "beside the classifier: each diagnosis gains "
                                                            "anomaly_score and anomaly (see README)"),
    anomaly_threshold: Optional[float] = typer.Option(None, callback=finite, help="alarm above this anomaly score instead of the "
                                                                 "card's threshold (calibrated on this machine)"),
    normal_margin: float = NORMAL_MARGIN,
    ca_file: Optional[Path] = CA_FILE, cert_file: Optional[Path] = CERT_FILE, key_file: Optional[Path] = KEY_FILE,
    username: Optional[str] = USERNAME, password: Optional[str] = PASSWORD,
):
    """Diagnose every sensor streaming waveforms under ROOT; publish diagnoses, states and status.

    On a terminal it shows a live table of sensors; otherwise it writes plain log lines.
    """

    from edgesnn.anomaly import AnomalyScorer
    from edgesnn.inbox import Inbox
    from edgesnn.monitor import Monitor
    from edgesnn.runtime import Diagnoser

    if anomaly_threshold is not None and anomaly_model is None:
        raise EdgesnnError("--anomaly-threshold needs --anomaly-model")
    if sensor_inbox_mb > inbox_mb:
        raise EdgesnnError(f"--sensor-inbox-mb {sensor_inbox_mb:g} exceeds --inbox-mb {inbox_mb:g}")
    inbox = Inbox(int(inbox_mb * (1 << 20)), int(sensor_inbox_mb * (1 << 20)))
    anomaly = AnomalyScorer(anomaly_model, threads, anomaly_threshold) if anomaly_model else None
    mon = Monitor(broker, root, Diagnoser(model, threads=threads, normal_margin=normal_margin), hop, journal=journal, inbox=inbox, max_sensors=max_sensors,
                  model_dir=model_dir, anomaly=anomaly, max_jitter_s=max_jitter_ms / 1000,
                  **_tls_and_auth(ca_file, cert_file, key_file, username, password))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: mon.stop())
    mon.start()
    if metrics_port:
        from edgesnn import metrics

        try:
            metrics.serve(metrics_port, lambda: mon.last_status)
        except OSError as exc:
            raise EdgesnnError(f"127.0.0.1:{metrics_port}: cannot serve metrics ({exc.strerror})") from None
    err.print(f"monitoring {broker} for {mon.root}/<sensor>/waveform (a sensor id may span levels) with {mon.diagnoser.model_id}"
              + (f" (normal margin {normal_margin:g})" if normal_margin else "")
              + (f" and anomaly model {anomaly.model_id} (threshold {anomaly.threshold:g})" if anomaly else ""), markup=False,
              soft_wrap=True)
    with _dashboard() as refresh:
        final = mon.run(duration or None, on_step=refresh)
    out.print_json(json.dumps(final))


@contextmanager
def _dashboard():
    """On a terminal, a live table of the monitor's sensors (give the yielded function to
    Monitor.run as on_step); otherwise plain log lines."""
    import logging

    from rich.live import Live
    from rich.logging import RichHandler

    from edgesnn.cli.dashboard import sensor_table

    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True,
                        handlers=[RichHandler(console=err, show_path=False)] if err.is_terminal
                        else [logging.StreamHandler(sys.stderr)])
    if not err.is_terminal:
        yield None
        return
    shown = [0.0]
    with Live("waiting for sensors", console=err, auto_refresh=False) as live:

        def refresh(monitor):
            if time.monotonic() - shown[0] >= 0.5:
                shown[0] = time.monotonic()
                live.update(sensor_table(monitor), refresh=True)

        yield refresh


@app.command()
def demo(
    seconds: float = typer.Option(20.0, callback=finite, min=1.0, help="how long the sensors stream"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
):
    """The whole job on this machine: an embedded MQTT broker on 127.0.0.1, ten sensors replaying
    real CWRU clips (one per class, never seen in training), and the monitor with the default model.
    Ends with each sensor's truth, verdict and detection latency."""

    from rich.table import Table

    from edgesnn.demo import run_demo

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    err.print(f"demo: embedded broker, 10 sensors streaming real CWRU clips for {seconds:g} s", markup=False)
    with _dashboard() as refresh:
        rows, final = run_demo(seconds, on_step=refresh, stop=stop)
    if as_json:
        print(json.dumps({"sensors": rows, "monitor": final}, indent=1))
        return
    table = Table(title=f"demo summary: {final['windows']} windows diagnosed by {final['model']}")
    for col in ("sensor", "truth", "verdict", "windows right", "latency p50 (ms)", "latency max (ms)"):
        table.add_column(col, justify="left" if col in ("sensor", "truth", "verdict") else "right")
    for r in rows:
        ok = r["verdict"] == r["truth"]
        table.add_row(r["sensor"], r["truth"], f"[{'green' if ok else 'red'}]{r['verdict'] or '-'}[/]",
                      f"{r['windows_right']}/{r['windows']}",
                      *(f"{r[k]:.0f}" if r[k] is not None else "-" for k in ("latency_ms_p50", "latency_ms_max")))
    out.print(table)
    right = sum(r["verdict"] == r["truth"] for r in rows)
    out.print(f"{right}/{len(rows)} sensors diagnosed right; {final['dropped']} frames dropped, "
              f"{sum(final['rejected'].values())} rejected")


sensors_app = typer.Typer(no_args_is_help=True, help="Stream sensors over MQTT.")
app.add_typer(sensors_app, name="sensors")


@sensors_app.command("replay")
def sensors_replay(
    files: list[Path] = typer.Argument(..., help="recordings, one sensor each (.mat, .csv, .npy, .wav)"),
    fs: Optional[float] = typer.Option(None, help="sample rate in Hz of the recordings (a .wav carries its own)"),
    broker: str = typer.Option("mqtt://127.0.0.1:1883", help=BROKER_HELP),
    root: str = typer.Option("edgesnn", help="topic root"),
    frame_ms: float = typer.Option(100.0, callback=finite, min=1.0, help="milliseconds of signal per frame"),
    speed: float = typer.Option(1.0, callback=finite, min=0.0, help="x real time (0: as fast as possible)"),
    seconds: Optional[float] = typer.Option(None, callback=finite, min=0.0, help="stop after this much signal"),
    variable: Optional[str] = typer.Option(None, help="variable (.mat; NAME:INDEX for one channel of a matrix), column name or index (.csv), channel (.npy/.wav)"),
    ca_file: Optional[Path] = CA_FILE, cert_file: Optional[Path] = CERT_FILE, key_file: Optional[Path] = KEY_FILE,
    username: Optional[str] = USERNAME, password: Optional[str] = PASSWORD,
):
    """Replay recordings as live sensors, one topic per file, per CONTRACTS section 3."""
    from edgesnn.sensors.publisher import recording_streams

    streams = recording_streams(files, fs, variable)  # before the stop: Ctrl-C here ends at once
    _publish_until_stopped(streams, f"{len(files)} sensor(s)", broker, root, frame_ms, speed, seconds,
                           _tls_and_auth(ca_file, cert_file, key_file, username, password))
    longest = max(len(x) / rate for x, rate in streams.values())
    if seconds is not None and seconds > longest:  # asked for more than there is: say so
        out.print(f"(--seconds {seconds:g}: the longest recording holds {longest:.1f} s, all of it sent)")


@sensors_app.command("simulate")
def sensors_simulate(
    count: int = typer.Option(4, min=1, max=10_000, help="number of synthetic bearings"),
    seconds: float = typer.Option(60.0, callback=finite, min=0.1, help="seconds of signal per sensor"),
    broker: str = typer.Option("mqtt://127.0.0.1:1883", help=BROKER_HELP),
    root: str = typer.Option("edgesnn", help="topic root"),
    frame_ms: float = typer.Option(100.0, callback=finite, min=1.0, help="milliseconds of signal per frame"),
    speed: float = typer.Option(1.0, callback=finite, min=0.0, help="x real time (0: as fast as possible)"),
    seed: int = typer.Option(0),
    ca_file: Optional[Path] = CA_FILE, cert_file: Optional[Path] = CERT_FILE, key_file: Optional[Path] = KEY_FILE,
    username: Optional[str] = USERNAME, password: Optional[str] = PASSWORD,
):
    """Stream synthetic bearings (a mix of faults and speeds) as live sensors."""
    from edgesnn.sensors.publisher import simulated_fleet

    streams = simulated_fleet(count, seconds, seed=seed)  # before the stop: Ctrl-C here ends at once
    _publish_until_stopped(streams, f"{count} simulated sensor(s)", broker, root, frame_ms, speed, seconds,
                           _tls_and_auth(ca_file, cert_file, key_file, username, password))


class _Stop(threading.Event):
    signal: int = 0  # the signal that set it


def _stop_on_signals() -> _Stop:
    """An event that Ctrl-C or SIGTERM sets: a publisher stops after the frames in flight are
    acknowledged and says what it sent, instead of dying silently mid-stream. A second signal
    ends the process at once (the default handlers are back)."""
    stop = _Stop()

    def handle(signum, frame):
        stop.signal = signum
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)
    return stop


def _publish_until_stopped(streams: dict, sensors: str, broker: str, root: str, frame_ms: float, speed: float,
                           seconds: Optional[float], tls_and_auth: dict) -> None:
    """Publish the streams until they end or a signal stops them, and say what was sent."""
    from edgesnn.sensors.publisher import publish_streams

    stop = _stop_on_signals()
    sent = publish_streams(streams, broker, root, frame_ms, speed, seconds, tls_and_auth, stop=stop)
    out.print(f"{'stopped: ' if stop.is_set() else ''}sent {sent} frames from {sensors} to {broker} under {root}")
    if stop.is_set():  # the shell's convention for a run ended by a signal (as `fleet server`)
        raise typer.Exit(128 + stop.signal)


app.add_typer(fleet_app, name="fleet")


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print a table and write JSON and a PNG.")
app.add_typer(bench_app, name="bench")


@bench_app.command("inference")
def bench_inference(
    data: Path = typer.Option(DEFAULT_DATA, help=DATA_HELP),
    checkpoint: Optional[Path] = typer.Option(None, help="trained checkpoint for the PyTorch eager row "
                                                         "(default: the same architecture, untrained)"),
    repeats: int = typer.Option(20, min=3, help="timed repetitions per measurement (the median is kept)"),
    out_dir: Path = typer.Option(Path("bench_out"), "--out", help="folder for inference.json and inference.png"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """Latency per window of every runtime side by side (one thread, real windows), real-time
    factor, file sizes, and the operation and energy budget beside WDCNN."""
    need_training_extra()
    from rich.table import Table

    from edgesnn import bench

    check_folder(out_dir)
    result = bench.run(data, checkpoint, repeats)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "inference.json").write_text(json.dumps(result, indent=1))
    bench.plot(result, out_dir / "inference.png")
    if as_json:
        print(json.dumps(result, indent=1))
        return
    t = Table(title=f"one 2048-sample window ({result['window_s'] * 1e3:.0f} ms of signal), one thread, "
                    f"{result['windows']} real test-region windows")
    for col in ("runtime", "ms (batch 1)", f"ms (batch {bench.BATCH})", "real-time factor", "file", "clean", "-4 dB"):
        t.add_column(col, justify="left" if col == "runtime" else "right")
    for name, r in result["runtimes"].items():
        t.add_row(name, f"{r['ms_per_window_batch1']:.3f}", f"{r[f'ms_per_window_batch{bench.BATCH}']:.3f}",
                  f"{r['real_time_factor_batch1']:.5f}", f"{r['file_bytes'] / 1024:.0f} KiB" if "file_bytes" in r else "-",
                  f"{r['test_accuracy']:.4f}" if "test_accuracy" in r else "-",
                  f"{r['snr_-4db_accuracy']:.4f}" if "snr_-4db_accuracy" in r else "-")
    out.print(t)
    e = Table(title="operations and energy per window (45 nm: int8 MAC 0.23 pJ, AC 0.03 pJ; fp32 MAC 4.6 pJ)")
    e.add_column("quantity")
    e.add_column("value", justify="right")
    ops = result["operations"]
    for k, v in (("MRA-SNN integer: dense int8 MACs", f"{ops['snn_mac']:,}"),
                 ("MRA-SNN integer: spike-triggered ACs", f"{ops['snn_ac']:,}"),
                 ("WDCNN: MACs", f"{ops['wdcnn_mac']:,}"),
                 *((name, f"{pj / 1e6:.3f} uJ") for name, pj in result["energy_pj"].items()),
                 *((k.replace("_", " "), f"{v:.2f}x") for k, v in result["ratios"].items())):
        e.add_row(k, v)
    out.print(e)
    out.print(f"PyTorch eager: {result['pytorch_eager']}. Wrote {out_dir}/inference.json and inference.png")


@bench_app.command("packs")
def bench_packs(
    data: Path = typer.Option(DEFAULT_DATA, help=DATA_HELP),
    train: bool = typer.Option(False, "--train", help="train every pack here under the shared protocol "
                                                       "(minutes each) instead of loading the shipped models"),
    card: Optional[list[Path]] = typer.Option(None, help="also score this model card (repeatable), e.g. a pack "
                                                         "trained with --option frontend=cwt"),
    ssnn_checkpoint: Optional[Path] = typer.Option(None, help="ssnn checkpoint for the early-exit measurement "
                                                              "(default: runs/packs/ssnn/checkpoint.pt if present)"),
    repeats: int = typer.Option(5, min=1, help="timed repetitions per latency (the median is kept)"),
    out_dir: Path = typer.Option(Path("bench_out"), "--out", help="folder for packs.json and packs.png"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
):
    """Every classifier pack in one table: accuracy, SNR row, timesteps, latency, energy estimate,
    training time, epochs to converge; with a PNG."""
    need_training_extra()
    from rich.progress import Progress
    from rich.table import Table

    from edgesnn import bench_packs as bp
    from edgesnn.registry import list_packs

    check_folder(out_dir)
    if train:
        packs = [p for p in list_packs() if p in bp.EPOCHS]
        with Progress(console=err, disable=not err.is_terminal) as progress:
            bars = {p: progress.add_task(f"train {p}", total=bp.EPOCHS[p]) for p in packs}
            cards = bp.train_all(data, out_dir / "models", packs,
                                 lambda p, e, n: progress.update(bars[p], completed=e))
    else:
        cards = bp.shipped_classifier_cards()
    from edgesnn.models import shipped_cards

    shipped = {p.stem: p.resolve() for p in shipped_cards()}
    for path in card or []:  # a row per card: named by its file, or by its path where that name is taken by
        if path not in cards.values():  # another row or by a shipped model that this card is not
            taken = path.stem in cards or shipped.get(path.stem, path.resolve()) != path.resolve()
            cards[str(path) if taken else path.stem] = path
    if ssnn_checkpoint is None and Path("runs/packs/ssnn/checkpoint.pt").is_file() and not train:
        ssnn_checkpoint = Path("runs/packs/ssnn/checkpoint.pt")
    if train:
        ssnn_checkpoint = out_dir / "models" / "ssnn" / "checkpoint.pt"
    result = bp.run(data, cards, repeats, ssnn_checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused run leaves no empty folder
    (out_dir / "packs.json").write_text(json.dumps(result, indent=1))
    bp.plot(result, out_dir / "packs.png")
    if as_json:
        print(json.dumps(result, indent=1))
        return
    rows = result["packs"]
    t = Table(title=f"model packs on the CWRU test region ({result['test_windows']} windows), onnxruntime, one thread")
    for col in ("model", "T", "bits", "int8", "clean", "-4 dB", "ms/window", "energy uJ", "train s", "epochs",
                "to 99% val", "what it is for"):
        t.add_column(col, justify="left" if col in ("model", "what it is for") else "right")
    for label, r in rows.items():
        t.add_row(*bp.table_row(label, r))
    out.print(t)
    out.print(_snr_table(rows, "accuracy under white noise (the same noisy windows for every model)"))
    if "ssnn_early_exit" in result:
        e = result["ssnn_early_exit"]
        x = Table(title=f"ssnn early exit (PyTorch eager, stage timesteps {e['stage_timesteps']})")
        for col in ("exit rule", "accuracy", "windows leaving at each stage", "ms/window", "latency saved"):
            x.add_column(col, justify="right")
        x.add_row("every stage", f"{e['all_stages']['accuracy']:.4f}", "-", f"{e['all_stages']['ms_per_window']:.3f}", "-")
        for k, v in e.items():
            if k.startswith("exit_at_"):
                x.add_row(f"confidence >= {k[8:]}", f"{v['accuracy']:.4f}", " / ".join(f"{s:.0%}" for s in v["stage_share"]),
                          f"{v['ms_per_window']:.3f}", f"{v['latency_saved']:.0%}")
        out.print(x)
    for label, e in result.get("onnx_early_exit", {}).items():
        out.print(f"{label} in onnxruntime, batch 1: {e['ms_per_window_exit']:.3f} ms/window with its early exit at "
                  f"{e['threshold']:g} against {e['ms_per_window_every_stage']:.3f} running every stage "
                  f"({e['latency_saved']:.0%} saved)")
    out.print("energy per window, 45 nm constants: (sim) the integer simulator's count of int8 MACs and the "
              "accumulates spikes trigger; (dense) every MAC of the float graph at int8 cost, an upper bound. "
              f"Wrote {out_dir}/packs.json and packs.png")


@app.command()
def packs():
    """List the installed model packs, their default timesteps and bits, and what each is."""
    from rich.table import Table

    from edgesnn.registry import get_factory, list_packs, pack_defaults, timesteps_text

    t = Table(title="installed model packs (edgesnn train --pack NAME)")
    for col in ("pack", "T", "bits", "options", "what it is"):
        t.add_column(col, overflow="fold")  # option values are what a user types: never cut with an ellipsis
    for name in list_packs():
        try:
            factory, defaults = get_factory(name), pack_defaults(name)
        except Exception as exc:  # a broken third-party pack is listed, not fatal
            if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] == "torch":
                # the edge install: the pack is fine, training it needs the extra
                t.add_row(name, "-", "-", "-", "needs the training extra: pip install 'edgesnn\\[train]'")
                continue
            t.add_row(name, "-", "-", "-", f"cannot load: {type(exc).__name__}: {exc}")
            continue
        # the docstring's first paragraph, not its first line: a sentence may go on to the next
        about = " ".join((inspect.getmodule(factory).__doc__ or "").strip().split("\n\n")[0].split())
        options = _option_names(name)
        t.add_row(name, timesteps_text(defaults.get("timesteps", "-"), defaults.get("stage_timesteps")),
                  str(defaults.get("bits", "-")), ", ".join(options) or "-", about)
    out.print(t)


def main() -> None:
    """Console entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, or a command's own exit code
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:  # a bad option or argument: one line too, not a usage box
        hint = (" (edgesnn packs lists each pack's options)" if getattr(exc, "param_hint", None) == "--option"
                else f" ({exc.ctx.command_path} --help lists the options)" if getattr(exc, "ctx", None)
                else " (the command's --help lists the options)")  # Click's parser errors carry no context
        # Click calls a word given for a bounded number "not a valid float range": no range was given
        message = re.sub(r"is not a valid (float|integer) range\.", r"is not a valid \1.", exc.format_message())
        err.print(f"error: {message}{hint}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except EdgesnnError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:  # a path given that cannot be read or written (exists, permissions, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"error: {where}{exc.strerror or exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # a case no check foresaw: still one line, and the way to the details
        if os.environ.get("EDGESNN_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        err.print(f"error: unexpected {type(exc).__name__}: {first} (a bug in edgesnn; EDGESNN_DEBUG=1 "
                  "shows the traceback)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    # in this mode typer returns an Exit's code instead of raising it (Ctrl-C is 130): keep it the status
    if isinstance(code, int) and code:
        sys.exit(code)
