"""The model a fleet trains, as Flower moves it: the floating-point tensors of its state dict.

BatchNorm's integer step counters stay on each side: averaging a counter means nothing.
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, ConfigRecord

from edgesnn.registry import create_model


def build(cfg: ConfigRecord | dict) -> torch.nn.Module:
    return create_model(str(cfg["pack"]), n_classes=int(cfg["n-classes"]), window=int(cfg["window"]),
                        timesteps=int(cfg["timesteps"]), bits=int(cfg["bits"]))


def to_arrays(model: torch.nn.Module) -> ArrayRecord:
    return ArrayRecord({k: v.detach() for k, v in model.state_dict().items() if v.is_floating_point()})


def load_arrays(model: torch.nn.Module, arrays: ArrayRecord) -> torch.nn.Module:
    model.load_state_dict(arrays.to_torch_state_dict(), strict=False)
    return model
