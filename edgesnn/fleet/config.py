"""A fleet run's settings: what the command line, the ServerApp and the ClientApp's
configuration read alike. numpy only, so that a bad setting is refused before torch and Flower
are imported."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from edgesnn.fleet import AGGREGATION, EXPLORE, LR_END

SCENARIOS = ("dirichlet", "load")  # how a simulated fleet is cut (partition.py)


@dataclass
class FleetConfig:
    # the fleet (simulation: how the training region is cut)
    data: str = "../shared/datasets/cwru"
    clients: int = 20
    scenario: str = "dirichlet"
    alpha: float = 0.1
    hop: int = 512  # training windows every `hop` samples of the training region
    # the rounds
    rounds: int = 30
    selection: str = "sfedca"
    clients_per_round: int = 4
    candidates: int = 8
    credit_weight: float = 1.0
    target: str = "fleet"
    explore: int = EXPLORE  # sfedca: places per round filled at random
    aggregation: str = AGGREGATION  # how accepted updates are weighted (aggregation.AGGREGATIONS)
    stat_windows: int = 64  # windows a client runs the global model on for its statistics
    round_timeout: float = 600.0  # seconds a round waits for devices; late ones count as no-reply
    # local training
    local_steps: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    lr_end: float = LR_END  # the devices' learning rate at the last round, as a share of lr (cosine between)
    noise_fraction: float = 0.5
    # the model (the default's shape)
    pack: str = "mra_snn"
    timesteps: int = 1
    bits: int = 2
    window: int = 2048
    seed: int = 0
    threads: int = 1
    dp_clip: float = 0.0  # > 0: differential privacy, updates clipped to this L2 norm on the devices
    dp_noise: float = 0.0  # Gaussian noise multiplier on the aggregate (with dp_clip)
    out: str = ""  # folder for history.json (every round) and fleet.pt (the end); empty: keep in memory
    export_dir: str = ""  # export each round's global model here (integer ONNX + card) for monitors
    name: str = "mra-snn-fleet-int8"

    @classmethod
    def from_run_config(cls, run_config: dict) -> "FleetConfig":
        """Flower run config keys use dashes (`local-steps`); unknown keys are ignored; values
        take the type of the field's default (TOML writes 1.0 and 1 alike)."""
        defaults = cls()
        values = {k.replace("-", "_"): v for k, v in run_config.items()}
        return cls(**{f.name: type(getattr(defaults, f.name))(values[f.name])
                      for f in fields(cls) if f.name in values})

    def model_config(self, n_classes: int) -> dict:
        """The model's shape, as fleet.model.build reads it on either side."""
        return {"pack": self.pack, "n-classes": n_classes, "window": self.window, "timesteps": self.timesteps,
                "bits": self.bits}

    def lr_at(self, server_round: int) -> float:
        """The devices' learning rate in a round: lr, falling on a half cosine to lr * lr_end at
        the last round (constant with lr_end 1)."""
        progress = (server_round - 1) / max(self.rounds - 1, 1)
        return float(self.lr * (self.lr_end + (1 - self.lr_end) * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))))

    def client_config(self, n_classes: int) -> dict:
        return {**self.model_config(n_classes), "hop": self.hop, "scenario": self.scenario, "alpha": self.alpha,
                "seed": self.seed, "stat-windows": self.stat_windows, "local-steps": self.local_steps,
                "batch-size": self.batch_size, "lr": self.lr, "noise-fraction": self.noise_fraction,
                "threads": self.threads, "sim-data": str(Path(self.data).resolve())}
