"""The edge runtime: a shipped model card and its ONNX file run by onnxruntime. No torch here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesnn.card import check_outputs, default_card_path, model_id, read_card, resolve_card
from edgesnn.errors import EdgesnnError
from edgesnn.labels import fault_type


# Windows per onnxruntime call: activations grow with the batch (MRA-SNN: ~1.5 MB a window) and
# onnxruntime's arena keeps its peak, so a long recording or a backlog runs in slices. 32 is
# also the fastest per window on this 2-core machine for the shipped integer default (0.146 ms,
# against 0.219 at 1, 0.150 at 8 and 0.163 at 256).
MAX_BATCH = 32


def onnx_session(onnx_path: str, threads: int = 1):
    """An onnxruntime CPU session on `threads` threads; a file it cannot load is one line."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise EdgesnnError(f"{onnx_path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None


def normal_classes(classes) -> list[int]:
    """Indices of the classes whose fault type is normal."""
    return [i for i, c in enumerate(classes) if fault_type(c) == "normal"]


def lower_normal(logits: np.ndarray, normal: list[int], margin: float) -> np.ndarray:
    """`logits` [N, C] with `margin` taken from the `normal` columns, in place: the decide stage's
    normal margin (a window is called normal only when normal leads every fault by more)."""
    if margin:
        logits[:, normal] -= margin
    return logits


class Diagnoser:
    """Window batches [N, L] of acceleration in g -> class probabilities [N, C]."""

    def __init__(self, card_path: Path | None = None, threads: int = 1, normal_margin: float = 0.0):
        self.card_path = resolve_card(card_path) if card_path else default_card_path()
        self.threads = threads
        self.card = read_card(self.card_path)
        if self.card.get("kind") == "anomaly":  # scores windows, has no classes to diagnose
            raise EdgesnnError(f"{self.card_path}: an anomaly model, not a classifier; "
                               "run it beside a classifier with --anomaly-model (infer or monitor)")
        self.session = onnx_session(self.card["_onnx_path"], threads)
        check_outputs(self.card_path, self.card, self.session, len(self.card["classes"]))
        self.input_name = self.session.get_inputs()[0].name
        self.classes: list[str] = list(self.card["classes"])
        self.window: int = int(self.card["window"])
        self.sample_rate_hz: float = float(self.card["sample_rate_hz"])
        self.model_id = model_id(self.card)
        # The decide stage's sensitivity: the normal class's logit is lowered by this much, so that
        # a window is called normal only when normal leads every fault by more. Models learn
        # "normal" from one recording at one sensor position; elsewhere they call faults normal
        # (README, "Missed faults at another sensor position").
        if not np.isfinite(normal_margin) or normal_margin < 0:
            raise EdgesnnError(f"normal margin {normal_margin}: give a finite number >= 0")
        self._normal = normal_classes(self.classes)
        if normal_margin and not self._normal:
            raise EdgesnnError(f"{self.card_path}: its classes have no normal class for a normal margin to lower")
        self.normal_margin = float(normal_margin)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """x: [N, 1, L] or [N, L] float32 -> logits [N, C] (the normal margin taken from normal's)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 2:
            x = x[:, None, :]
        z = np.concatenate([self.session.run(None, {self.input_name: x[i : i + MAX_BATCH]})[0]
                            for i in range(0, max(len(x), 1), MAX_BATCH)])
        return lower_normal(z, self._normal, self.normal_margin)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        z = self.logits(windows)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)
