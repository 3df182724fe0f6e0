"""The fleet's Flower strategy: a pluggable client selection and a weighted average of the updates.

Each round:
  1. query    (sfedca: every client; power_of_choice: d random candidates; random: nobody)
              the clients run the global model forward on their data and send a few numbers;
  2. select   at most `clients_per_round` clients (selection.py);
  3. train    only those clients train and upload a model, whatever the rule: equal budget;
  4. screen   updates that miss or add tensors, change a shape, hold NaN/Inf or whose distance
              to the global model is a norm outlier (norm_outliers) are rejected and counted;
  5. average  the accepted updates, weighted by their number of windows (FedAvg) or class-balanced
              (aggregation.py), whatever the selection rule; equally under differential privacy.
Bytes moved (model payloads and statistics) and the clients' compute for statistics are counted
per round in `self.rounds`.

Devices are handled in the order of their names, never in the order their replies arrive, and
Flower's node ids (random 64-bit numbers, new in every run) are never the order either: the first
time the server sees a node it asks for its name (a simulated device's partition, a real device's
configured name). So a run with the same seed makes the same choices and, FedAvg's sums taken in
the same order, the same models.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from edgesnn.fleet.aggregation import weights as aggregation_weights
from edgesnn.fleet.selection import (ClientView, SelectionSettings, power_of_choice, random_selection,
                                     sfedca_selection)


def reported_state(record: ConfigRecord, template: dict[str, int] | None = None,
                   max_rate: float = np.inf) -> dict[str, np.ndarray]:
    """A device's firing-rate state, checked like any other input: ValueError unless it has the
    layers and lengths of `template` ({key: length}, from the global model itself), finite
    rates within 0..max_rate, and an output that is a distribution."""
    try:
        state = {k: np.asarray(v, dtype=np.float64) for k, v in record.items()}
    except (TypeError, ValueError):
        raise ValueError("firing-rate state is not numbers") from None
    out = state.get("output")
    if out is None or any(v.ndim != 1 or not v.size for v in state.values()):
        raise ValueError("malformed firing-rate state")
    if template is not None and {k: len(v) for k, v in state.items()} != template:
        raise ValueError("firing-rate state does not match the model's layers")
    if any(not np.all(np.isfinite(v)) or np.any(v < 0) for v in state.values()):
        raise ValueError("firing-rate state holds negative or non-finite values")
    if any(np.any(v > max_rate) for k, v in state.items() if k != "output"):
        raise ValueError("firing rate above the most a neuron can fire")
    if abs(out.sum() - 1.0) > 1e-3:
        raise ValueError("output state is not a distribution")
    return state


def _bytes(content: RecordDict) -> int:
    """Payload bytes of a message (Flower's own count: tensor data, numbers, keys)."""
    return sum(record.count_bytes() for record in content.values())


MAX_EXAMPLES = 10_000_000  # a device claiming more windows than this is not believed


def screen_update(reference: ArrayRecord, content: RecordDict) -> tuple[str | None, float, int]:
    """(reason to reject or None, distance of the update to the global model `reference`,
    its number of windows). Anything a device sends is checked: exactly the tensors of the
    global model with their shapes and dtypes, all finite, and one MetricRecord with a
    plausible `num-examples`. Whether the distance is an outlier is norm_outliers' call."""
    if list(content.array_records) != ["arrays"] or list(content.metric_records) != ["metrics"]:
        return "records", 0.0, 0
    arrays, n = content["arrays"], content["metrics"].get("num-examples")
    if set(arrays.keys()) != set(reference.keys()):
        return "tensors", 0.0, 0
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_EXAMPLES:
        return "num-examples", 0.0, 0
    sq = 0.0
    for key, array in arrays.items():
        try:
            new = array.numpy()
        except Exception:  # bytes that are not a numpy array
            return "undecodable", 0.0, 0
        old = reference[key].numpy()
        if new.shape != old.shape:
            return "shape", 0.0, 0
        if new.dtype != old.dtype:
            return "dtype", 0.0, 0
        if not np.all(np.isfinite(new)):
            return "non-finite", 0.0, 0
        sq += float(np.sum((new.astype(np.float64) - old) ** 2))
    return None, float(np.sqrt(sq)), n


def norm_outliers(norms: list[float], accepted_norms: list[float], norm_factor: float) -> list[bool]:
    """Which of this round's update distances are outliers: over norm_factor x a typical
    distance. Typical is the larger of two medians: of the last 50 accepted distances (once 4
    have been accepted) and of this round's own distances (when at least 3 arrived).
    The history alone would lock the fleet out: once the global model has moved far (a round
    of skewed devices), every honest device's update is long, and the history, made of short
    ones, would refuse them all, for ever. This round's median follows the model, and one
    device among 3 or more cannot move it (a majority of honest devices per round assumed)."""
    history = accepted_norms[-50:]
    medians = ([float(np.median(history))] if len(history) >= 4 else []) + \
              ([float(np.median(norms))] if len(norms) >= 3 else [])
    if not medians:  # too little seen to call anything typical
        return [False] * len(norms)
    return [bool(norm > norm_factor * max(medians)) for norm in norms]


def _arrived(replies: Iterable[Message], expected: int, log: "RoundLog", kind: str, byte_key: str):
    """(device, content) of the replies that came back without error; the missing and the
    failed are counted as `<kind>-no-reply` / `<kind>-error`, the bytes under `byte_key`."""
    replies = list(replies)
    if len(replies) < expected:
        log.rejected[f"{kind}-no-reply"] += expected - len(replies)
    for reply in replies:
        if reply.has_error():
            log.rejected[f"{kind}-error"] += 1
            log.first_error = log.first_error or " ".join(str(reply.error.reason).split())[-300:]
            continue
        log.bytes[byte_key] += _bytes(reply.content)
        yield reply.metadata.src_node_id, reply.content


@dataclass
class RoundLog:
    round: int
    selected: list[int] = field(default_factory=list)
    queried: int = 0
    bytes: Counter = field(default_factory=Counter)  # model_down, model_up, stats_down, stats_up
    stats_cpu_seconds: float = 0.0
    stats_windows: int = 0
    rejected: Counter = field(default_factory=Counter)
    accepted: int = 0
    update_norms: list[float] = field(default_factory=list)  # L2 distance of each accepted update
    train_loss: float = float("nan")
    first_error: str = ""  # the first error a device reported this round, for the operator
    # how the round's average weighed its updates: the campaign's aggregation, "windows" when an
    # accepted update lacked the class mix balanced weights need, "equal" under differential privacy
    weighting: str = ""


class FleetStrategy(FedAvg):
    def __init__(self, settings: SelectionSettings, client_config: dict, min_available_nodes: int = 2,
                 timeout: float = 600.0, state_template: dict[str, int] | None = None,
                 max_rate: float = np.inf, uniform_weights: bool = False,
                 lr_at: Callable[[int], float] | None = None):
        """`state_template` ({key: length}) and `max_rate` describe the firing-rate states the
        global model produces; reported states that differ are refused. `uniform_weights`:
        average updates with equal weights (differential privacy) instead of by window count.
        `lr_at(round)`: the devices' learning rate in that round (default: client_config's)."""
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=1,
                         min_available_nodes=min_available_nodes)
        self.settings, self.client_config, self.timeout = settings, client_config, timeout
        self.state_template, self.max_rate, self.uniform_weights = state_template, max_rate, uniform_weights
        self.lr_at = lr_at
        self.rng = np.random.default_rng(settings.seed)
        self.after: dict[int, dict[str, np.ndarray]] = {}
        self.names: dict[int, str] = {}  # node id -> the device's name (see the module's docstring)
        self.accepted_norms: list[float] = []
        self.rounds: list[RoundLog] = []
        self._global: ArrayRecord | None = None

    def summary(self) -> None:  # FedAvg's summary talks about fractions we do not use
        pass

    # --- 1-3: query, select, configure training -------------------------------------------
    def _query(self, grid: Grid, nodes: list[int], arrays: ArrayRecord, cfg: ConfigRecord,
               want: str, log: RoundLog) -> dict[int, RecordDict]:
        query_cfg = ConfigRecord({**cfg, "want": want})
        messages = [Message(RecordDict({"arrays": arrays, "config": query_cfg}), dst_node_id=n,
                            message_type=MessageType.QUERY) for n in nodes]
        log.queried = len(nodes)
        log.bytes["stats_down"] += len(nodes) * (arrays.count_bytes() + query_cfg.count_bytes())
        answers = {}
        for node, content in _arrived(grid.send_and_receive(messages, timeout=self.timeout), len(nodes),
                                      log, "query", "stats_up"):
            try:
                metrics = content["metrics"]
                answer = {"n": int(metrics["num-examples"])}
                if want == "loss":
                    answer["loss"] = float(metrics["loss"])
                    if not np.isfinite(answer["loss"]):
                        raise ValueError("non-finite loss")
                else:
                    answer["state"] = reported_state(content["activity"], self.state_template, self.max_rate)
                log.stats_cpu_seconds += float(metrics["cpu-seconds"])
                log.stats_windows += int(metrics["windows-forwarded"])
            except (KeyError, TypeError, ValueError, OverflowError):
                log.rejected["bad-statistics"] += 1
                continue
            answers[node] = answer
        return {node: answers[node] for node in self._ordered(answers)}  # ties go the same way every run

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        s = self.settings
        log = RoundLog(server_round)
        self.rounds.append(log)
        self._global = arrays
        nodes = self._identify(grid, self._wait_for_nodes(grid), log)
        cfg = ConfigRecord({**self.client_config, **config, "server-round": server_round,
                            **({"lr": float(self.lr_at(server_round))} if self.lr_at else {})})
        chosen: list[int] = []
        if s.rule == "power_of_choice":
            candidates = random_selection(nodes, max(s.candidates, s.clients_per_round), self.rng)
            answers = self._query(grid, candidates, arrays, cfg, "loss", log)
            chosen = power_of_choice({k: a["loss"] for k, a in answers.items()}, s.clients_per_round)
        elif s.rule == "sfedca":
            answers = self._query(grid, nodes, arrays, cfg, "state", log)
            views = {k: ClientView(a["n"], a["state"], self.after.get(k)) for k, a in answers.items()}
            if views:
                chosen = sfedca_selection(views, s.clients_per_round, s.credit_weight, s.target, s.explore, self.rng,
                                          s.aggregation)
        if not chosen:  # random selection, or no usable statistics this round
            chosen = random_selection(nodes, s.clients_per_round, self.rng)
        log.selected = chosen
        log.bytes["model_down"] += len(chosen) * (arrays.count_bytes() + cfg.count_bytes())
        return [Message(RecordDict({"arrays": arrays, "config": cfg}), dst_node_id=n,
                        message_type=MessageType.TRAIN) for n in chosen]

    def _identify(self, grid: Grid, nodes: list[int], log: RoundLog) -> list[int]:
        """`nodes` in the order of their devices' names, asking the nodes not yet named (a
        small message each, once per node; its bytes count as statistics). A node that does
        not answer goes last, by node id, and is asked again next round."""
        new = [n for n in nodes if n not in self.names]
        if new:
            cfg = ConfigRecord({"want": "name"})
            messages = [Message(RecordDict({"config": cfg}), dst_node_id=n, message_type=MessageType.QUERY)
                        for n in new]
            log.bytes["stats_down"] += len(new) * cfg.count_bytes()
            for node, content in _arrived(grid.send_and_receive(messages, timeout=self.timeout), len(new),
                                          log, "name", "stats_up"):
                name = content.config_records.get("device", {}).get("name")
                if isinstance(name, str) and 0 < len(name) <= 200:
                    self.names[node] = name
                else:
                    log.rejected["bad-name"] += 1
        return self._ordered(nodes)

    def _ordered(self, nodes: Iterable[int]) -> list[int]:
        return sorted(nodes, key=lambda n: (n not in self.names, self.names.get(n, ""), n))

    def _wait_for_nodes(self, grid: Grid) -> list[int]:
        """The connected devices, once `min_available_nodes` are (at most one round timeout;
        then the round goes on with those there are, if any)."""
        deadline = time.monotonic() + self.timeout
        while len(nodes := sorted(grid.get_node_ids())) < self.min_available_nodes:
            if time.monotonic() > deadline and nodes:
                break
            time.sleep(1)
        return nodes

    # --- 4-5: screen and average ----------------------------------------------------------
    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        log = self.rounds[-1]
        screened = []  # (node, content, norm, windows) of the well-formed updates
        arrived = dict(_arrived(replies, len(log.selected), log, "train", "model_up"))
        for node in self._ordered(arrived):  # summed in the same order every run
            content = arrived[node]
            reason, norm, n = screen_update(self._global, content)
            if reason:
                log.rejected[reason] += 1
            else:
                screened.append((node, content, norm, n))
        outliers = norm_outliers([norm for _, _, norm, _ in screened], self.accepted_norms, self.settings.norm_factor)
        updates, losses, windows, mixes = [], [], [], []
        for (node, content, norm, n), outlier in zip(screened, outliers):
            if outlier:
                log.rejected["norm-outlier"] += 1
                continue
            self.accepted_norms.append(norm)
            log.update_norms.append(norm)
            updates.append(content["arrays"])
            windows.append(n)
            loss = content["metrics"].get("train-loss")
            losses.append(float(loss) if isinstance(loss, (int, float)) else np.nan)
            mixes.append(None)
            if "activity" in content.config_records:
                try:
                    self.after[node] = reported_state(content["activity"], self.state_template, self.max_rate)
                    mixes[-1] = self.after[node]["output"]
                except ValueError:
                    log.rejected["bad-statistics"] += 1  # the update still counts; its credit does not
        log.accepted = len(updates)
        if not updates:
            return None, None
        # Under differential privacy every update weighs the same (the noise assumes it). Balanced
        # weights need every accepted update's class mix; a round missing one keeps window counts.
        if self.uniform_weights:
            log.weighting, weights = "equal", [1] * len(updates)
        else:
            log.weighting = self.settings.aggregation if all(m is not None for m in mixes) else "windows"
            weights = aggregation_weights(log.weighting, windows, mixes)
        # Averaged is only what was screened: the tensors and the weight, rebuilt.
        accepted = [RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": weight})})
                    for arrays, weight in zip(updates, weights)]
        log.train_loss = float(np.nanmean(losses)) if np.isfinite(losses).any() else float("nan")
        arrays = aggregate_arrayrecords(accepted, "num-examples")
        return arrays, MetricRecord({"train-loss": log.train_loss, "accepted": len(accepted),
                                     "rejected": sum(log.rejected.values())})
