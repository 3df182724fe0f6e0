"""The integer ESVAE anomaly detector (the esvae pack): int8 weights, integer spectrum, Q8 spikes.

What one window goes through, all in integers (arith.py and network.py give the operations):

  int16 samples -> standardize to int8 (network.standardize, scale 2**-s_in)
  -> short-time spectrum: one int8 convolution with Hann-windowed cosine and sine kernels
     (64 taps, stride 32) -> power re**2 + im**2 per bin and frame, summed over the frames
  -> log2 of that sum in Q8: the exponent is the number of powers of two it reaches, the
     mantissa's top 7 bits index a 128-entry table of log2(1 + i/128)
  -> per-bin normalisation (the float model's batch norm, the natural log and the frame count
     folded into one requantization) -> the target t, Q8, saturated to int16
  -> encoder: int8 linear -> Q8 current, the same at every timestep -> T steps of LIF neurons
     -> int8 linear on each step's spikes -> latent LIF neurons -> latent spike counts
  -> decoder: int8 linear on the latent counts (their firing rate, the scale folded in) -> the
     same current every step -> LIF neurons -> int8 linear on the counts -> reconstruction, Q8
  -> score = sum over bins of (reconstruction - t)**2 / (bins * 2**16): the float model's
     mean squared error, as a float32 (the only float, made from exact integers at the end).
The neurons are network.py's, without dendritic gates: v = (v >> 1) + i, s = clip(v >> 8, 0,
levels), v -= s << 8, membranes saturated to int16.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgesnn.firmware_sim.arith import Q, Requant, int_matmul, requantize, sat16
from edgesnn.firmware_sim.network import Head, _get_rq, _rq, lif_step, load_firmware, standardize, to_int16

LOG_BITS = 7  # mantissa bits that index the log2 table
MAX_EXPONENT = 62  # powers of two compared for the exponent (the power sum stays below 2**47)
HEADS = ("enc_in", "enc_latent", "dec_in", "dec_out")  # the int8 linear layers, in the order they run


def log2_table() -> np.ndarray:
    """round(2**8 * log2(1 + i / 128)), i = 0..127: log2 of the mantissa in Q8."""
    return np.round((1 << Q) * np.log2(1 + np.arange(1 << LOG_BITS) / (1 << LOG_BITS))).astype(np.int64)


def log2_q8(p: np.ndarray, table: np.ndarray) -> np.ndarray:
    """floor-mantissa log2 of non-negative integers in Q8 (0 for 0 and 1)."""
    p = np.maximum(p, 1)
    e = (p[..., None] >= (np.int64(1) << np.arange(1, MAX_EXPONENT + 1))).sum(axis=-1)  # floor(log2 p)
    m = np.where(e >= LOG_BITS, p >> np.maximum(e - LOG_BITS, 0), p << np.maximum(LOG_BITS - e, 0))  # [128, 256)
    return (e << Q) + table[m - (1 << LOG_BITS)]


@dataclass
class IntESVAE:
    window: int
    timesteps: int
    levels: int  # 2**bits - 1
    s_in: int  # input samples are int8 in units of 2**-s_in standard deviations
    stft_w: np.ndarray  # int8 [2 * bins, frame]: cosine kernels, then sine
    hop: int
    target_rq: Requant  # Q8 log2 of the power sum -> Q8 normalised log spectrum, per bin
    enc_in: Head  # [hidden, bins]: Q8 target -> Q8 current
    enc_latent: Head  # [latent, hidden]: spikes -> Q8 current
    dec_in: Head  # [hidden, latent]: latent spike counts -> Q8 current
    dec_out: Head  # [bins, hidden]: spike counts -> Q8 reconstruction
    log2: np.ndarray = field(default_factory=log2_table)

    def heads(self) -> list[Head]:
        return [getattr(self, name) for name in HEADS]

    @property
    def bins(self) -> int:
        return self.stft_w.shape[0] // 2

    def target(self, x8: np.ndarray) -> np.ndarray:
        """Standardized int8 windows [N, L] -> the Q8 normalised log spectrum [N, bins]."""
        frames = np.lib.stride_tricks.sliding_window_view(x8, self.stft_w.shape[1], axis=1)[:, :: self.hop]
        y = int_matmul(frames, self.stft_w.T)  # [N, frames, 2 * bins]
        power = (y[..., : self.bins] ** 2 + y[..., self.bins :] ** 2).sum(axis=1)  # [N, bins]
        return sat16(requantize(log2_q8(power, self.log2), self.target_rq))

    def spikes(self, currents: list[np.ndarray]) -> list[np.ndarray]:
        """LIF neurons, one current [N, C] per timestep -> spike counts per timestep."""
        v, out = np.zeros_like(currents[0]), []
        for i in currents:
            s, v = lif_step(v, i, self.levels)
            out.append(s)
        return out

    def run(self, x16: np.ndarray, stats: dict | None = None) -> np.ndarray:
        """int16 windows [N, L] -> anomaly scores [N] (float32)."""
        t = self.target(standardize(x16, self.s_in))
        dense = lambda x, h: sat16(requantize(int_matmul(x, h.w.T), h.rq))  # noqa: E731
        hidden = self.spikes([dense(t, self.enc_in)] * self.timesteps)
        latent = sum(self.spikes([dense(s, self.enc_latent) for s in hidden]))
        decoded = sum(self.spikes([dense(latent, self.dec_in)] * self.timesteps))
        recon = requantize(int_matmul(decoded, self.dec_out.w.T), self.dec_out.rq)
        if stats is not None:
            for name, s in (("hidden", sum(hidden)), ("latent", latent), ("decoded", decoded)):
                stats[f"{name}_spikes"] = stats.get(f"{name}_spikes", 0) + int(s.sum())
            stats["windows"] = stats.get("windows", 0) + len(x16)
        return (((recon - t) ** 2).sum(axis=1) / float(self.bins << (2 * Q))).astype(np.float32)

    def scores(self, windows: np.ndarray, stats: dict | None = None, batch: int = 128) -> np.ndarray:
        """Float windows [N, L] in g -> scores [N], in slices (bounded memory)."""
        return np.concatenate([self.run(to_int16(windows[i : i + batch]), stats)
                               for i in range(0, len(windows), batch)] or [np.empty(0, np.float32)])

    # ------------------------------------------------------------------ storage
    def save(self, path) -> None:
        arrays = {"meta": np.array([self.window, self.timesteps, self.levels, self.s_in, self.hop]),
                  "stft_w": self.stft_w, "log2": self.log2, **_rq("target_rq", self.target_rq)}
        for name, h in zip(HEADS, self.heads()):
            arrays |= {f"{name}_w": h.w} | _rq(f"{name}_rq", h.rq)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> "IntESVAE":
        with np.load(path) as a:
            window, timesteps, levels, s_in, hop = (int(v) for v in a["meta"])
            heads = {n: Head(a[f"{n}_w"], _get_rq(a, f"{n}_rq")) for n in HEADS}
            return cls(window, timesteps, levels, s_in, a["stft_w"], hop, _get_rq(a, "target_rq"), **heads,
                       log2=a["log2"].astype(np.int64))

    @classmethod
    def from_card(cls, card_path, card: dict) -> "IntESVAE":
        return load_firmware(cls, card_path, card)

