"""Temporal reversal regularization (TRT, arXiv 2408.09108) on the MRA-SNN backbone.

In training the encoder's spike trains also run through the blocks reversed in time. The loss
asks both orders for the right class, asks them to agree (a symmetric KL between the two
softmax outputs), and feeds the element-wise product of the two firing-rate vectors to a small
head that only training uses (the "star" feature hybrid). The network learns features that do
not hinge on one order of spikes, a regularizer against noise. The deployed network is the plain
MRA-SNN: inference cost is unchanged.

Reversal needs at least two timesteps (at T = 1 a spike train reversed is itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesnn.models.mra_snn import MRASNN, deployable
from edgesnn.registry import real_number

CONSISTENCY = 1.0  # weight of the agreement term; the classification terms weigh 1 each


def symmetric_kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    la, lb = F.log_softmax(a, dim=1), F.log_softmax(b, dim=1)
    return 0.5 * (F.kl_div(lb, la, log_target=True, reduction="batchmean")
                  + F.kl_div(la, lb, log_target=True, reduction="batchmean"))


class TRTMRASNN(MRASNN):
    def __init__(self, consistency: float = CONSISTENCY, **kwargs):
        super().__init__(**kwargs)
        if self.timesteps < 2:
            raise ValueError("temporal reversal needs at least 2 timesteps (give --timesteps 2 or more)")
        self.consistency = real_number("consistency", consistency, 0.0)
        self.hybrid_head = nn.Linear(self.classifier.in_features, self.classifier.out_features)  # training only

    def training_loss(self, x, y, criterion, progress):
        s = self.encode(x)
        t = self.timesteps
        trains = s.reshape(t, -1, *s.shape[1:])  # [T, N, C, L]
        both = torch.cat([trains, trains.flip(0)], dim=1)  # original and reversed, one pass
        rate, rate_reversed = self.rate(self.blocks(both.reshape(-1, *s.shape[1:]))).chunk(2)
        logits, logits_reversed = self.classifier(rate), self.classifier(rate_reversed)
        loss = (criterion(logits, y) + criterion(logits_reversed, y)
                + self.consistency * symmetric_kl(logits, logits_reversed)
                + criterion(self.hybrid_head(rate * rate_reversed), y))
        return loss, logits

    def deployed(self) -> MRASNN:
        return deployable(self)


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 2, bits: int = 2,
          consistency: float = CONSISTENCY, **kwargs) -> TRTMRASNN:
    return TRTMRASNN(n_classes=n_classes, window=window, timesteps=timesteps, bits=bits,
                     consistency=consistency, **kwargs)
