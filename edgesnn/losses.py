"""Training losses shared by the training loop and the packs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

TEMPERATURE = 2.0  # softens both outputs, so the teacher's ranking of the wrong classes counts too


def distill(student: torch.Tensor, teacher: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Hinton's soft-target loss: tau^2 KL(softmax(teacher / tau) || softmax(student / tau))."""
    return temperature**2 * F.kl_div(F.log_softmax(student / temperature, dim=1),
                                     F.log_softmax(teacher.detach() / temperature, dim=1),
                                     log_target=True, reduction="batchmean")
