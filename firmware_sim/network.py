"""The integer MRA-SNN: int8 weights, int32 accumulators, Q8 membranes, multi-bit spikes.

What one window goes through, all in integers (see arith.py for the operations):

  int16 samples -> standardize (integer mean, isqrt of the variance) -> int8, scale 2**-s_in
  -> encoder: three int8 convolutions (BN folded) -> requantize to Q8 currents
     -> channel attention: integer mean over length, two int8 layers, sigmoid table -> gate
  -> T timesteps of multi-bit neurons with dendritic gates (the same current each step)
  -> 3 blocks: int8 conv on spike counts (0..levels) -> Q8 current -> attention -> + spikes << 8
     (the residual on the membrane input) -> neurons -> max pool of counts
  -> spike counts summed over time and length -> int8 classifier -> Q8 logits
A network with both views (frontend=raw+envelope) also runs the envelope view (EnvelopeView,
envelope.py) on the centered int16 window; its counts join the raw view's before the classifier.

Neuron step, per channel c and position x (v, i in Q8, threshold 256):
  v = (v >> 1) + i                          leak 0.5 as a shift
  g = lut[clip(((mean_x(v) * m + r) >> k) + b + 128, 0, 255)]   dendritic gate, Q8
  s = clip(((v * g + 128) >> 8) >> 8, 0, levels)                 multi-bit spike count
  v = v - (s << 8)                                               reset by subtraction
Currents and membranes are saturated to int16, what the device stores them in.

A shrinking network (the ssnn pack) runs its blocks at fewer timesteps deeper in. Between two
stages an int8 time mix turns T_in spike frames into T_out input frames (m[o] = sum_t q[o,t] s[t],
in units of 2**-shift; the residual adds m << (8 - shift)), and after every stage but the last
an early classifier gives Q8 logits z. A window leaves there when its integer confidence says
its top softmax probability is at least the threshold p:
  sum_j exp_table[min((max(z) - z_j) >> 4, 178)] <= floor(2**15 / p)      (exp_table in Q15)
The table rounds each difference down to 1/16, so the sum errs on the high side: a window
leaves only when the float rule would let it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from edgesnn.firmware_sim.arith import (EXP_Q, EXP_STEP, GATE_Q, Q, Requant, exp_table, int_matmul, requantize, sat16,
                                        sigmoid_lut)
from edgesnn.firmware_sim.envelope import IntEnvelopeSpectrum, centered

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
class TimeMix:
    """Input frames of a stage from the previous stage's spike frames: q @ frames, 2**-shift."""

    q: np.ndarray  # int8 [T_out, T_in]
    shift: int  # 0..Q

@dataclass
class Head:
    """A classifier on spike counts summed over time and length."""

    w: np.ndarray  # int8 [classes, C]
    rq: Requant  # -> Q8 logits (1 / (T * length) folded in)

