"""Local tandem learning (LTL, arXiv 2210.04532) on the MRA-SNN backbone.

Three phases over training:
1. teacher (the first `teacher_share`): a non-spiking network with the student's exact layout
   (every spiking layer replaced by its rate stand-in, a ReLU clamped to the spike range:
   edgesnn.layers.RateNeurons) learns the task;
2. local tandem learning (up to `local_until`): each spiking layer learns locally to reproduce
   the teacher's feature map from its own spiking input. The loss of layer k is the squared
   error between its firing-rate map and the teacher's layer k output; no gradient crosses
   layers (inputs are detached). The classifier starts from the teacher's and learns the labels
   from the last layer. Targets that already mean something make this converge in few epochs;
3. fine-tuning end to end with the labels and the teacher's soft output. Measured here: with
   local learning alone, validation accuracy reached 0.989 two epochs into phase 2 and then
   swung between 0.92 and 0.99 to the end, even as the learning rate went to zero: matching
   continuous teacher values leaves many membrane potentials right at a threshold, where any
   drift (of batch-norm statistics, say) flips spikes; end-to-end labels give decisions margin.
The teacher is training-only; the deployed network is the plain MRA-SNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgesnn.layers import RateNeurons, SpikingNeurons
from edgesnn.models.mra_snn import MRASNN, deployable
from edgesnn.losses import distill
from edgesnn.registry import real_number

TEACHER_SHARE = 0.25
LOCAL_UNTIL = 0.6


def rate_teacher(student: MRASNN) -> MRASNN:
    """The matching ANN: the student's layout at one timestep, neurons -> clamped ReLUs."""
    teacher = MRASNN(**{**student.config, "timesteps": 1})
    for name, module in list(teacher.named_modules()):
        if isinstance(module, SpikingNeurons):
            parent_name, _, attr = name.rpartition(".")
            setattr(teacher.get_submodule(parent_name) if parent_name else teacher, attr, RateNeurons(student.spike_bits))
    return teacher


class LTLMRASNN(MRASNN):
    def __init__(self, teacher_share: float = TEACHER_SHARE, local_until: float = LOCAL_UNTIL, **kwargs):
        super().__init__(**kwargs)
        real_number("teacher_share", teacher_share, 0.0, 1.0, low_open=True)
        real_number("local_until", local_until, 0.0, 1.0, low_open=True)
        if not 0 < teacher_share < local_until <= 1:
            raise ValueError(f"need 0 < teacher_share < local_until <= 1, got {teacher_share} and {local_until}")
        self.teacher_share, self.local_until = teacher_share, local_until
        self.teacher = rate_teacher(self)  # training only
        self._student_started = False

    def _maps(self, s: torch.Tensor) -> torch.Tensor:
        """Spikes [T*N, C, L] -> firing-rate map [N, C, L] (mean over time)."""
        return s.reshape(self.timesteps, -1, *s.shape[1:]).mean(dim=0)

    def training_loss(self, x, y, criterion, progress):
        if progress < self.teacher_share:
            return criterion(self.teacher(x), y), None
        self.teacher.eval()
        if not self._student_started:  # the teacher's classifier reads what the student will learn to emit
            self.classifier.load_state_dict(self.teacher.classifier.state_dict())
            self._student_started = True
        if progress >= self.local_until:
            logits = self(x)
            with torch.no_grad():
                teacher = self.teacher(x)
            return criterion(logits, y) + distill(logits, teacher), logits
        with torch.no_grad():
            targets = [self.teacher.encode(x)]
            for block in self.teacher.blocks:
                targets.append(block(targets[-1]))
        s = self.encode(x)
        loss = F.mse_loss(self._maps(s), targets[0])
        for block, target in zip(self.blocks, targets[1:]):
            s = block(s.detach())  # local: no gradient reaches the layers below
            loss = loss + F.mse_loss(self._maps(s), target)
        logits = self.classifier(self.rate(s.detach()))
        return loss + criterion(logits, y), logits

    def deployed(self) -> MRASNN:
        return deployable(self)

    def card_fields(self) -> dict:
        return {"local_tandem_learning": {"teacher": "matching ANN (clamped-ReLU rate neurons)",
                                          "teacher_until": self.teacher_share, "local_until": self.local_until}}


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 1, bits: int = 2,
          teacher_share: float = TEACHER_SHARE, local_until: float = LOCAL_UNTIL, **kwargs) -> LTLMRASNN:
    return LTLMRASNN(n_classes=n_classes, window=window, timesteps=timesteps, bits=bits,
                     teacher_share=teacher_share, local_until=local_until, **kwargs)
