"""WDCNN (Zhang et al., Sensors 2017): the classic non-spiking baseline.

A wide first convolution (16 filters, kernel 64, stride 16) suppresses high-frequency noise and
sees several impacts at once; four small convolutions follow. Input is the raw window,
standardized inside the graph like every edgesnn model.
"""

from __future__ import annotations

import torch
from torch import nn

from edgesnn.layers import Standardize


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, k, stride, pad), nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(2))


class WDCNN(nn.Module):
    def __init__(self, n_classes: int = 10, window: int = 2048):
        super().__init__()
        self.timesteps, self.spike_bits, self.window = 1, 0, window  # not spiking
        self.standardize = Standardize()
        self.features = nn.Sequential(
            _conv(1, 16, 64, 16, 24), _conv(16, 32, 3), _conv(32, 64, 3), _conv(64, 64, 3), _conv(64, 64, 3, pad=0),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, 1, window)).numel()
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, 100), nn.BatchNorm1d(100), nn.ReLU(),
                                        nn.Linear(100, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.standardize(x)))


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 1, bits: int = 0) -> WDCNN:
    return WDCNN(n_classes=n_classes, window=window)
