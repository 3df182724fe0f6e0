"""PNG figures of results people look at (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


ACCURACIES = (("train_accuracy", "train (noisy)"), ("val_accuracy", "validation clean"),
              ("val_snr_-6db_accuracy", "validation -6 dB"))
POINTS = {"marker": "o", "markersize": 3}  # a point per epoch: a one-epoch run has no line to draw


def learning_curve(history: list[dict], path: Path, title: str) -> None:
    """Training loss, and validation accuracy; a pack whose history has no accuracy (an anomaly
    model) gets its own validation metrics plotted instead, whatever they are."""
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for ax in (a, b):  # ticks at whole epochs, also for a single one
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    a.plot(epochs, [h["loss"] for h in history], **POINTS)
    a.set(xlabel="epoch", ylabel="training loss", title=title)
    accuracies = [(k, name) for k, name in ACCURACIES if all(k in h for h in history)]
    if accuracies:
        for key, name in accuracies:
            b.plot(epochs, [h[key] for h in history], label=name, **POINTS)
        b.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.01))
    else:
        skip = {"epoch", "loss", "seconds", "selection_score"}
        keys = [k for k in history[0] if k not in skip and all(isinstance(h.get(k), (int, float)) for h in history)]
        for key in keys:
            b.plot(epochs, [h[key] for h in history], label=key, **POINTS)
        b.set(xlabel="epoch", ylabel="validation")
    if b.lines:
        b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrix(matrix, classes, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    dark = max(max(row) for row in matrix) / 2  # black on the darkest blues is unreadable: white there
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            if n:
                ax.text(j, i, n, ha="center", va="center", fontsize=8, color="white" if n > dark else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def snr_curves(curves: dict[str, dict[str, float]], path: Path, title: str) -> None:
    """curves: model name -> {snr_db: accuracy}."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, acc in curves.items():
        snrs = sorted(acc, key=float)
        ax.plot([float(s) for s in snrs], [acc[s] for s in snrs], marker="o", label=name)
    ax.set(xlabel="SNR (dB)", ylabel="test-region accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fleet_accuracy(curves: dict, path: Path, target: float) -> None:
    """Test accuracy against round: one panel per scenario, mean over seeds with the min-max band.

    curves: {scenario: {rule: [[accuracy per round] per seed]}}
    """
    import numpy as np

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4), squeeze=False)
    for ax, (scenario, rules) in zip(axes[0], curves.items()):
        for rule, runs in rules.items():
            acc = np.array(runs)
            rounds = np.arange(acc.shape[1])
            ax.plot(rounds, acc.mean(axis=0), label=rule)
            ax.fill_between(rounds, acc.min(axis=0), acc.max(axis=0), alpha=0.2)
        ax.axhline(target, color="grey", linestyle="--", linewidth=0.8)
        ax.set(xlabel="round", ylabel="test-region accuracy", ylim=(0, 1.01), title=scenario)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
