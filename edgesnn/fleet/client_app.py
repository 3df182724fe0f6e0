"""The Flower ClientApp a device runs: answer queries about the global model, train locally.

Messages from the server carry the global model (ArrayRecord "arrays") and a ConfigRecord
"config" (model shape, local training settings). Replies never carry raw vibration or labels:
  query "state"  firing-rate state of the global model on local data (activity.py), num-examples
  query "loss"   mean loss of the global model on local data (power-of-choice), num-examples
  train          the locally trained model, its train loss and its firing-rate state after training

  query "name"   the device's name, once, so that the server orders devices the same way in
                 every run: a simulated device's partition, a real device's key name

Where the local data comes from is the node's business (its node config):
  data=<folder>                       the device's own CWRU-format recordings (all of them), or
  partition-id, num-partitions        a share of the training region, as the simulation assigns it
                                      (scenario, alpha and seed then come with the message).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from edgesnn.dataset import load_task
from edgesnn.fleet.activity import firing_state
from edgesnn.fleet.model import build, load_arrays, to_arrays
from edgesnn.fleet.partition import partition, training_windows
from edgesnn.training import TrainConfig, _add_batch_noise



def clipping_when_asked(msg: Message, context: Context, call_next) -> Message:
    """Flower's fixedclipping_mod (differential privacy: the update's norm is clipped on the
    device) on the training rounds of a server that sends a clipping norm; a no-op otherwise."""
    config = msg.content.config_records.get("config", {})
    if msg.metadata.message_type == MessageType.TRAIN and KEY_CLIPPING_NORM in config:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


app = ClientApp(mods=[clipping_when_asked])


@dataclass
class LocalData:
    x: np.ndarray  # [N, L] training-region windows
    y: np.ndarray  # [N] class index, never leaves the device
    stat_idx: np.ndarray  # fixed subset the firing-rate statistics are computed on


@lru_cache(maxsize=4)
def _fleet_windows(data: str, window: int, hop: int):
    return training_windows(load_task(Path(data), "cwru10", window, all_classes=False), hop)


@lru_cache(maxsize=64)
def _local_data(data: str, window: int, hop: int, partition_id: int, num_partitions: int,
                scenario: str, alpha: float, seed: int, stat_windows: int) -> LocalData:
    x, y, _, load = _fleet_windows(data, window, hop)
    if num_partitions > 1:
        idx = partition(y, load, num_partitions, scenario, alpha, seed)[partition_id]
        x, y = x[idx], y[idx]
    rng = np.random.default_rng([seed, partition_id])
    stat_idx = np.sort(rng.choice(len(x), size=min(stat_windows, len(x)), replace=False))
    return LocalData(x, y, stat_idx)


def _node_data(context: Context, cfg: ConfigRecord) -> LocalData:
    node = context.node_config
    if "data" in node:  # a device with its own recordings
        source, pid, parts = str(node["data"]), 0, 1
    else:  # a simulated device: its share of the fleet's training region
        source, pid, parts = str(cfg["sim-data"]), int(node["partition-id"]), int(node["num-partitions"])
    return _local_data(source, int(cfg["window"]), int(cfg["hop"]), pid, parts, str(cfg["scenario"]),
                       float(cfg["alpha"]), int(cfg["seed"]), int(cfg["stat-windows"]))


def _global_model(msg: Message) -> tuple[torch.nn.Module, ConfigRecord]:
    cfg = msg.content["config"]
    torch.set_num_threads(int(cfg.get("threads", 1)))
    return load_arrays(build(cfg), msg.content["arrays"]), cfg


def _activity_record(state: dict[str, np.ndarray]) -> ConfigRecord:
    return ConfigRecord({k: [float(v) for v in a] for k, a in state.items()})


def _device_name(context: Context) -> str:
    node = context.node_config
    if "partition-id" in node:
        return f"partition-{int(node['partition-id']):05d}"
    return str(node.get("name", f"node-{context.node_id}"))


@app.query()
def query(msg: Message, context: Context) -> Message:
    if msg.content["config"]["want"] == "name":  # nothing to load, nothing to compute
        return Message(RecordDict({"device": ConfigRecord({"name": _device_name(context)})}), reply_to=msg)
    local = _node_data(context, msg.content["config"])
    start = time.process_time()  # the statistics' compute, not the loading of the recordings
    model, cfg = _global_model(msg)
    x = local.x[local.stat_idx]
    content = RecordDict()
    metrics = {"num-examples": len(local.x)}
    if cfg["want"] == "loss":
        model.eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(x)[:, None, :])
            metrics["loss"] = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(local.y[local.stat_idx])))
    else:
        content["activity"] = _activity_record(firing_state(model, x))
    metrics["cpu-seconds"] = time.process_time() - start
    metrics["windows-forwarded"] = len(x)
    content["metrics"] = MetricRecord(metrics)
    return Message(content=content, reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    local = _node_data(context, msg.content["config"])
    start = time.process_time()
    model, cfg = _global_model(msg)
    # Each device its own batches and noise: the simulation's partition id, a device's node id.
    device = int(context.node_config.get("partition-id", context.node_id % 1_000_003))
    seed = int(cfg["seed"]) * 100_003 + int(cfg["server-round"]) * 101 + device
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    noise = TrainConfig(snr_range_db=(-14.0, 6.0), noise_fraction=float(cfg["noise-fraction"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    model.train()
    losses = []
    for _ in range(int(cfg["local-steps"])):
        pick = rng.integers(0, len(local.x), size=int(cfg["batch-size"]))
        xb = _add_batch_noise(torch.from_numpy(local.x[pick])[:, None, :], noise, gen)
        loss = loss_fn(model(xb), torch.from_numpy(local.y[pick]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    after = firing_state(model, local.x[local.stat_idx])
    content = RecordDict({
        "arrays": to_arrays(model),
        "metrics": MetricRecord({"num-examples": len(local.x), "train-loss": float(np.mean(losses)),
                                 "cpu-seconds": time.process_time() - start}),
        "activity": _activity_record(after),
    })
    return Message(content=content, reply_to=msg)
