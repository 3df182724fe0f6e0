"""Shrinking SNN (SSNN, arXiv 2401.01912) on the MRA-SNN backbone: fewer timesteps deeper in.

Early layers, where the signal is still raw, get many timesteps; each later stage runs at fewer
(`stage_timesteps`, one per block, non-increasing). Between stages a learned temporal
transformation maps T_in spike frames to T_out input frames (a T_out x T_in mixing matrix,
initialised to averaging consecutive frames). Every stage has its own early classifier on its
firing rate, all trained together, which keeps the shortened stages informative.

At inference `early_exit` stops at the first stage whose softmax confidence reaches a threshold;
the ONNX file always runs every stage and returns the final classifier's logits (CONTRACTS
section 2), so the early exit is a choice of the runtime and its saving is measured by
`edgesnn bench packs`.
"""

from __future__ import annotations

import torch
from torch import nn

from edgesnn.models.mra_snn import MRASNN

STAGE_TIMESTEPS = (4, 2, 1)


class TemporalTransform(nn.Module):
    """[T_in * N, C, L] -> [T_out * N, C, L] by a learned mix of the time frames."""

    def __init__(self, t_in: int, t_out: int):
        super().__init__()
        init = torch.zeros(t_out, t_in)
        for o in range(t_out):  # output frame o averages its share of consecutive input frames
            lo, hi = o * t_in // t_out, max((o + 1) * t_in // t_out, o * t_in // t_out + 1)
            init[o, lo:hi] = 1.0 / (hi - lo)
        self.mix = nn.Parameter(init)
        self.t_in = t_in

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        frames = s.reshape(self.t_in, -1)
        return (self.mix @ frames).reshape(-1, *s.shape[1:])


class ShrinkingMRASNN(MRASNN):
    def __init__(self, stage_timesteps=STAGE_TIMESTEPS, **kwargs):
        stage_timesteps = tuple(int(t) for t in stage_timesteps)
        super().__init__(**{**kwargs, "timesteps": stage_timesteps[0]})
        if len(stage_timesteps) != len(self.blocks):
            raise ValueError(f"stage_timesteps needs one count per block ({len(self.blocks)}), got {stage_timesteps}")
        if any(b > a for a, b in zip(stage_timesteps, stage_timesteps[1:])) or min(stage_timesteps) < 1:
            raise ValueError(f"stage_timesteps must be non-increasing and >= 1, got {stage_timesteps}")
        self.stage_timesteps = stage_timesteps
        for block, t in zip(self.blocks, stage_timesteps):
            block.neurons.timesteps = t
        inputs = (stage_timesteps[0],) + stage_timesteps[:-1]
        self.transforms = nn.ModuleList(TemporalTransform(a, b) if a != b else nn.Identity()
                                        for a, b in zip(inputs, stage_timesteps))
        self.exits = nn.ModuleList(nn.Linear(self.classifier.in_features, self.classifier.out_features)
                                   for _ in stage_timesteps[:-1])

    def _stage(self, k: int, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage k on the previous stage's spikes: (its spikes, its classifier's logits)."""
        s = self.blocks[k](self.transforms[k](s))
        t = self.stage_timesteps[k]
        rate = s.reshape(t, -1, *s.shape[1:]).mean(dim=(0, 3))
        head = self.exits[k] if k < len(self.exits) else self.classifier
        return s, head(rate)

    def stage_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        s, out = self.encode(x), []
        for k in range(len(self.blocks)):
            s, logits = self._stage(k, s)
            out.append(logits)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage_logits(x)[-1]

    def training_loss(self, x, y, criterion, progress):
        logits = self.stage_logits(x)
        return sum(criterion(z, y) for z in logits) / len(logits), logits[-1]

    @torch.no_grad()
    def early_exit(self, x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the exit stage (0-based) of each window: a window leaves at the first stage
        whose top softmax probability reaches `threshold`; only the rest run on."""
        s, active = self.encode(x), torch.arange(len(x))
        out = torch.empty(len(x), self.classifier.out_features)
        stage = torch.full((len(x),), len(self.blocks) - 1)
        for k in range(len(self.blocks)):
            s, logits = self._stage(k, s)
            done = (torch.softmax(logits, dim=1).max(dim=1).values >= threshold) | (k == len(self.blocks) - 1)
            out[active[done]], stage[active[done]] = logits[done], k
            if done.all():
                break
            keep = ~done
            t = self.stage_timesteps[k]
            s = s.reshape(t, -1, *s.shape[1:])[:, keep].reshape(-1, *s.shape[1:])
            active = active[keep]
        return out, stage

    def card_fields(self) -> dict:
        return {"stage_timesteps": list(self.stage_timesteps),
                "early_exit": "one early classifier per stage; the ONNX file returns the last one's logits"}


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 0, bits: int = 2,
          stage_timesteps=STAGE_TIMESTEPS, **kwargs) -> ShrinkingMRASNN:
    """timesteps, if given, must equal stage_timesteps[0] (the stages set the counts)."""
    if timesteps and timesteps != tuple(stage_timesteps)[0]:
        raise ValueError(f"ssnn takes its timesteps from stage_timesteps {tuple(stage_timesteps)}; "
                         f"--timesteps {timesteps} contradicts it")
    return ShrinkingMRASNN(n_classes=n_classes, window=window, bits=bits, stage_timesteps=stage_timesteps, **kwargs)
