"""The integer arithmetic a microcontroller does, in numpy (int64 arrays hold int32 values).

Every operation here has one exact integer meaning, so the C export can reproduce it bit for bit:
- requantization `((acc * m + 2**(shift-1)) >> shift) + bias`, per channel, with m a 15-bit
  multiplier (CMSIS-NN style: one 32x32->64 multiply, one shift);
- `>>` is an arithmetic shift: floor division by a power of two, also for negative values;
- saturation to int16 where the firmware stores a value in 16 bits;
- sigmoid as a 256-entry table over [-8, 8) in steps of 1/16, output in Q8 (0..256);
- exp(-d) as a table over d >= 0 in steps of 1/16, output in Q15, for an early exit's confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesnn.errors import EdgesnnError

Q = 8  # membrane potentials and currents are in Q8: the firing threshold is 1 << Q
GATE_Q = 8  # gates (sigmoid outputs) in Q8
LUT_Q = 4  # sigmoid table input in Q4: index = clip(pre + 128, 0, 255)
INT16 = (-(1 << 15), (1 << 15) - 1)
EXP_Q = 15  # exp table output in Q15: exp(0) = 1 << 15
EXP_STEP = 4  # exp table input: a Q8 logit difference >> 4, steps of 1/16


def sigmoid_lut() -> np.ndarray:
    pre = (np.arange(256) - 128) / (1 << LUT_Q)
    return np.round((1 << GATE_Q) / (1 + np.exp(-pre))).astype(np.int64)


def exp_table() -> np.ndarray:
    """round(2**15 * exp(-i / 16)) for i = 0, 1, ... up to and including its first 0."""
    n = int(np.ceil(16 * np.log(2.0 ** (EXP_Q + 1)))) + 1  # 2**15 * exp(-i/16) < 1/2 from here
    return np.round((1 << EXP_Q) * np.exp(-np.arange(n) / (1 << EXP_STEP))).astype(np.int64)


@dataclass
class Requant:
    """Per-channel fixed-point rescaling of integer accumulators."""

    m: np.ndarray  # int64 [C], |m| < 2**15
    shift: np.ndarray  # int64 [C], >= 1
    bias: np.ndarray  # int64 [C], in the output's units

    @classmethod
    def from_real(cls, scale: np.ndarray, bias: np.ndarray) -> "Requant":
        """Integer (m, shift) with m / 2**shift ~= scale (relative error < 2**-14), bias rounded."""
        scale = np.asarray(scale, dtype=np.float64)
        mag = np.where(scale == 0, 1.0, np.abs(scale))
        shift = np.clip(14 - np.floor(np.log2(mag)).astype(np.int64), 1, 62)
        m = np.round(scale * 2.0**shift).astype(np.int64)
        bias = np.round(np.asarray(bias, dtype=np.float64))
        if np.any(np.abs(m) >= 2**31) or np.any(np.abs(bias) >= 2**31):
            raise EdgesnnError(f"a requantization scale or bias is too large for int32 (max |scale| "
                               f"{np.abs(scale).max():.3g}, |bias| {np.abs(bias).max():.3g})")
        return cls(m, shift, bias.astype(np.int64))


def requantize(acc: np.ndarray, rq: Requant, axis: int = 1) -> np.ndarray:
    """Apply `rq` along `axis` (the channel axis) of an integer accumulator."""
    shape = [1] * acc.ndim
    shape[axis] = -1
    m, shift, bias = (a.reshape(shape) for a in (rq.m, rq.shift, rq.bias))
    return ((acc * m + (np.int64(1) << (shift - 1))) >> shift) + bias


def sat16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, *INT16)


def int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer matrix product through float64 BLAS (exact while |sums| < 2**53)."""
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
