"""The integer MRA-SNN: int8 weights, int32 accumulators, Q8 membranes, multi-bit spikes.

What one window goes through, all in integers (see arith.py for the operations):

  int16 samples -> standardize (integer mean, isqrt of the variance) -> int8, scale 2**-s_in
  -> encoder: three int8 convolutions (BN folded) -> requantize to Q8 currents
     -> channel attention: integer mean over length, two int8 layers, sigmoid table -> gate
  -> T timesteps of multi-bit neurons with dendritic gates (the same current each step)
  -> 3 blocks: int8 conv on spike counts (0..levels) -> Q8 current -> attention -> + spikes << 8
     (the residual on the membrane input) -> neurons -> max pool of counts
  -> spike counts summed over time and length -> int8 classifier -> Q8 logits

Neuron step, per channel c and position x (v, i in Q8, threshold 256):
  v = (v >> 1) + i                          leak 0.5 as a shift
  g = lut[clip(((mean_x(v) * m + r) >> k) + b + 128, 0, 255)]   dendritic gate, Q8
  s = clip(((v * g + 128) >> 8) >> 8, 0, levels)                 multi-bit spike count
  v = v - (s << 8)                                               reset by subtraction
Currents and membranes are saturated to int16, what the device stores them in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from edgesnn.firmware_sim.arith import GATE_Q, Q, Requant, int_matmul, requantize, sat16, sigmoid_lut

@dataclass
class Conv:
    w: np.ndarray  # int8 [C_out, C_in, K]
    stride: int
    pad: int
    rq: Requant  # accumulator -> Q8 current (BN folded in)

@dataclass
class Attention:
    """Squeeze-excitation: gate = sigmoid(W2 relu(W1 mean(x) + b1) + b2), per channel."""

    w1: np.ndarray  # int8 [H, C]
    rq1: Requant  # -> Q8 hidden
    w2: np.ndarray  # int8 [C, H]
    rq2: Requant  # -> Q4 table index

@dataclass
class Neurons:
    levels: int  # 2**bits - 1
    gate: Requant | None  # mean membrane (Q8) -> Q4 table index; None: no dendritic filter

@dataclass
class Block:
    conv: Conv
    attention: Attention
    neurons: Neurons

@dataclass
class IntMRASNN:
    classes: list[str]
    window: int
    timesteps: int
    s_in: int  # input samples are int8 in units of 2**-s_in standard deviations
    encoder: list[Conv]
    encoder_attention: Attention
    encoder_neurons: Neurons
    blocks: list[Block]
    fc_w: np.ndarray  # int8 [classes, C]
    fc_rq: Requant  # summed spike counts -> Q8 logits
    lut: np.ndarray = field(default_factory=sigmoid_lut)

    # ------------------------------------------------------------------ the arithmetic
    def standardize(self, x16: np.ndarray) -> np.ndarray:
        """int16 samples [N, L] -> int8 [N, L]: zero mean, unit RMS in units of 2**-s_in."""
        x = x16.astype(np.int64)
        n = x.shape[1]
        mean = (x.sum(axis=1, keepdims=True) + n // 2) // n
        c = x - mean
        var = (c * c).sum(axis=1) // n
        rms = np.array([max(math.isqrt(int(v)), 1) for v in var], dtype=np.int64)[:, None]
        return np.clip(((c << (self.s_in + 1)) + rms) // (2 * rms), -127, 127)  # round half up

    def conv(self, x: np.ndarray, layer: Conv) -> np.ndarray:
        """[N, C_in, L] integers -> Q8 currents [N, C_out, L_out]."""
        c_out, c_in, k = layer.w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (layer.pad, layer.pad)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, k, axis=2)[:, :, :: layer.stride]  # [N, C_in, L_out, K]
        cols = cols.transpose(0, 2, 1, 3).reshape(x.shape[0], cols.shape[2], c_in * k)
        acc = int_matmul(cols, layer.w.reshape(c_out, c_in * k).T).transpose(0, 2, 1)  # [N, C_out, L_out]
        return sat16(requantize(acc, layer.rq))

    def attend(self, i: np.ndarray, a: Attention) -> np.ndarray:
        """Q8 currents [N, C, L] scaled by their channel gates."""
        mean = i.sum(axis=2) >> int(math.log2(i.shape[2]))  # L is a power of two
        h = np.maximum(requantize(int_matmul(mean, a.w1.T), a.rq1), 0)
        pre = requantize(int_matmul(h, a.w2.T), a.rq2)
        gate = self.lut[np.clip(pre + 128, 0, 255)]
        return (i * gate[:, :, None] + (1 << (GATE_Q - 1))) >> GATE_Q

    def neuron_step(self, v: np.ndarray, i: np.ndarray, n: Neurons) -> tuple[np.ndarray, np.ndarray]:
        v = sat16((v >> 1) + i)
        if n.gate is not None:
            mean = v.sum(axis=2) >> int(math.log2(v.shape[2]))
            g = self.lut[np.clip(requantize(mean, n.gate) + 128, 0, 255)][:, :, None]
            u = (v * g + (1 << (GATE_Q - 1))) >> GATE_Q
        else:
            u = v
        s = np.clip(u >> Q, 0, n.levels)
        return s, v - (s << Q)

    def run(self, x16: np.ndarray, stats: dict | None = None) -> np.ndarray:
        """int16 windows [N, L] -> Q8 logits [N, classes]. `stats`, if given, collects spike and
        synaptic-operation counts per layer (for the budget)."""
        x = self.standardize(x16)[:, None, :]
        i_enc = np.concatenate([self.conv(x, c) for c in self.encoder], axis=1)
        i_enc = sat16(self.attend(i_enc, self.encoder_attention))
        spikes, v = [], np.zeros_like(i_enc)
        for _ in range(self.timesteps):  # direct encoding: the same current every step
            s, v = self.neuron_step(v, i_enc, self.encoder_neurons)
            spikes.append(s)
        for k, block in enumerate(self.blocks):
            if stats is not None:
                stats.setdefault(f"block{k}_input_spikes", 0)
                stats[f"block{k}_input_spikes"] += int(sum(s.sum() for s in spikes))
                stats.setdefault(f"block{k}_input_nonzero", 0)
                stats[f"block{k}_input_nonzero"] += int(sum((s > 0).sum() for s in spikes))
            v, out = None, []
            for s in spikes:
                i = sat16(self.attend(self.conv(s, block.conv), block.attention) + (s << Q))
                v = np.zeros_like(i) if v is None else v
                s_out, v = self.neuron_step(v, i, block.neurons)
                out.append(s_out.reshape(*s_out.shape[:2], -1, 2).max(axis=3))  # max pool 2
            spikes = out
        counts = sum(s.sum(axis=2) for s in spikes)  # [N, C]
        if stats is not None:
            stats["windows"] = stats.get("windows", 0) + x16.shape[0]
            stats["classifier_input_spikes"] = stats.get("classifier_input_spikes", 0) + int(counts.sum())
        return requantize(int_matmul(counts, self.fc_w.T), self.fc_rq)

    # ------------------------------------------------------------------ storage
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"classes": np.array(self.classes), "meta": np.array([self.window, self.timesteps, self.s_in]),
               "lut": self.lut, "fc_w": self.fc_w, **_rq("fc_rq", self.fc_rq)}
        for k, c in enumerate(self.encoder):
            out |= _conv(f"enc{k}", c)
        out |= _att("enc_att", self.encoder_attention) | _neu("enc_neu", self.encoder_neurons)
        for k, b in enumerate(self.blocks):
            out |= _conv(f"b{k}_conv", b.conv) | _att(f"b{k}_att", b.attention) | _neu(f"b{k}_neu", b.neurons)
        return out

    @classmethod
    def from_arrays(cls, a) -> "IntMRASNN":
        window, timesteps, s_in = (int(v) for v in a["meta"])
        n_enc = sum(1 for k in a if k.startswith("enc") and k.endswith("_w") and k[3].isdigit())
        n_blocks = sum(1 for k in a if k.startswith("b") and k.endswith("_conv_w"))
        return cls(
            classes=[str(c) for c in a["classes"]], window=window, timesteps=timesteps, s_in=s_in,
            encoder=[_get_conv(a, f"enc{k}") for k in range(n_enc)],
            encoder_attention=_get_att(a, "enc_att"), encoder_neurons=_get_neu(a, "enc_neu"),
            blocks=[Block(_get_conv(a, f"b{k}_conv"), _get_att(a, f"b{k}_att"), _get_neu(a, f"b{k}_neu"))
                    for k in range(n_blocks)],
            fc_w=a["fc_w"], fc_rq=_get_rq(a, "fc_rq"), lut=a["lut"])

    def save(self, path) -> None:
        np.savez_compressed(path, **self.to_arrays())

    @classmethod
    def load(cls, path) -> "IntMRASNN":
        with np.load(path) as f:
            return cls.from_arrays({k: f[k] for k in f.files})

    @classmethod
    def from_card(cls, card_path, card: dict) -> "IntMRASNN":
        """The integer network a quantized model card names, refused unless its sha256 matches."""
        from edgesnn.errors import EdgesnnError
        from edgesnn.sensors.cwru import sha256_of

        if "quantization" not in card:
            raise EdgesnnError(f"{card_path}: not a quantized model; export it with `edgesnn export --quantize`")
        path = Path(card_path).parent / card["quantization"]["firmware"]
        if not path.is_file() or sha256_of(path) != card["quantization"]["firmware_sha256"]:
            raise EdgesnnError(f"{path}: integer network missing or its sha256 differs from the card")
        return cls.load(path)

    def q8_logits(self, windows: np.ndarray, stats: dict | None = None, batch: int = 128) -> np.ndarray:
        """Float windows [N, L] in g -> Q8 logits [N, classes], in slices (bounded memory)."""
        return np.concatenate([self.run(to_int16(windows[i : i + batch]), stats)
                               for i in range(0, len(windows), batch)])

def _rq(name: str, rq: Requant) -> dict:
    return {f"{name}_{f.name}": getattr(rq, f.name) for f in fields(Requant)}

def _get_rq(a, name: str) -> Requant:
    return Requant(*(a[f"{name}_{f.name}"].astype(np.int64) for f in fields(Requant)))

def _conv(name: str, c: Conv) -> dict:
    return {f"{name}_w": c.w, f"{name}_geom": np.array([c.stride, c.pad])} | _rq(f"{name}_rq", c.rq)

def _get_conv(a, name: str) -> Conv:
    stride, pad = (int(v) for v in a[f"{name}_geom"])
    return Conv(a[f"{name}_w"], stride, pad, _get_rq(a, f"{name}_rq"))

def _att(name: str, t: Attention) -> dict:
    return {f"{name}_w1": t.w1, f"{name}_w2": t.w2} | _rq(f"{name}_rq1", t.rq1) | _rq(f"{name}_rq2", t.rq2)

def _get_att(a, name: str) -> Attention:
    return Attention(a[f"{name}_w1"], _get_rq(a, f"{name}_rq1"), a[f"{name}_w2"], _get_rq(a, f"{name}_rq2"))

def _neu(name: str, n: Neurons) -> dict:
    return {f"{name}_levels": np.array(n.levels)} | (_rq(f"{name}_gate", n.gate) if n.gate is not None else {})

def _get_neu(a, name: str) -> Neurons:
    return Neurons(int(a[f"{name}_levels"]), _get_rq(a, f"{name}_gate") if f"{name}_gate_m" in a else None)

def to_int16(x: np.ndarray) -> np.ndarray:
    """Float windows (g) -> int16 samples, scaled per window to the full range. Standardization
    makes the network blind to gain, so this is what an ADC with any fixed gain would give."""
    x = np.asarray(x, dtype=np.float32)
    # float32, one rounding per operation, as the ONNX graph does it (onnx_graph.py)
    peak = np.maximum(np.abs(x).max(axis=-1, keepdims=True), np.float32(1e-30))
    return np.round(x * (np.float32(32767.0) / peak)).astype(np.int16)
