"""A strided convolution of a one-channel signal, rewritten over stride-long frames.

Conv1d(1 -> O, kernel K, stride S, padding P) on x [N, 1, L] (L a multiple of S) equals
Conv1d(S -> O, kernel kb, stride 1, padding (lead, right)) on the frames of x,
frames[n, c, m] = x[n, 0, m * S + c], i.e. x.reshape(N, L / S, S) with its last two axes swapped:
output t sums the samples tS - P .. tS - P + K - 1, which lie in frames t - lead .. t - lead + kb - 1.
The same products and sums, in another order. onnxruntime runs the frame form of MRA-SNN's
encoder faster than its three wide strided convolutions (README: what a window costs), so the
exported graphs use it; training keeps the plain convolutions.
"""

from __future__ import annotations

import numpy as np


def framed_kernel(w: np.ndarray, stride: int, pad: int, length: int) -> tuple[np.ndarray, int, int]:
    """Weights [O, 1, K] of a Conv1d(stride, pad) over `length` samples -> (frame-form weights
    [O, stride, kb], frames of padding before, frames of padding after)."""
    out_channels, in_channels, k = w.shape
    if in_channels != 1 or length % stride:
        raise ValueError("the frame form needs one input channel and a length that is a multiple of the stride")
    lead = -(-pad // stride)  # frames before frame 0 that a tap can reach
    offset = lead * stride - pad  # the first tap's place in its frame
    kb = -(-(offset + k) // stride)
    wf = np.zeros((out_channels, stride, kb), dtype=w.dtype)
    taps = offset + np.arange(k)
    wf[:, taps % stride, taps // stride] = w[:, 0, :]
    outputs = (length + 2 * pad - k) // stride + 1
    return wf, lead, outputs - 1 + kb - lead - length // stride
