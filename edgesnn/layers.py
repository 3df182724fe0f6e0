"""Building blocks shared by the model packs."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pywt
import torch
from torch import nn

from edgesnn import neurons


class Standardize(nn.Module):
    """Per-window zero mean and unit RMS, inside the graph (CONTRACTS 2: raw samples in g go in).

    Makes the network blind to sensor gain and mounting, so it has to learn the shape of the
    vibration (impacts, their rate and ringing), not its level.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=-1, keepdim=True)
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + 1e-8)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation over channels: x * sigmoid(W2 relu(W1 mean_L(x)))."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=-1))[:, :, None]


class SpikingNeurons(nn.Module):
    """Multi-bit LIF neurons over T timesteps, optionally with the dendritic attention filter.

    Takes and returns [T*N, C, L] (time folded into the batch so convolutions run once for all
    timesteps); the time loop inside unrolls into the exported graph.
    """

    def __init__(self, channels: int, bits: int, timesteps: int, dendritic: bool = True,
                 params: neurons.LIFParams = neurons.LIFParams()):
        super().__init__()
        self.bits, self.timesteps, self.params = bits, timesteps, params
        self.dendritic = dendritic
        if dendritic:
            self.gate_w = nn.Parameter(torch.zeros(channels))
            self.gate_b = nn.Parameter(torch.full((channels,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # time-major [T*N]: chunk and cat, not a reshape by x.shape, which would export as shape
        # arithmetic (Shape, Gather, Concat nodes) that onnxruntime runs on every call
        currents = x.chunk(self.timesteps) if self.timesteps > 1 else (x,)
        if self.dendritic:
            step, extra = neurons.dendritic_step, (self.bits, neurons.DendriteParams(self.gate_w, self.gate_b))
        else:
            step, extra = neurons.multibit_step, (self.bits,)
        s = neurons.run_over_time(step, currents, *extra, p=self.params, surrogate=self.training)
        return torch.cat(s) if len(s) > 1 else s[0]


@contextmanager
def running_at(model: nn.Module, timesteps: int):
    """Run `model` and every spiking layer in it at another timestep count (a teacher pass at
    more timesteps, a later stage at fewer), restoring the trained count afterwards."""
    saved = [(m, m.timesteps) for m in model.modules() if hasattr(m, "timesteps")]
    for m, _ in saved:
        m.timesteps = timesteps
    try:
        yield model
    finally:
        for m, t in saved:
            m.timesteps = t


class RateNeurons(nn.Module):
    """The non-spiking stand-in of a multi-bit neuron layer: its firing rate as a clamped ReLU,
    0..2**bits-1 (a matching ANN teacher for local tandem learning)."""

    def __init__(self, bits: int):
        super().__init__()
        self.levels = 2**bits - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, 0, self.levels)


def morlet_bank(fs: float, n_scales: int, f_lo: float, f_hi: float) -> tuple[torch.Tensor, np.ndarray]:
    """Complex Morlet wavelets (PyWavelets' cmor1.5-1.0) at `n_scales` centre frequencies,
    geometric from f_hi down to f_lo: real parts then imaginary parts, [2 * n_scales, 1, K],
    each scaled by 1/sqrt(scale) as a continuous wavelet transform is; and the frequencies."""
    wavelet = pywt.ContinuousWavelet("cmor1.5-1.0")
    freqs = np.geomspace(f_hi, f_lo, n_scales)
    scales = pywt.frequency2scale(wavelet, freqs / fs)
    half = int(np.ceil(4 * scales.max()))  # the Gaussian is below 2e-5 of its peak beyond 4 scales
    t = np.arange(-half, half + 1)
    psi, grid = wavelet.wavefun(12)
    rows = []
    for part in (np.real, np.imag):
        for s in scales:
            rows.append(np.interp(t / s, grid, part(psi), left=0.0, right=0.0) / np.sqrt(s))
    return torch.tensor(np.array(rows), dtype=torch.float32)[:, None, :], freqs


def short_bank(fs: float, n_bands: int, f_lo: float, f_hi: float, taps: int) -> tuple[torch.Tensor, np.ndarray]:
    """Hann-windowed complex exponentials of `taps` samples at `n_bands` centre frequencies, linear
    from f_lo to f_hi: a short-time Fourier transform's bands, in morlet_bank's layout."""
    freqs = np.linspace(f_lo, f_hi, n_bands)
    t = np.arange(taps) - (taps - 1) / 2
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(taps) + 0.5) / taps)
    phase = 2 * np.pi * freqs[:, None] * t[None, :] / fs
    rows = np.concatenate([np.cos(phase), np.sin(phase)]) * hann / np.sqrt(taps)
    return torch.tensor(rows, dtype=torch.float32)[:, None, :], freqs


