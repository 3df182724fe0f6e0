"""Building blocks shared by the model packs."""

from __future__ import annotations

import torch
from torch import nn

from edgesnn import neurons


class Standardize(nn.Module):
    """Per-window zero mean and unit RMS, inside the graph (CONTRACTS 2: raw samples in g go in).

    Makes the network blind to sensor gain and mounting, so it has to learn the shape of the
    vibration (impacts, their rate and ringing), not its level.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=-1, keepdim=True)
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + 1e-8)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation over channels: x * sigmoid(W2 relu(W1 mean_L(x)))."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=-1))[:, :, None]


class SpikingNeurons(nn.Module):
    """Multi-bit LIF neurons over T timesteps, optionally with the dendritic attention filter.

    Takes and returns [T*N, C, L] (time folded into the batch so convolutions run once for all
    timesteps); the time loop inside unrolls into the exported graph.
    """

    def __init__(self, channels: int, bits: int, timesteps: int, dendritic: bool = True,
                 params: neurons.LIFParams = neurons.LIFParams()):
        super().__init__()
        self.bits, self.timesteps, self.params = bits, timesteps, params
        self.dendritic = dendritic
        if dendritic:
            self.gate_w = nn.Parameter(torch.zeros(channels))
            self.gate_b = nn.Parameter(torch.full((channels,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        currents = x.reshape(self.timesteps, -1, *x.shape[1:])
        if self.dendritic:
            step, extra = neurons.dendritic_step, (self.bits, neurons.DendriteParams(self.gate_w, self.gate_b))
        else:
            step, extra = neurons.multibit_step, (self.bits,)
        s = neurons.run_over_time(step, currents, *extra, p=self.params, surrogate=self.training)
        return s.reshape(x.shape)
