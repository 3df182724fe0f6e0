"""Temporal-spatial self-distillation (TSSD, arXiv 2406.07862) on the MRA-SNN backbone.

Temporal: the same network run at more timesteps is its own teacher. Each training step also
runs it at `teacher_timesteps` (same weights); that run learns the labels too, and the deployed
timestep count learns from its softened output. Spatial: a weak classifier on the first block's
firing rate learns from the final output (softened, detached), which sends a guided signal
straight into the early layers. Teacher runs and the weak classifier exist only in training;
the deployed network is the plain MRA-SNN at its own timestep count: inference cost unchanged.
"""

from __future__ import annotations

from torch import nn

from edgesnn.layers import running_at
from edgesnn.losses import TEMPERATURE, distill
from edgesnn.models.mra_snn import MRASNN, deployable
from edgesnn.registry import whole_number


class TSSDMRASNN(MRASNN):
    def __init__(self, teacher_timesteps: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.teacher_timesteps = whole_number("teacher_timesteps", teacher_timesteps, 0) or 2 * self.timesteps
        if self.teacher_timesteps <= self.timesteps:
            raise ValueError(f"teacher_timesteps ({self.teacher_timesteps}) must exceed timesteps ({self.timesteps})")
        self.weak_head = nn.Linear(self.classifier.in_features, self.classifier.out_features)  # training only

    def training_loss(self, x, y, criterion, progress):
        s1 = self.blocks[0](self.encode(x))
        logits = self.classifier(self.rate(self.blocks[1:](s1)))
        weak = self.weak_head(self.rate(s1))
        with running_at(self, self.teacher_timesteps):
            teacher = MRASNN.forward(self, x)
        loss = (criterion(logits, y) + criterion(teacher, y) + distill(logits, teacher)
                + distill(weak, logits))
        return loss, logits

    def deployed(self) -> MRASNN:
        return deployable(self)

    def card_fields(self) -> dict:
        return {"self_distillation": {"teacher_timesteps": self.teacher_timesteps, "temperature": TEMPERATURE}}


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 1, bits: int = 2,
          teacher_timesteps: int = 0, **kwargs) -> TSSDMRASNN:
    """teacher_timesteps: 0 means twice the deployed timesteps."""
    return TSSDMRASNN(n_classes=n_classes, window=window, timesteps=timesteps, bits=bits,
                      teacher_timesteps=teacher_timesteps, **kwargs)
