"""Shrinking SNN (SSNN, arXiv 2401.01912) on the MRA-SNN backbone: fewer timesteps deeper in.

Early layers, where the signal is still raw, get many timesteps; each later stage runs at fewer
(`stage_timesteps`, one per block, non-increasing). Between stages a learned temporal
transformation maps T_in spike frames to T_out input frames (a T_out x T_in mixing matrix,
initialised to averaging consecutive frames). Every stage has its own early classifier on its
firing rate, all trained together, which keeps the shortened stages informative.

At inference a window may leave early: the deployed network (EarlyExitSSNN) gives each window
the logits of the first stage where its top softmax probability reaches `exit_threshold`; only
the windows not yet sure run the next stage. Its ONNX file does the same (built from one
exported graph per stage): after each stage the unsure windows are cut out of the batch
(Compress) and, inside an If that runs only when there are any, go on; their later logits are
scattered back (ScatterND). So a window's result does not depend on the batch it came in, and
onnxruntime skips what no window needs. The threshold is an optional graph input with the
card's value as default. The integer export (firmware_sim) decides the same way, per window.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgesnn.models.mra_snn import MRASNN
from edgesnn.registry import real_number, whole_number

STAGE_TIMESTEPS = (4, 2, 1)
# On the validation region every threshold from 0.5 to 0.99 kept the full network's accuracy
# (0.9973); 0.9 asks for high confidence and still lets 95% of windows leave at the first stage.
EXIT_THRESHOLD = 0.9


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


def stage_counts(value) -> tuple[int, ...]:
    """The `stage_timesteps` option: whole numbers >= 1, one per block, never increasing."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"stage_timesteps must be a list of timesteps per block, e.g. [4,2,1], not {value!r}")
    counts = tuple(whole_number("each of stage_timesteps", t, 1) for t in value)
    if any(b > a for a, b in zip(counts, counts[1:])):
        raise ValueError(f"stage_timesteps must be non-increasing, got {counts}")
    return counts


class ShrinkingMRASNN(MRASNN):
    def __init__(self, stage_timesteps=STAGE_TIMESTEPS, exit_threshold: float = EXIT_THRESHOLD, **kwargs):
        stage_timesteps = stage_counts(stage_timesteps)
        super().__init__(**{**kwargs, "timesteps": stage_timesteps[0]})
        if len(stage_timesteps) != len(self.blocks):
            raise ValueError(f"stage_timesteps needs one count per block ({len(self.blocks)}), got {stage_timesteps}")
        self.stage_timesteps = stage_timesteps
        # above 1 every window runs every stage
        self.exit_threshold = real_number("exit_threshold (a softmax probability)", exit_threshold, 0.0, low_open=True)
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

    def deployed(self) -> "EarlyExitSSNN":
        return EarlyExitSSNN(self)

    def card_fields(self) -> dict:
        return {"stage_timesteps": list(self.stage_timesteps),
                "early_exit": {"threshold": self.exit_threshold, "onnx_input": "exit_threshold",
                               "rule": "a batch returns the logits of the first stage at which every window's "
                                       "top softmax probability reaches the threshold; > 1 runs every stage"}}


class _Stage(nn.Module):
    """Stage k alone, for export: (raw windows | the previous stage's spikes) -> (logits, spikes)."""

    def __init__(self, model: ShrinkingMRASNN, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, inp: torch.Tensor):
        s, logits = self.model._stage(self.k, self.model.encode(inp) if self.k == 0 else inp)
        return (logits, s) if self.k < len(self.model.blocks) - 1 else logits