class CWTFrontEnd(nn.Module):
    """Continuous wavelet transform as a fixed convolution bank inside the graph.

    The standardized window goes through complex Morlet filters (frozen, from PyWavelets) at a
    stride, and the magnitude |re + i im| is a time-frequency map [N, n_scales, L / stride]: the
    energy of each resonance band over time, the picture vision-born spiking methods expect,
    while the ONNX input stays raw samples (CONTRACTS section 2).
    """

    def __init__(self, stride: int, fs: float = 12000.0, n_scales: int = 16, f_lo: float = 500.0,
                 f_hi: float = 5500.0, taps: int | None = None):
        super().__init__()
        bank, freqs = (morlet_bank(fs, n_scales, f_lo, f_hi) if taps is None
                       else short_bank(fs, n_scales, f_lo, f_hi, taps))
        if (bank.shape[-1] - stride) % 2:  # a zero tap makes L / stride outputs exactly
            bank = nn.functional.pad(bank, (0, 1))
        self.register_buffer("bank", bank)
        self.frequencies_hz = [float(f) for f in freqs]
        self.n_scales, self.stride = n_scales, stride
        self.pad = (bank.shape[-1] - stride) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = nn.functional.conv1d(x, self.bank, stride=self.stride, padding=self.pad)
        re, im = z[:, : self.n_scales], z[:, self.n_scales :]
        return torch.sqrt(re * re + im * im + 1e-8)


class EnvelopeSpectrum(nn.Module):
    """Envelope spectra inside the graph, the bearing analyst's view: a defect's impacts repeat
    at its characteristic frequency (BPFO, BPFI, BSF: about 107, 162 and 141 Hz on the CWRU
    drive end at 1797 rpm) whatever the defect's size or the load, and they ring the structure's
    resonances. So: complex Morlet band envelopes (CWTFrontEnd, 16 bands 500 Hz - 5.5 kHz)
    at `fs / envelope_stride`, averaged in pairs (anti-aliasing) to `fs / (2 envelope_stride)`,
    each band's envelope divided by its mean (modulation depth, blind to level), mean removed,
    Hann-windowed, and the magnitude of its discrete Fourier transform (fixed cosine and sine
    weights): [N, bins, bands], with the frequency bins as channels, so that a 1x1 mix can learn
    a comb of fault frequencies. Bin k is k * fs / L Hz, k = 1..bins (5.9 Hz steps up to 375 Hz
    for 2048 samples at 12 kHz with stride 8)."""

    def __init__(self, window: int, fs: float = 12000.0, envelope_stride: int = 8, short: bool = False):
        super().__init__()
        if short:  # 32-tap bands at stride 16: already 750 Hz, no pairwise average
            envelope_stride, self.pool = 16, 1
            self.cwt = CWTFrontEnd(envelope_stride, fs, taps=2 * envelope_stride)
        else:
            self.pool = 2
            self.cwt = CWTFrontEnd(envelope_stride, fs)
        n = window // (self.pool * envelope_stride)  # envelope samples after the pairwise average
        self.bins = n // 2
        t = np.arange(n)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * t / n)
        k = np.arange(1, self.bins + 1)[:, None]
        basis = np.concatenate([np.cos(2 * np.pi * k * t / n), -np.sin(2 * np.pi * k * t / n)]) * hann / n
        self.register_buffer("basis", torch.tensor(basis.T, dtype=torch.float32))  # [n, 2 * bins]
        self.frequencies_hz = [float(f) for f in k[:, 0] * fs / window]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = self.cwt(x)
        env = nn.functional.avg_pool1d(env, 2) if self.pool == 2 else env  # [N, bands, n]
        mean = env.mean(dim=-1, keepdim=True)
        z = (env / (mean + 1e-6) - 1.0) @ self.basis  # [N, bands, 2 * bins]
        re, im = z[..., : self.bins], z[..., self.bins :]
        return torch.sqrt(re * re + im * im + 1e-8).transpose(1, 2)  # [N, bins, bands]
