"""The integer MRA-SNN as the ONNX graph a gateway runs: int8 weights, exact integer spikes,
float32 currents and membranes (needs `onnx`).

onnx_graph.py writes the same network bit for bit as the simulator computes it; at batch 1
onnxruntime spends about a microsecond on each node whatever it does, and exactness costs nodes
(float64 requantization, floors, casts): 4x WDCNN's latency. This graph keeps what makes the
network the quantized one and lets float32 carry the rest:
- weights are the integer network's int8 tensors, each times its per-channel requantization
  scale m / 2**k (a Cast and a Mul of constants, folded once when onnxruntime loads the model);
  the requantization bias is the convolution's or Gemm's bias;
- spikes are uint8 tensors read through DequantizeLinear with scale 1 and zero point 0: exact
  integer counts 0..levels, as in the firmware (a count is floored where it becomes uint8);
- the sigmoid gates are the firmware's own 256-entry table, indexed by the truncation of the
  requantized pre-activation (the firmware's floor);
- the input is standardized by one LayerNormalization, then rounded to int8 steps;
- what is left of the firmware's rounding: the requantizations' round-half-up and the floors of
  the integer means are replaced by the value itself (they average to it: -1/2 for a floor, which
  the biases carry).
So the graph is not bit for bit the firmware: its logits differ by a spike here and there, and
`write_checked` (onnx_graph.py) keeps it only where it agrees with the simulator on the argmax of
at least MIN_AGREEMENT of the real windows it is checked on, and writes the exact graph otherwise. Measured on the shipped default:
92 nodes run once onnxruntime has folded the constants, against 169 for the exact graph, and
2.4 to 2.6x WDCNN's latency at batch 1 instead of 4x.

Networks whose per-window decisions are integer rules (a shrinking network's early exits, the
anomaly detector's threshold) keep the exact graph.

A network with both views (frontend=raw+envelope) has its envelope view here too, on the float
input: envelope.py's int8 Morlet and DFT kernels in float32, without its floors. It has no exact
graph: where it fails the check by class on anything but a few near ties (NEAR_TIE_LOGITS), its
export is refused.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgesnn.firmware_sim.arith import GATE_Q, INT16, Q, Requant
from edgesnn.firmware_sim.envelope import IntEnvelopeSpectrum
from edgesnn.firmware_sim.network import Attention, Conv, IntMRASNN, Neurons
from edgesnn.firmware_sim.onnx_graph import OPSET, _Builder, _exact_spikes, _out_bound, _split
from edgesnn.framing import framed_kernel

F32 = TensorProto.FLOAT
MIN_AGREEMENT = 0.999  # argmax agreement with the simulator on real windows, else the exact graph
# A network with both views has no exact graph; its gateway graph may still disagree with the
# simulator on near ties: windows where the simulator's class leads the graph's by less than this
# (the graph's float32 membranes move a logit by up to about half a logit: 0.36-0.49 measured on
# light-views networks), on at most this share of the real windows.
NEAR_TIE_LOGITS = 0.5
MAX_NEAR_TIE_SHARE = 0.01


def fits(net) -> bool:
    """Whether this graph can carry `net`: a plain integer MRA-SNN (no early exits, no time mix)."""
    return isinstance(net, IntMRASNN) and not net.exits and all(m is None for m in net.mixes)


def _scale(rq: Requant) -> np.ndarray:
    return rq.m * 2.0 ** -rq.shift.astype(np.float64)


def _weights(b: _Builder, w: np.ndarray, scale: np.ndarray, shape: list[int]) -> str:
    """int8 `w` times a per-channel `scale` (reshaped to `shape`), folded at load."""
    return b.op("Mul", b.op("Cast", b.const(w, "w_int8", np.int8), to=F32),
                b.const(np.asarray(scale).reshape(shape), "w_scale", np.float32))


def _conv(b: _Builder, x: str, layers: list[Conv], in_bound: float, length: int,
          gain: float = 1.0) -> tuple[str, float]:
    """Q8 currents of the convolutions `layers` of x [N, C, length] (|x| <= in_bound; x is
    `gain` times what the firmware convolves), concatenated on channels, and a bound on their
    magnitude. A strided one-channel convolution runs over stride-long frames (edgesnn/framing.py)."""
    outs = []
    for c in layers:
        w, scale, bias = c.w, _scale(c.rq) * gain, b.const(c.rq.bias, "bias", np.float32)
        if c.w.shape[1] == 1 and c.stride > 1:
            w, lead, right = framed_kernel(c.w, c.stride, c.pad, length)
            frames = b.once(("frames", x, c.stride), lambda c=c: b.op("Transpose", b.op(
                "Reshape", x, b.const([-1, length // c.stride, c.stride], "shape", np.int64)), perm=[0, 2, 1]))
            outs.append(b.op("Conv", frames, _weights(b, w, scale, [-1, 1, 1]), bias, pads=[lead, right],
                             kernel_shape=[w.shape[2]]))
        else:
            outs.append(b.op("Conv", x, _weights(b, w, scale, [-1, 1, 1]), bias, strides=[c.stride],
                             pads=[c.pad, c.pad], kernel_shape=[w.shape[2]]))
    current = outs[0] if len(outs) == 1 else b.op("Concat", *outs, axis=1)
    acc_bound = np.concatenate([in_bound * np.abs(c.w.astype(np.float64)).reshape(c.w.shape[0], -1).sum(axis=1)
                                for c in layers])
    rq = Requant(*(np.concatenate([getattr(c.rq, f) for c in layers]) for f in ("m", "shift", "bias")))
    bound = float(_out_bound(rq, acc_bound).max())
    if bound > INT16[1]:  # the firmware saturates currents to int16
        return b.clip(current, *INT16), float(-INT16[0])
    return current, bound


def _dense(b: _Builder, x: str, w: np.ndarray, rq: Requant, bias: np.ndarray) -> str:
    """x [N, in] @ (int8 w [out, in] times the requantization scale).T + bias, one Gemm."""
    return b.op("Gemm", x, _weights(b, w.T, _scale(rq), [1, -1]), b.const(bias, "bias", np.float32))


def _diagonal(b: _Builder, d: np.ndarray) -> str:
    """The matrix diag(d), built when onnxruntime loads the model (the file holds d alone)."""
    zeros = b.op("ConstantOfShape", b.const([len(d), len(d)], "shape", np.int64),
                 value=helper.make_tensor("zero", F32, [1], [0.0]))
    return b.op("Mul", b.op("EyeLike", zeros), b.const(d.reshape(1, -1), "diagonal", np.float32))


def _gate(b: _Builder, pre: str, table: str) -> str:
    """The sigmoid table at floor(pre) (pre already offset by 128): the Cast truncates."""
    return b.op("Gather", table, b.op("Cast", b.clip(pre, 0.0, 255.0), to=TensorProto.INT64))


def _mean(b: _Builder, x: str) -> str:
    return b.op("ReduceMean", x, b.const([-1], "axes", np.int64), keepdims=0)


def _attend(b: _Builder, i: str, a: Attention, tables: dict) -> str:
    """Currents [N, C, L] times their channel gates. The firmware floors the mean (-1/2 on
    average, carried by the first bias) and rounds the hidden layer; the index is floored."""
    s1 = _scale(a.rq1)
    h = b.op("Relu", _dense(b, _mean(b, i), a.w1, a.rq1, a.rq1.bias - 0.5 * s1 * a.w1.astype(np.float64).sum(axis=1)))
    gate = _gate(b, _dense(b, h, a.w2, a.rq2, a.rq2.bias + 128.5), tables["attention"])  # [N, C, 1]
    return b.op("Mul", i, gate)


def _neuron_step(b: _Builder, v: str | None, i: str, n: Neurons, tables: dict, last: bool) -> tuple[str, str | None]:
    """One timestep (network.neuron_step): spike counts clipped to [0, levels] (floored unless
    `last`: its Cast to uint8 floors it) and the new membrane (None after the last step)."""
    v = i if v is None else b.clip(b.op("Add", b.op("Floor", b.op("Mul", v, b.const(0.5, dtype=np.float32))), i), *INT16)
    if n.gate is None:
        s = b.op("Mul", v, b.const(2.0**-Q, dtype=np.float32))
    else:  # ((v*g + 128) >> 8) >> 8 = floor(v * g / 2**16 + 2**-9); the table holds g / 2**16
        sg = _scale(n.gate)
        pre = b.op("Gemm", _mean(b, v), _diagonal(b, sg),
                   b.const(n.gate.bias + 128.5 - 0.5 * sg, "bias", np.float32))
        s = b.op("Add", b.op("Mul", v, _gate(b, pre, tables["neuron"])), b.const(2.0 ** -(Q + 1), dtype=np.float32))
    if last:
        return b.clip(s, 0.0, float(n.levels)), None
    s = b.clip(b.op("Floor", s), 0.0, float(n.levels))
    return s, b.op("Sub", v, b.op("Mul", s, b.const(float(1 << Q), dtype=np.float32)))


def _neurons(b: _Builder, currents: list[str], n: Neurons, tables: dict) -> str:
    """Step through time -> spike counts, timesteps folded into the batch ([T*N, C, L])."""
    v, out = None, []
    for t, i in enumerate(currents):
        s, v = _neuron_step(b, v, i, n, tables, last=t == len(currents) - 1)
        out.append(s)
    return out[0] if len(out) == 1 else b.op("Concat", *out, axis=0)


def _counts(b: _Builder, spikes: str, scale: float = 1.0) -> str:
    return b.op("DequantizeLinear", spikes, b.const(scale, "scale", np.float32), b.const(0, "zero_point", np.uint8))


def _view(b: _Builder, net: IntMRASNN, i_enc: str, neurons: Neurons, blocks: list, lengths: list[int],
          channels: int, tables: dict) -> str:
    """One view from its encoder's gated current [N, channels, lengths[0]]: neurons, blocks ->
    the spike counts summed over time and length [N, channels] (float32, exact)."""
    levels = neurons.levels
    spikes = _exact_spikes(b, _neurons(b, [i_enc] * net.timesteps, neurons, tables))
    for k, block in enumerate(blocks):
        current, bound = _conv(b, _counts(b, spikes), [block.conv], float(levels), lengths[k])
        i = b.op("Add", _attend(b, current, block.attention, tables), _counts(b, spikes, float(1 << Q)))
        if bound + levels * (1 << Q) > INT16[1]:  # |gated current| <= |current|; the residual
            i = b.clip(i, *INT16)
        steps = [i] if net.timesteps == 1 else _split(b, i, net.timesteps)
        s = _neurons(b, steps, block.neurons, tables)
        spikes = _exact_spikes(b, b.op("MaxPool", s, kernel_shape=[2], strides=[2]))
    counts = _counts(b, spikes)
    if net.timesteps == 1:
        return b.op("ReduceSum", counts, b.const([-1], "axes", np.int64), keepdims=0)
    per_t = b.op("Reshape", counts, b.const([net.timesteps, -1, channels, lengths[len(blocks)]], "shape", np.int64))
    return b.op("ReduceSum", per_t, b.const([0, 3], "axes", np.int64), keepdims=0)


# Morlet bands per convolution, each group's kernels cut to its taps that are not 0 (measured:
# groups of 4 and of all 16 bands ran slower)
BAND_GROUP = 8


def _band_magnitudes(b: _Builder, x: str, e: IntEnvelopeSpectrum, length: int) -> str:
    """The band envelopes |re + i im| of x [N, 1, length]: [N, bands, n] (n = the DFT's length; a
    Morlet band's are averaged in pairs, as in the firmware, to get there). A Morlet band's
    int8 kernel is 0 beyond a few of its scales, and the high bands are short, so Morlet bands run
    in groups over stride-long frames (edgesnn/framing.py), each group's kernel cut to its taps
    that are not 0 in any of its bands: the same sums, in under half of the multiplications. The
    short bank's kernels are all short: one strided convolution."""
    if not e.pairs(length):
        z = b.op("Conv", x, b.const(e.bank[:, None, :], "bank_int8", np.float32), strides=[e.stride],
                 pads=[e.pad, e.pad], kernel_shape=[e.bank.shape[1]])  # [N, (re, im) * bands, length / stride]
        pairs = np.hstack([np.eye(e.bands), np.eye(e.bands)])[:, :, None]  # re^2 + im^2 as a 1x1 convolution
        return b.op("Sqrt", b.op("Conv", b.op("Mul", z, z), b.const(pairs, "re2_plus_im2", np.float32), kernel_shape=[1]))
    frames = b.op("Transpose", b.op("Reshape", x, b.const([-1, length // e.stride, e.stride], "shape", np.int64)),
                  perm=[0, 2, 1])
    size = BAND_GROUP if e.bands % BAND_GROUP == 0 else e.bands
    parts = []
    for g in range(0, e.bands, size):
        rows = np.r_[g : g + size, e.bands + g : e.bands + g + size]  # the group's real, then imaginary kernels
        w, lead, right = framed_kernel(e.bank[rows][:, None, :], e.stride, e.pad, length)
        used = np.flatnonzero(np.any(w != 0, axis=(0, 1)))
        cut_lead, cut_right = min(int(used[0]), lead), min(w.shape[2] - 1 - int(used[-1]), right)
        w = w[:, :, cut_lead : w.shape[2] - cut_right]
        parts.append(b.op("Conv", frames, b.const(w, "morlet_int8", np.float32), pads=[lead - cut_lead, right - cut_right],
                          kernel_shape=[w.shape[2]]))
    z = b.op("Concat", *parts, axis=1)  # [N, groups * (re, im) * size, length / stride]
    square = b.op("Reshape", b.op("Mul", z, z), b.const([0, e.bands // size, 2, size, -1], "shape", np.int64))
    summed = b.op("ReduceSum", square, b.const([2], "axes", np.int64), keepdims=0)
    env = b.op("Sqrt", b.op("Reshape", summed, b.const([0, e.bands, -1], "shape", np.int64)))
    return b.op("AveragePool", env, kernel_shape=[2], strides=[2])


def _envelope_spectrum(b: _Builder, x: str, e: IntEnvelopeSpectrum, length: int) -> str:
    """envelope.py's spectrum [N, bins, bands] in float32, in units of 2**-shift of the firmware's
    (the shift is folded into the mix's weights): the same int8 kernels, without the floors (of the
    square roots, the pair average, the division) and the int16 saturation of the modulation depth.
    `x`: the window, standardized: the band scales, and the window's, cancel in the division by
    the mean, as in the firmware. The depth's 2**Q and its -2**Q fold into the DFT's weights and
    a constant after it."""
    env = _band_magnitudes(b, x, e, length)  # [N, bands, n]
    mean = b.op("Max", b.op("ReduceMean", env, b.const([-1], "axes", np.int64), keepdims=1),
                b.const(1e-30, dtype=np.float32))
    dft = e.dft.astype(np.float64)
    f = b.op("Add", b.op("MatMul", b.op("Div", env, mean), b.const(dft.T * (1 << Q), "dft_int8", np.float32)),
             b.const(-(1 << Q) * dft.sum(axis=1), "dft_of_minus_one", np.float32))  # [N, bands, (re, im) * bins]
    pairs = np.vstack([np.eye(e.bins), np.eye(e.bins)])  # re^2 + im^2 as a matrix product
    mag = b.op("Sqrt", b.op("MatMul", b.op("Mul", f, f), b.const(pairs, "re2_plus_im2", np.float32)))
    spectrum = b.clip(mag, 0.0, float(INT16[1]) * 2.0**e.shift)
    return b.op("Transpose", spectrum, perm=[0, 2, 1])


def build_gateway_onnx(net: IntMRASNN) -> onnx.ModelProto:
    if not fits(net):
        raise ValueError("the gateway graph carries plain MRA-SNN networks (no early exits, no time mix)")
    b = _Builder()
    # [256, 1] tables gather [N, C] indices into [N, C, 1] gates; pre-divided by the shift after
    tables = {"attention": b.const((net.lut / 2.0**GATE_Q).reshape(-1, 1), "sigmoid_q8_attention", np.float32),
              "neuron": b.const((net.lut / 2.0 ** (GATE_Q + Q)).reshape(-1, 1), "sigmoid_q8_neuron", np.float32)}
    # int8 input in steps of 2**-s_in RMS (network.standardize). Gain-blind, as the firmware's
    # peak scaling to int16 is, for windows from 1e-8 g RMS up (float32 variance, epsilon 1e-20);
    # the runtime does not diagnose windows under 1e-6 g (edgesnn/signal.py: flat)
    in_scale = b.op("Expand", b.const(2.0**net.s_in, dtype=np.float32), b.const([net.window], "shape", np.int64))
    unit = b.op("LayerNormalization", "acceleration", in_scale, axis=-1, epsilon=1e-20)
    x = b.clip(b.op("Round", unit), -127.0, 127.0)
    i_enc = _attend(b, _conv(b, x, net.encoder, 127.0, net.window)[0], net.encoder_attention, tables)
    total = _view(b, net, i_enc, net.encoder_neurons, net.blocks, net.lengths(),
                  sum(c.w.shape[0] for c in net.encoder), tables)
    e = net.envelope
    if e is not None:  # the second view, on the window itself (envelope.py)
        spectrum = _envelope_spectrum(b, unit, e.spectrum, net.window)
        current, _ = _conv(b, spectrum, [e.mix], float(INT16[1]), e.spectrum.bands, gain=2.0**-e.spectrum.shift)
        env_total = _view(b, net, _attend(b, current, e.attention, tables), e.neurons, e.blocks, e.lengths(),
                          e.mix.w.shape[0], tables)
        if e.count_shift:  # its counts << count_shift
            env_total = b.op("Mul", env_total, b.const(float(1 << e.count_shift), dtype=np.float32))
        total = b.op("Concat", total, env_total, axis=1)
    # classifier on the counts summed over time and length; logits in Q8 / 256
    fc = Requant(net.fc_rq.m, net.fc_rq.shift + Q, net.fc_rq.bias)  # / 256: m / 2**(k + 8)
    b.op("Gemm", total, _weights(b, net.fc_w.T, _scale(fc), [1, -1]),
         b.const(net.fc_rq.bias / float(1 << Q), "bias", np.float32), out="logits")
    graph = helper.make_graph(b.nodes, "edgesnn_gateway_mra_snn",
                              [helper.make_tensor_value_info("acceleration", F32, ["batch", 1, net.window])],
                              [helper.make_tensor_value_info("logits", F32, ["batch", len(net.classes)])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgesnn")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
