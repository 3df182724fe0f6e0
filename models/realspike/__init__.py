"""Real Spike (arXiv 2210.06686) on the MRA-SNN backbone: real-valued spikes in training, binary
spikes on the device.

In training every spiking layer's output reaches the next layer's synapses as a * s, a binary
spike s times a learnable amplitude a per channel, which gives the network real-valued spikes
to fit with. The amplitude sits between the spikes and a linear map (the next block's
convolution, or the classifier), so at export it folds into that map's weights,
W'[:, c] = W[:, c] * a[c], and the deployed network is a plain binary-spike MRA-SNN (spike_bits 1)
that quantizes and runs on firmware_sim like the default. The shortcut carries the binary spike
itself, and max pooling happens before the amplitude, so the folding is exact: the folded network
computes the same currents and spikes (tests/test_packs.py checks it in float64).
"""

from __future__ import annotations

import torch
from torch import nn

from edgesnn.models.mra_snn import MRASNN, deployable


class RealSpikeMRASNN(MRASNN):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        channels = self.classifier.in_features
        # amplitudes[k]: of the spikes feeding block k; the last one: of the classifier's input
        self.amplitudes = nn.ParameterList(nn.Parameter(torch.ones(channels)) for _ in range(len(self.blocks) + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.encode(x)
        for block, a in zip(self.blocks, self.amplitudes):
            current = block.attention(block.bn(block.conv(s * a[:, None]))) + block.shortcut(s)
            s = block.pool(block.neurons(current))
        return self.classifier(self.rate(s) * self.amplitudes[-1])

    def deployed(self) -> MRASNN:
        """The binary-spike MRA-SNN with every amplitude folded into the weights after it."""
        state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        for k, a in enumerate(self.amplitudes[:-1]):
            state[f"blocks.{k}.conv.weight"] *= a.detach()[None, :, None]
        state["classifier.weight"] *= self.amplitudes[-1].detach()[None, :]
        return deployable(self, state)

    def card_fields(self) -> dict:
        return {"real_spike": "amplitudes folded into the next layer's weights at export; the deployed "
                              "network emits binary spikes"}


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 1, bits: int = 1, **kwargs) -> RealSpikeMRASNN:
    if bits != 1:
        raise ValueError(f"realspike deploys binary spikes: bits must be 1, not {bits}")
    return RealSpikeMRASNN(n_classes=n_classes, window=window, timesteps=timesteps, bits=1, **kwargs)