@dataclass
class EnvelopeView:
    """frontend=raw+envelope's second view: the envelope spectrum [N, bins, bands] of the
    centered int16 window (envelope.py), an int8 1x1 convolution of its bins into channels (both
    batch norms, the bins' scales and the spectrum's shift folded in), channel attention, neurons
    and blocks as in the raw view. Its spike counts join the raw view's at the classifier, shifted
    left by `count_shift`: its length is shorter by that power of two, so a count weighs as much
    firing rate as a raw one."""

    spectrum: IntEnvelopeSpectrum
    mix: Conv
    attention: Attention
    neurons: Neurons
    blocks: list[Block]
    count_shift: int

    def lengths(self) -> list[int]:
        """Its length (bands) at the mix's output and after each block (each pools by 2)."""
        return [self.spectrum.bands >> k for k in range(len(self.blocks) + 1)]


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
    # a shrinking network: timesteps, time mix (None: frames as they are) and early classifier
    # (none after the last) per block; a plain network leaves them empty
    stage_timesteps: list[int] = field(default_factory=list)
    mixes: list[TimeMix | None] = field(default_factory=list)
    exits: list[Head] = field(default_factory=list)
    exit_threshold: float = 1.0
    exp_table: np.ndarray = field(default_factory=exp_table)
    envelope: EnvelopeView | None = None  # frontend=raw+envelope: the second view (a plain network only)

    def __post_init__(self):
        self.stage_timesteps = list(self.stage_timesteps) or [self.timesteps] * len(self.blocks)
        self.mixes = list(self.mixes) or [None] * len(self.blocks)
        assert self.stage_timesteps[0] == self.timesteps and len(self.mixes) == len(self.blocks)
        assert len(self.exits) in (0, len(self.blocks) - 1)
        assert self.envelope is None or not self.exits

    def lengths(self) -> list[int]:
        """Signal length at the encoder output and after each block (each pools by 2)."""
        return [self.window // self.encoder[0].stride >> k for k in range(len(self.blocks) + 1)]

    # ------------------------------------------------------------------ the arithmetic
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

    def encode(self, i: np.ndarray, n: Neurons) -> list[np.ndarray]:
        """Direct encoding: the same current drives the neurons at every timestep -> spike frames."""
        spikes, v = [], np.zeros_like(i)
        for _ in range(self.timesteps):
            s, v = self.neuron_step(v, i, n)
            spikes.append(s)
        return spikes

    def envelope_counts(self, x16: np.ndarray, stats: dict | None = None) -> np.ndarray:
        """The envelope view's spike counts [N, C], summed over time and length, << count_shift."""
        e = self.envelope
        i = sat16(self.attend(self.conv(e.spectrum(centered(x16)), e.mix), e.attention))
        spikes = self.encode(i, e.neurons)
        for k, block in enumerate(e.blocks):
            if stats is not None:
                _count(stats, f"env_block{k}_input_spikes", sum(int(f.sum()) for f in spikes))
                _count(stats, f"env_block{k}_input_nonzero", sum(int((f != 0).sum()) for f in spikes))
            spikes = self.block(spikes, 0, block)
        return sum(s.sum(axis=2) for s in spikes) << e.count_shift

    def neuron_step(self, v: np.ndarray, i: np.ndarray, n: Neurons) -> tuple[np.ndarray, np.ndarray]:
        if n.gate is None:
            return lif_step(v, i, n.levels)
        v = sat16((v >> 1) + i)
        mean = v.sum(axis=2) >> int(math.log2(v.shape[2]))
        g = self.lut[np.clip(requantize(mean, n.gate) + 128, 0, 255)][:, :, None]
        s = np.clip(((v * g + (1 << (GATE_Q - 1))) >> GATE_Q) >> Q, 0, n.levels)
        return s, v - (s << Q)

    def mix(self, spikes: list[np.ndarray], m: TimeMix | None) -> tuple[list[np.ndarray], int]:
        """A stage's input frames and their scale 2**-shift (spike counts: shift 0)."""
        if m is None:
            return spikes, 0
        return [sum(int(m.q[o, t]) * s for t, s in enumerate(spikes)) for o in range(m.q.shape[0])], m.shift

    def block(self, frames: list[np.ndarray], shift: int, block: Block) -> list[np.ndarray]:
        """One block over its timesteps: input frames -> pooled spike counts."""
        v, out = None, []
        for s in frames:
            i = sat16(self.attend(self.conv(s, block.conv), block.attention) + (s << (Q - shift)))
            v = np.zeros_like(i) if v is None else v
            s_out, v = self.neuron_step(v, i, block.neurons)
            out.append(s_out.reshape(*s_out.shape[:2], -1, 2).max(axis=3))  # max pool 2
        return out

    @staticmethod
    def exit_limit(threshold: float) -> np.float32:
        """floor(2**15 / threshold) in float32, as the ONNX graph computes it (0: inf)."""
        with np.errstate(divide="ignore"):
            return np.floor(np.float32(1 << EXP_Q) / np.float32(threshold))

    def sure(self, logits: np.ndarray, limit: np.float32) -> np.ndarray:
        """Per window: whether its integer confidence passes the exit limit."""
        d = (logits.max(axis=1, keepdims=True) - logits) >> EXP_STEP
        return self.exp_table[np.minimum(d, len(self.exp_table) - 1)].sum(axis=1) <= limit

    def run(self, x16: np.ndarray, stats: dict | None = None, exit_threshold: float | None = None) -> np.ndarray:
        """int16 windows [N, L] -> Q8 logits [N, classes]. In a shrinking network each window gets
        the logits of its exit stage (`exit_threshold`, default the network's own; above 1 every
        window runs every stage). `stats`, if given, collects spike, operation and exit counts
        per layer (for the budget)."""
        x = standardize(x16, self.s_in)[:, None, :]
        i_enc = np.concatenate([self.conv(x, c) for c in self.encoder], axis=1)
        spikes = self.encode(sat16(self.attend(i_enc, self.encoder_attention)), self.encoder_neurons)
        limit = self.exit_limit(self.exit_threshold if exit_threshold is None else exit_threshold)
        out = np.zeros((len(x16), len(self.classes)), dtype=np.int64)
        active, last = np.arange(len(x16)), len(self.blocks) - 1
        for k, block in enumerate(self.blocks):
            frames, shift = self.mix(spikes, self.mixes[k])
            if stats is not None:
                _count(stats, f"block{k}_windows", len(active))
                _count(stats, f"block{k}_input_spikes", sum(int(f.sum()) for f in frames) if shift == 0 else 0)
                _count(stats, f"block{k}_input_nonzero", sum(int((f != 0).sum()) for f in frames))
            spikes = self.block(frames, shift, block)
            if k < last and not self.exits:
                continue
            head = Head(self.fc_w, self.fc_rq) if k == last else self.exits[k]
            counts = sum(s.sum(axis=2) for s in spikes)  # [N, C]
            if k == last and self.envelope is not None:  # (no exits: every window is active)
                counts = np.concatenate([counts, self.envelope_counts(x16, stats)], axis=1)
            logits = requantize(int_matmul(counts, head.w.T), head.rq)
            leave = np.ones(len(active), dtype=bool) if k == last else self.sure(logits, limit)
            out[active[leave]] = logits[leave]
            if stats is not None:
                _count(stats, f"exit{k}_windows", int(leave.sum()))
                _count(stats, "classifier_input_spikes", int(counts[leave].sum()))
            if leave.all():
                break
            spikes, active = [s[~leave] for s in spikes], active[~leave]
        if stats is not None:
            stats["windows"] = stats.get("windows", 0) + x16.shape[0]
        return out

    # ------------------------------------------------------------------ storage
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"classes": np.array(self.classes), "meta": np.array([self.window, self.timesteps, self.s_in]),
               "lut": self.lut, "fc_w": self.fc_w, **_rq("fc_rq", self.fc_rq)}
        for k, c in enumerate(self.encoder):
            out |= _conv(f"enc{k}", c)
        out |= _att("enc_att", self.encoder_attention) | _neu("enc_neu", self.encoder_neurons)
        for k, b in enumerate(self.blocks):
            out |= _conv(f"b{k}_conv", b.conv) | _att(f"b{k}_att", b.attention) | _neu(f"b{k}_neu", b.neurons)
        if self.exits:  # a shrinking network; a plain one stores exactly what it always did
            out |= {"stage_timesteps": np.array(self.stage_timesteps), "exit_threshold": np.array(self.exit_threshold),
                    "exp_table": self.exp_table}
            for k, m in enumerate(self.mixes):
                out |= {f"mix{k}_q": m.q, f"mix{k}_shift": np.array(m.shift)} if m is not None else {}
            for k, h in enumerate(self.exits):
                out |= {f"exit{k}_w": h.w} | _rq(f"exit{k}_rq", h.rq)
        if self.envelope is not None:  # likewise: only a network with both views stores these
            e = self.envelope
            out |= {"env_bank": e.spectrum.bank, "env_dft": e.spectrum.dft,
                    "env_geom": np.array([e.spectrum.stride, e.spectrum.pad, e.spectrum.shift, e.count_shift])}
            out |= _conv("env_mix", e.mix) | _att("env_att", e.attention) | _neu("env_neu", e.neurons)
            for k, b in enumerate(e.blocks):
                out |= _conv(f"env_b{k}_conv", b.conv) | _att(f"env_b{k}_att", b.attention) | _neu(f"env_b{k}_neu", b.neurons)
        return out

    @classmethod
    def from_arrays(cls, a) -> "IntMRASNN":
        window, timesteps, s_in = (int(v) for v in a["meta"])
        n_enc = sum(1 for k in a if k.startswith("enc") and k.endswith("_w") and k[3].isdigit())
        n_blocks = sum(1 for k in a if k.startswith("b") and k.endswith("_conv_w"))
        net = cls(
            classes=[str(c) for c in a["classes"]], window=window, timesteps=timesteps, s_in=s_in,
            encoder=[_get_conv(a, f"enc{k}") for k in range(n_enc)],
            encoder_attention=_get_att(a, "enc_att"), encoder_neurons=_get_neu(a, "enc_neu"),
            blocks=[Block(_get_conv(a, f"b{k}_conv"), _get_att(a, f"b{k}_att"), _get_neu(a, f"b{k}_neu"))
                    for k in range(n_blocks)],
            fc_w=a["fc_w"], fc_rq=_get_rq(a, "fc_rq"), lut=a["lut"], envelope=_envelope(a, window),
            **_stages(a, n_blocks))
        counts = sum(c.w.shape[0] for c in net.encoder) + (net.envelope.mix.w.shape[0] if net.envelope else 0)
        if net.fc_w.ndim != 2 or net.fc_w.shape != (len(net.classes), counts):
            raise ValueError(f"its classifier fc_w {list(net.fc_w.shape)} does not read the {counts} spike counts of "
                             f"its {'two views' if net.envelope else 'view'} for {len(net.classes)} classes")
        return net

    def save(self, path) -> None:
        np.savez_compressed(path, **self.to_arrays())

    @classmethod
    def load(cls, path) -> "IntMRASNN":
        with np.load(path) as f:
            return cls.from_arrays({k: f[k] for k in f.files})

    @classmethod
    def from_card(cls, card_path, card: dict) -> "IntMRASNN":
        net = load_firmware(cls, card_path, card)
        front = (card.get("pack_options") or {}).get("frontend", "raw")
        if (front == "raw+envelope") != (net.envelope is not None):  # a card beside another model's network
            from edgesnn.errors import EdgesnnError

            raise EdgesnnError(f"{firmware_path(card_path, card)}: its integer network has "
                               f"{'an' if net.envelope is not None else 'no'} envelope view, but its card's front end "
                               f"is {front}")
        return net

    def q8_logits(self, windows: np.ndarray, stats: dict | None = None, batch: int = 128,
                  exit_threshold: float | None = None) -> np.ndarray:
        """Float windows [N, L] in g -> Q8 logits [N, classes], in slices (bounded memory)."""
        return np.concatenate([self.run(to_int16(windows[i : i + batch]), stats, exit_threshold)
                               for i in range(0, len(windows), batch)])

