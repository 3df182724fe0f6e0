"""The envelope view of MRA-SNN's frontend=raw+envelope in integers: what
edgesnn.layers.EnvelopeSpectrum computes in float.

Its input is the window's int16 samples less their integer mean, not the int8 window the raw view
reads: the spectrum divides each band by its own mean, so it needs no standardization, and the
int8 steps (1/8 RMS for the shipped networks) would put 6 % of error into it, against 1 %.

  centered int16 window (|c| < 2**16)
  -> complex Morlet bank, int8 kernels (one scale per band, shared by its real and imaginary
     kernel, so their squares add), stride 8 -> int32 re, im  [N, bands, L/8]
  -> band envelope isqrt(re^2 + im^2)           (the square sum needs a 64-bit product; the
                                                 envelope fits int32, checked at quantization)
  -> pair average (a + b) >> 1                  [N, bands, n], n = L/16
     (the short bank, 32-tap bands at stride 16, is already at n = L/16: no pair average)
  -> modulation depth in Q8: (e << 8) // mean(e) - 256, saturated to int16
     (mean over n, a power of two: a shift; the band's scale cancels here)
  -> Hann-windowed DFT, int8 cosine and sine rows (one scale per bin, shared)
  -> isqrt(re^2 + im^2) >> shift, saturated to int16: spectrum [N, bins, bands]
The per-bin scales and the shift are folded into the weights of the 1x1 convolution that mixes
the bins into channels (quantize.py), so no float is left. Measured against the float spectrum
on real windows: about 1 % relative error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesnn.errors import EdgesnnError
from edgesnn.firmware_sim.arith import INT16, Q, int_matmul, sat16


def isqrt(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) of non-negative int64 values, exactly (float64 guess, integer correction)."""
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    r -= (r * r > v)
    r += ((r + 1) * (r + 1) <= v)
    return r


@dataclass
class IntEnvelopeSpectrum:
    bank: np.ndarray  # int8 [2 * bands, K]: real kernels, then imaginary ones
    stride: int
    pad: int
    dft: np.ndarray  # int8 [2 * bins, n]: cosine rows, then sine rows (Hann folded in)
    shift: int  # spectrum >> shift fits int16 on the calibration windows

    @property
    def bands(self) -> int:
        return self.bank.shape[0] // 2

    @property
    def bins(self) -> int:
        return self.dft.shape[0] // 2

    def pairs(self, window: int) -> bool:
        """Whether band envelopes are averaged in pairs: the Morlet bank's stride gives twice the
        DFT's length (n), the short bank's gives n itself."""
        return window // self.stride == 2 * self.dft.shape[1]

    def spans(self) -> list[tuple[int, int]]:
        """Per band, the taps [start, stop) outside which its real and imaginary kernels are zero
        in int8 (a Gaussian's tails round to 0): what a device stores and multiplies."""
        both = (self.bank[: self.bands] != 0) | (self.bank[self.bands :] != 0)
        return [(int(np.flatnonzero(r)[0]), int(np.flatnonzero(r)[-1]) + 1) if r.any() else (0, 0) for r in both]

    def magnitudes(self, x: np.ndarray) -> np.ndarray:
        """Centered int16 windows [N, L] -> the spectrum before its shift, int64 [N, bins, bands].
        With |c| < 2**16 the band sums fit int32 (quantize_spectrum checks the kernels) and their
        square sums int64."""
        k = self.bank.shape[1]
        xp = np.pad(x.astype(np.int64), ((0, 0), (self.pad, self.pad)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, k, axis=1)[:, :: self.stride]  # [N, L/s, K]
        z = int_matmul(cols, self.bank.T)  # [N, L/s, 2 * bands]
        env = isqrt(z[..., : self.bands] ** 2 + z[..., self.bands :] ** 2)  # [N, L/s, bands]
        if self.pairs(x.shape[1]):
            env = (env[:, 0::2] + env[:, 1::2]) >> 1  # [N, n, bands]
        n = env.shape[1]
        mean = np.maximum(env.sum(axis=1, keepdims=True) >> int(np.log2(n)), 1)
        depth = sat16((env << Q) // mean - (1 << Q))
        f = int_matmul(self.dft, depth)  # [N, 2 * bins, bands]
        return isqrt(f[:, : self.bins] ** 2 + f[:, self.bins :] ** 2)

    def __call__(self, c16: np.ndarray) -> np.ndarray:
        return np.minimum(self.magnitudes(c16) >> self.shift, INT16[1])


def centered(x16: np.ndarray) -> np.ndarray:
    """int16 windows [N, L] less their integer mean (rounded half up), as int64: what both views
    start from (network.standardize scales it to int8)."""
    x = x16.astype(np.int64)
    n = x.shape[1]
    return x - (x.sum(axis=1, keepdims=True) + n // 2) // n


def quantize_spectrum(front, c16: np.ndarray) -> tuple[IntEnvelopeSpectrum, np.ndarray]:
    """edgesnn.layers.EnvelopeSpectrum -> (its integer form, the real value of one unit of each
    output bin). `c16`: centered int16 calibration windows [N, L] (training region), which set
    the shift."""
    bank = front.cwt.bank[:, 0].double().numpy()  # [2 * bands, K]
    bands = bank.shape[0] // 2
    band_scale = np.maximum(np.abs(bank[:bands]).max(axis=1), np.abs(bank[bands:]).max(axis=1)) / 127
    bank8 = np.clip(np.round(bank / np.concatenate([band_scale, band_scale])[:, None]), -127, 127).astype(np.int8)
    basis = front.basis.double().numpy().T  # [2 * bins, n]
    bins = front.bins
    bin_scale = np.maximum(np.abs(basis[:bins]).max(axis=1), np.abs(basis[bins:]).max(axis=1)) / 127
    dft8 = np.clip(np.round(basis / np.concatenate([bin_scale, bin_scale])[:, None]), -127, 127).astype(np.int8)
    # a band's envelope is at most 2**16 * (sum |re| + sum |im|): the device stores it in int32
    if (1 << 16) * int(np.abs(bank8.astype(np.int64)).reshape(2, bands, -1).sum(axis=(0, 2)).max()) >= 1 << 31:
        raise EdgesnnError("the envelope view's Morlet kernels are too long for int32 band envelopes")
    spectrum = IntEnvelopeSpectrum(bank8, front.cwt.stride, front.cwt.pad, dft8, 0)
    peak = int(spectrum.magnitudes(c16).max(initial=1))
    spectrum.shift = max(0, int(peak).bit_length() - 15)  # peak >> shift < 2**15
    # one output unit: the float modulation is depth / 2**Q, its DFT (bin scale) magnitude, << shift
    return spectrum, bin_scale * 2.0 ** (spectrum.shift - Q)
