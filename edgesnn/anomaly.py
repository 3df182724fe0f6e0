"""Anomaly models at the edge: scoring windows with an anomaly card, and measuring a detector.

An anomaly card (`"kind": "anomaly"`, e.g. the esvae pack) is a model card whose ONNX graph
takes the usual raw window [N, 1, L] and gives one score per window, [N, 1]: higher is less like
the normal data it was trained on; the card's `threshold` turns a score into an alarm. numpy
and onnxruntime only, no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesnn.card import check_outputs, model_id, read_card, resolve_card
from edgesnn.errors import EdgesnnError
from edgesnn.runtime import MAX_BATCH, onnx_session
from edgesnn.evaluation import noisy

KIND = "anomaly"
# The alarm threshold: this margin times the highest score of the healthy windows of the
# training and validation regions (no fault data, no test data). A round margin for healthy
# variation the reference does not contain: a machine should be recalibrated on its own healthy
# data at commissioning (`edgesnn monitor --anomaly-threshold`).
THRESHOLD_MARGIN = 2.0


def is_anomaly_card(card: dict) -> bool:
    return card.get("kind") == KIND


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """Area under the ROC curve of scores, anomalous windows as positives: the probability that
    an anomalous window scores above a normal one, ties counting one half (Mann-Whitney U from
    average ranks)."""
    normal, anomalous = np.asarray(normal, np.float64).ravel(), np.asarray(anomalous, np.float64).ravel()
    if len(normal) == 0 or len(anomalous) == 0:
        raise ValueError("AUROC needs at least one normal and one anomalous score")
    scores = np.concatenate([normal, anomalous])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    uniq, inverse = np.unique(scores, return_inverse=True)
    ranks = (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]  # ties share their mean rank
    n, m = len(normal), len(anomalous)
    return float((ranks[n:].sum() - m * (m + 1) / 2) / (n * m))


def detector_metrics(score, test, classes, threshold: float | None = None, snrs=(-4,), seed: int = 0,
                     normal: int = 0) -> dict:
    """AUROC of normal test windows against each fault class and all faults pooled, clean and
    under white noise at `snrs` (the noise drawn as edgesnn.evaluation draws it, so detector
    and classifiers see the same noisy windows); with a threshold also the share of normal
    windows flagged (false alarms) and of fault windows flagged (detections).

    score: windows [N, L] -> scores [N]; test: edgesnn.dataset.Windows; classes: the task's
    class names, `normal` the index of the normal class."""

    def measure(x: np.ndarray) -> dict:
        s = np.asarray(score(x), np.float64).ravel()
        neg = s[test.y == normal]
        per = {classes[c]: auroc(neg, s[test.y == c]) for c in np.unique(test.y) if c != normal}
        row = {"auroc": auroc(neg, s[test.y != normal]), "auroc_per_class": per, "worst_auroc": min(per.values())}
        if threshold is not None:
            row["false_alarm_rate"] = float(np.mean(neg > threshold))
            row["detection_rate"] = float(np.mean(s[test.y != normal] > threshold))
        return row

    clean = measure(test.x)
    metrics = {f"test_{k}": v for k, v in clean.items()}
    metrics |= {"test_windows": int(len(test.y)), "normal_test_windows": int(np.sum(test.y == normal))}
    for snr in snrs:
        metrics |= {f"snr_{snr}db_{k}": v for k, v in measure(noisy(test.x, snr, seed)).items()}
    return metrics


def calibrate_threshold(score, data, normal: int = 0) -> dict:
    """The card's `threshold` and how it was set: THRESHOLD_MARGIN x the highest score of the
    normal class's training- and validation-region windows (`data`: edgesnn.dataset.TaskData)."""
    healthy = [w.x[w.y == normal] for w in (data.windows("train"), data.windows("val"))]
    top = float(np.max(np.asarray(score(np.concatenate(healthy)), np.float64)))
    return {"threshold": round(THRESHOLD_MARGIN * top, 6),
            "threshold_rule": f"{THRESHOLD_MARGIN:g} x the highest score ({top:.4g}) of the {sum(map(len, healthy))} "
                              f"normal windows of the training and validation regions; no fault or test data"}


class AnomalyScorer:
    """Window batches [N, L] of acceleration in g -> anomaly scores [N] through an anomaly card's
    ONNX file; `alarms(scores)` compares them with the card's threshold."""

    def __init__(self, card_path: Path, threads: int = 1, threshold: float | None = None):
        self.card_path = resolve_card(card_path)
        self.card = read_card(self.card_path)
        if not is_anomaly_card(self.card):
            raise EdgesnnError(f"{self.card_path}: not an anomaly model (its card has no \"kind\": \"anomaly\"); "
                               "a classifier goes to --model")
        self.session = onnx_session(self.card["_onnx_path"], threads)
        check_outputs(self.card_path, self.card, self.session, 1)
        self.input_name = self.session.get_inputs()[0].name
        self.batch = MAX_BATCH
        self.window: int = int(self.card["window"])
        self.sample_rate_hz: float = float(self.card["sample_rate_hz"])
        self.model_id = model_id(self.card)
        if threshold is not None and not np.isfinite(threshold):
            raise EdgesnnError(f"anomaly threshold {threshold}: not a finite number")
        if threshold is not None and threshold < 0:  # every score would alarm
            raise EdgesnnError(f"anomaly threshold {threshold:g}: below 0, the lowest score a model gives "
                               "(a mean squared error), so every window would raise an alarm")
        self.threshold = float(threshold if threshold is not None else self.card.get("threshold", np.nan))
        if not np.isfinite(self.threshold):
            raise EdgesnnError(f"{self.card_path}: the card has no threshold; give one with --anomaly-threshold")

    def scores(self, x: np.ndarray) -> np.ndarray:
        """x: [N, L] or [N, 1, L] float32 -> scores [N]."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 2:
            x = x[:, None, :]
        if len(x) == 0:
            return np.empty(0, np.float32)
        return np.concatenate([self.session.run(None, {self.input_name: x[i : i + self.batch]})[0].reshape(-1)
                               for i in range(0, len(x), self.batch)])

    def alarms(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) > self.threshold

    def check_matches(self, window: int, sample_rate_hz: float, what: str) -> None:
        """One line if this model does not see the windows of `what` (the classifier)."""
        if (self.window, self.sample_rate_hz) != (int(window), float(sample_rate_hz)):
            raise EdgesnnError(f"{self.card_path}: the anomaly model takes {self.window}-sample windows at "
                               f"{self.sample_rate_hz:g} Hz, {what} {int(window)} at {float(sample_rate_hz):g} Hz")