def standardize(x16: np.ndarray, s_in: int) -> np.ndarray:
    """int16 samples [N, L] -> int8 [N, L]: zero mean, unit RMS in units of 2**-s_in."""
    c = centered(x16)
    n = c.shape[1]
    var = (c * c).sum(axis=1) // n
    rms = np.array([max(math.isqrt(int(v)), 1) for v in var], dtype=np.int64)[:, None]
    return np.clip(((c << (s_in + 1)) + rms) // (2 * rms), -127, 127)  # round half up

def lif_step(v: np.ndarray, i: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """One step of the plain multi-bit LIF neuron (no dendritic gate): (spike counts, membrane)."""
    v = sat16((v >> 1) + i)
    s = np.clip(v >> Q, 0, levels)
    return s, v - (s << Q)

QUANTIZED_PACKS = ("mra_snn", "ssnn", "esvae")  # whose networks `export --quantize` covers (edgesnn.export.quantizable)

def firmware_path(card_path, card: dict) -> Path:
    """The integer network (.npz) a quantized model card names, refused unless its sha256 matches."""
    from edgesnn.errors import EdgesnnError
    from edgesnn.sensors.cwru import sha256_of

    if "quantization" not in card:
        from edgesnn.models import SHIPPED_DIR

        twin = Path(card_path).with_name(f"{Path(card_path).stem}-int8.json")  # its integer form, if beside it
        shipped = twin.resolve().is_relative_to(SHIPPED_DIR.resolve())
        pack = card.get("pack")
        raise EdgesnnError(f"{card_path}: not a quantized model; the firmware runs integer networks: "
                           + (f"--model {twin.stem if shipped else twin}" if twin.is_file() else
                              "export the checkpoint with `edgesnn export --quantize`" if pack in QUANTIZED_PACKS else
                              f"`edgesnn export --quantize` makes one of an MRA-SNN, ssnn or esvae checkpoint, not of {pack}"))
    q = card["quantization"]
    if not isinstance(q, dict) or not isinstance(q.get("firmware"), str) or not isinstance(q.get("firmware_sha256"), str):
        raise EdgesnnError(f"{card_path}: its quantization names no integer network (firmware, firmware_sha256)")
    if Path(q["firmware"]).name != q["firmware"]:
        raise EdgesnnError(f"{card_path}: firmware {q['firmware']!r} must be a file beside the card")
    path = Path(card_path).parent / q["firmware"]
    if not path.is_file() or sha256_of(path) != q["firmware_sha256"]:
        raise EdgesnnError(f"{path}: integer network missing or its sha256 differs from the card")
    return path


def load_firmware(cls, card_path, card: dict):
    """`cls.load` of the card's integer network; a file that holds another network, or is
    damaged, is one line."""
    from edgesnn.errors import EdgesnnError

    path = firmware_path(card_path, card)
    try:
        return cls.load(path)
    except Exception as exc:
        raise EdgesnnError(f"{path}: not an integer network of the kind its card describes "
                           f"({cls.__name__}; {type(exc).__name__}: {str(exc)[:120]})") from None

def _count(stats: dict, key: str, n: int) -> None:
    stats[key] = stats.get(key, 0) + n

def _stages(a, n_blocks: int) -> dict:
    """The shrinking network's fields, if the arrays hold one."""
    if "stage_timesteps" not in a:
        return {}
    return {"stage_timesteps": [int(t) for t in a["stage_timesteps"]], "exit_threshold": float(a["exit_threshold"]),
            "exp_table": a["exp_table"].astype(np.int64),
            "mixes": [TimeMix(a[f"mix{k}_q"], int(a[f"mix{k}_shift"])) if f"mix{k}_q" in a else None
                      for k in range(n_blocks)],
            "exits": [Head(a[f"exit{k}_w"], _get_rq(a, f"exit{k}_rq")) for k in range(n_blocks - 1)]}

def _envelope(a, window: int) -> EnvelopeView | None:
    """The second view's fields, if the arrays hold one (its blocks: as many as env_b<k>_conv arrays).
    Arrays that hold part of one, or one whose shapes do not fit together, raise (load_firmware
    words it)."""
    if "env_bank" not in a:
        if any(k.startswith("env_") for k in a):
            raise KeyError("env_bank")
        return None
    stride, pad, shift, count_shift = (int(v) for v in a["env_geom"])
    n_blocks = sum(1 for k in a if k.startswith("env_b") and k.endswith("_conv_w"))
    e = EnvelopeView(IntEnvelopeSpectrum(a["env_bank"], stride, pad, a["env_dft"], shift), _get_conv(a, "env_mix"),
                     _get_att(a, "env_att"), _get_neu(a, "env_neu"),
                     [Block(_get_conv(a, f"env_b{k}_conv"), _get_att(a, f"env_b{k}_att"), _get_neu(a, f"env_b{k}_neu"))
                      for k in range(n_blocks)], count_shift)
    sp = e.spectrum
    bank, dft = sp.bank, sp.dft
    n = dft.shape[1] if dft.ndim == 2 else 0
    if not (bank.dtype == dft.dtype == np.int8 and bank.ndim == dft.ndim == 2 and bank.shape[0] % 2 == 0
            and dft.shape[0] % 2 == 0 and bank.shape[0] and dft.shape[0] and stride >= 1 and pad >= 0
            and n >= 1 and n & (n - 1) == 0 and window // stride in (n, 2 * n) and window % stride == 0
            and (window + 2 * pad - bank.shape[1]) // stride + 1 == window // stride and 0 <= shift < 63
            and 0 <= count_shift < 31 and e.mix.w.shape[1:] == (sp.bins, 1) and sp.bands >> n_blocks >= 1):
        raise ValueError(f"envelope view's arrays do not fit together (env_bank {bank.dtype}{list(bank.shape)}, "
                         f"env_dft {dft.dtype}{list(dft.shape)}, env_geom {[stride, pad, shift, count_shift]}, "
                         f"env_mix_w {list(e.mix.w.shape)})")
    return e

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
