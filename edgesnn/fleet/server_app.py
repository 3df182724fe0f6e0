"""The Flower ServerApp: the fleet's rounds, test-region evaluation and the global checkpoint.

The same `run_fleet` drives Flower's simulation (`edgesnn fleet simulate`) and a deployment
(`edgesnn fleet server`, SuperLink + SuperNodes): only the Grid differs.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping

from edgesnn.card import onnx_graph_kind, read_card
from edgesnn.dataset import load_task
from edgesnn.evaluation import predict_labels
from edgesnn.fleet.activity import firing_state
from edgesnn.fleet.config import FleetConfig
from edgesnn.fleet.model import build, load_arrays, to_arrays
from edgesnn.fleet.selection import SelectionSettings
from edgesnn.fleet.strategy import FleetStrategy
from edgesnn.training import TrainConfig, torch_predict


def checkpoint(cfg: FleetConfig, classes, model: torch.nn.Module, history: list) -> dict:
    """The global model as an `edgesnn train` checkpoint, so `edgesnn export` takes it as is."""
    train_cfg = TrainConfig(pack=cfg.pack, data=cfg.data, seed=cfg.seed, timesteps=cfg.timesteps,
                            bits=cfg.bits, window=cfg.window)
    return {"format": "edgesnn-checkpoint/1", "config": {**asdict(train_cfg), "fleet": asdict(cfg)},
            "classes": list(classes), "state_dict": model.state_dict(), "history": history,
            "best_epoch": len(history) - 1, "train_seconds": history[-1]["seconds"] if history else 0.0}


def export_round(cfg: FleetConfig, data, model: torch.nn.Module, history: list, server_round: int) -> Path:
    """The round's global model as the default model is shipped: the integer network, ONNX +
    card, named <name>-r<round>, measured on the server's reference test region. The card is
    written last, so a monitor watching the folder never sees half a model."""
    from edgesnn.export import export_measured

    ckpt = checkpoint(cfg, data.classes, model, history)
    ckpt["command"] = f"fleet round {server_round} ({cfg.selection} selection)"
    return export_measured(model, ckpt, Path(cfg.export_dir), f"{cfg.name}-r{server_round:04d}", data, quantize=True)


def run_fleet(grid: Grid, cfg: FleetConfig, progress: Callable[[dict], None] | None = None) -> dict:
    """All rounds; returns {"rounds": [...], "checkpoint": ...}. Accuracy is on the test region."""
    torch.set_num_threads(max(cfg.threads, 1))
    torch.manual_seed(cfg.seed)
    data = load_task(Path(cfg.data), "cwru10", cfg.window)
    test = data.windows("test")
    model_cfg = cfg.model_config(len(data.classes))
    eval_model = build(model_cfg)  # holds the global model of the round being scored or exported
    # What a device's firing-rate state must look like: the layers of this very model.
    template = {k: len(v) for k, v in firing_state(eval_model, np.zeros((1, cfg.window), np.float32)).items()}
    strategy = FleetStrategy(
        SelectionSettings(cfg.selection, cfg.clients_per_round, cfg.candidates, cfg.credit_weight, cfg.target,
                          cfg.explore, aggregation=cfg.aggregation, seed=cfg.seed),
        cfg.client_config(len(data.classes)), min_available_nodes=min(cfg.clients, cfg.clients_per_round),
        timeout=cfg.round_timeout, state_template=template, max_rate=2.0**cfg.bits - 1,
        uniform_weights=cfg.dp_clip > 0, lr_at=cfg.lr_at)
    history: list[dict] = []
    out = Path(cfg.out) if cfg.out else None
    start = time.perf_counter()

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        load_arrays(eval_model, arrays).eval()
        accuracy = float(np.mean(predict_labels(torch_predict(eval_model), test.x) == test.y))
        row = {"round": server_round, "test_accuracy": accuracy, "seconds": time.perf_counter() - start}
        if server_round > 0:
            log = strategy.rounds[-1]
            row.update(lr=cfg.lr_at(server_round), selected=[strategy.names.get(n, str(n)) for n in log.selected], queried=log.queried, accepted=log.accepted,
                       update_norms=log.update_norms, first_error=log.first_error,
                       rejected=dict(log.rejected), weighting=log.weighting, train_loss=log.train_loss, bytes=dict(log.bytes),
                       stats_cpu_seconds=log.stats_cpu_seconds, stats_windows=log.stats_windows)
        if cfg.export_dir and server_round > 0:
            card = export_round(cfg, data, eval_model, history + [row], server_round)
            # "gateway" (fast) or "exact": a round the gateway graph did not match ships the slower graph
            row.update(exported=str(card), exported_graph=onnx_graph_kind(read_card(card)))
        history.append(row)
        if cfg.out:  # progress for whoever watches a deployment's ServerApp; replaced whole, never half-written
            out.mkdir(parents=True, exist_ok=True)
            (out / "history.json.tmp").write_text(json.dumps({"config": asdict(cfg), "rounds": history}, indent=1))
            os.replace(out / "history.json.tmp", out / "history.json")
        if progress:
            progress(row)
        return MetricRecord({"test-accuracy": accuracy})

    runner = strategy
    if cfg.dp_clip > 0:  # Flower's central DP wrapper; the devices clip (client_app.clipping_when_asked)
        runner = DifferentialPrivacyClientSideFixedClipping(strategy, cfg.dp_noise, cfg.dp_clip,
                                                            cfg.clients_per_round)
    result = runner.start(grid, to_arrays(build(model_cfg)), num_rounds=cfg.rounds, timeout=cfg.round_timeout,
                          evaluate_fn=evaluate)
    ckpt = checkpoint(cfg, data.classes, load_arrays(eval_model, result.arrays), history)
    if out:
        torch.save(ckpt, out / "fleet.pt")
    return {"config": asdict(cfg), "rounds": history, "checkpoint": ckpt}


# Deployment: `flwr run` starts this with the run config of the app's pyproject (fleet/deploy.py).
app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    run_fleet(grid, FleetConfig.from_run_config(dict(context.run_config)))