class EarlyExitSSNN(nn.Module):
    """What ships: the shrinking network with the batch-level early exit."""

    def __init__(self, model: ShrinkingMRASNN):
        super().__init__()
        self.model = model.eval()
        self.timesteps, self.spike_bits, self.window = model.timesteps, model.spike_bits, model.window
        self.threshold = model.exit_threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.early_exit(x, self.threshold)[0]

    def to_onnx(self, path, opset: int) -> None:
        """One graph per stage (torch.onnx), joined by If nodes on the batch's confidence."""
        import tempfile
        import warnings
        from pathlib import Path

        import onnx
        from onnx import TensorProto, compose, helper, numpy_helper

        from edgesnn.firmware_sim.onnx_graph import per_window_exit

        stages, shapes, last = [], [], len(self.model.blocks) - 1
        inp = torch.zeros(1, 1, self.window)
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on the unrolled time loop
            for k in range(last + 1):
                stage = _Stage(self.model, k).eval()  # export restores this mode on the whole model after
                ins, outs = ["input"], ["logits", "spikes"][: 1 if k == last else 2]
                f = Path(tmp) / f"stage{k}.onnx"
                torch.onnx.export(stage, (inp,), str(f), dynamo=False, opset_version=opset, input_names=ins,
                                  output_names=outs, dynamic_axes={n: {0: "batch"} for n in ins + outs})
                stages.append(compose.add_prefix(onnx.load(str(f)), f"stage{k}/"))
                if k < last:
                    inp = stage(inp)[1]
                    shapes.append(list(inp.shape[1:]))  # C, L of its spikes [T_k * N, C, L]

        def stage_nodes(k: int, source: str) -> list:
            return [helper.make_node("Identity", [source], [f"stage{k}/input"])] + list(stages[k].graph.node)

        def leave_or_go_on(k: int, out: str) -> list:
            """Nodes that put each window's logits in `out`: stage k's where it is sure, else
            those of the later stages, run on the unsure windows only (when there are any)."""
            p = f"exit{k}/"

            def later(kept: str) -> tuple[list, str]:
                nodes = stage_nodes(k + 1, kept)
                if k + 1 < last:
                    return nodes + leave_or_go_on(k + 1, p + "later"), p + "later"
                return nodes, f"stage{k + 1}/logits"

            return [helper.make_node("Softmax", [f"stage{k}/logits"], [p + "p"], axis=1),
                    helper.make_node("ReduceMax", [p + "p"], [p + "top"], axes=[1], keepdims=0),
                    helper.make_node("Less", [p + "top", "exit_threshold"], [p + "unsure"]),
                    helper.make_node("ReduceMin", [p + "top"], [p + "least"], keepdims=0),
                    helper.make_node("Less", [p + "least", "exit_threshold"], [p + "any_unsure"]),
                    *per_window_exit(p, f"stage{k}/logits", f"stage{k}/spikes", [self.model.stage_timesteps[k], *shapes[k]],
                                     p + "unsure", p + "any_unsure", later, TensorProto.FLOAT, out)]

        threshold = numpy_helper.from_array(np.array(self.threshold, dtype=np.float32), "exit_threshold")
        graph = helper.make_graph(
            stage_nodes(0, "acceleration") + leave_or_go_on(0, "logits"), "ssnn_early_exit",
            [helper.make_tensor_value_info("acceleration", TensorProto.FLOAT, ["batch", 1, self.window]),
             helper.make_tensor_value_info("exit_threshold", TensorProto.FLOAT, [])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", self.model.classifier.out_features])],
            initializer=[t for st in stages for t in st.graph.initializer] + [threshold])
        model = helper.make_model(graph, opset_imports=stages[0].opset_import)
        model.ir_version = stages[0].ir_version
        onnx.checker.check_model(model)
        onnx.save(model, str(path))


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 0, bits: int = 2,
          stage_timesteps=STAGE_TIMESTEPS, exit_threshold: float = EXIT_THRESHOLD, **kwargs) -> ShrinkingMRASNN:
    """timesteps, if given, must equal stage_timesteps[0] (the stages set the counts)."""
    if timesteps and timesteps != stage_counts(stage_timesteps)[0]:
        raise ValueError(f"ssnn takes its timesteps from stage_timesteps {tuple(stage_timesteps)}; "
                         f"--timesteps {timesteps} contradicts it")
    return ShrinkingMRASNN(n_classes=n_classes, window=window, bits=bits, stage_timesteps=stage_timesteps,
                           exit_threshold=exit_threshold, **kwargs)
