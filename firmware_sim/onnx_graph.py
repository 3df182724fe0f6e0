"""The integer network as an ONNX graph that stock onnxruntime runs on the CPU (needs `onnx`).

Weights are stored as int8 initializers (cast to float once, when onnxruntime loads the model);
spike tensors pass through QuantizeLinear / DequantizeLinear with scale 1 and zero point 0, so
they carry the integer counts exactly. Every value in the graph is an integer held in a float:
convolutions run in float32 (their sums of int8 x int8 products stay below 2**24, so they are
exact in any order), and everything that can outgrow 2**24 (requantization products, sums over
a window) runs in float64, exact below 2**53. Floor division stands for the arithmetic shift.
So onnxruntime computes what network.py computes, bit for bit.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgesnn.firmware_sim.arith import GATE_Q, INT16, Q, Requant
from edgesnn.firmware_sim.network import Attention, Conv, IntMRASNN, Neurons

OPSET = 18  # ReduceMax takes its axes as an input from 18 on
F32, F64 = TensorProto.FLOAT, TensorProto.DOUBLE


class _Builder:
    def __init__(self):
        self.nodes, self.inits, self._n = [], [], 0
        self._cached: dict[tuple, str] = {}  # a layer's constants, shared by its T timesteps

    def once(self, key: tuple, make) -> str:
        if key not in self._cached:
            self._cached[key] = make()
        return self._cached[key]

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, value, stem: str = "c", dtype=np.float64) -> str:
        value = np.asarray(value, dtype=dtype)
        if value.size <= 1:  # scalars (divisors, clip bounds, axes) are shared by value
            return self.once(("const", value.dtype.str, value.shape, value.tobytes()), lambda: self._add(value, stem))
        return self._add(value, stem)

    def _add(self, value: np.ndarray, stem: str) -> str:
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, stem: str | None = None, **attrs) -> str:
        out = self.name(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    # integer arithmetic on float tensors ------------------------------------------------------
    def floor_div(self, x: str, d: float, dtype=np.float32) -> str:
        """floor(x / d) for a power of two d: a multiplication by 1/d is exact."""
        assert d == 2.0 ** round(np.log2(d))
        return self.op("Floor", self.op("Mul", x, self.const(1.0 / d, dtype=dtype)))

    def clip(self, x: str, lo: float, hi: float, dtype=np.float32) -> str:
        return self.op("Clip", x, self.const(lo, dtype=dtype), self.const(hi, dtype=dtype))

    def requant(self, acc64: str, rq: Requant, rank: int) -> str:
        """((acc * m + 2**(k-1)) >> k) + bias on a float64 tensor, channel on axis 1."""
        shape = (-1,) + (1,) * (rank - 2)
        m, half, inv, bias = (self.once((id(rq), k), lambda v=v, k=k: self.const(v.reshape(shape), k)) for k, v in (
            ("m", rq.m.astype(np.float64)), ("half", 2.0 ** (rq.shift - 1)),
            ("inv_pow2", 2.0 ** -rq.shift.astype(np.float64)), ("bias", rq.bias.astype(np.float64))))
        shifted = self.op("Floor", self.op("Mul", self.op("Add", self.op("Mul", acc64, m), half), inv))
        return self.op("Add", shifted, bias)

    def mean_shift(self, x: str, length: int) -> str:
        """floor(sum over the last axis / length) [N, C], length a power of two (sums < 2**24)."""
        return self.floor_div(self.op("ReduceSum", x, self.const([-1], "axes", np.int64), keepdims=0), float(length))

    def table(self, pre64: str, lut: str) -> str:
        """Sigmoid table lookup of a float64 Q4 pre-activation [N, C] -> float32 Q8 gate [N, C, 1]."""
        idx = self.op("Cast", self.clip(self.op("Add", pre64, self.const(128.0)), 0.0, 255.0, np.float64),
                      to=TensorProto.INT64)
        return self.op("Unsqueeze", self.op("Gather", lut, idx), self.const([-1], "axes", np.int64))

    def gated(self, x: str, gate: str) -> str:
        """(x * gate + 128) >> 8 with x int16 and gate <= 256: exact in float32."""
        half = self.const(float(1 << (GATE_Q - 1)), dtype=np.float32)
        return self.floor_div(self.op("Add", self.op("Mul", x, gate), half), float(1 << GATE_Q))


# Exactness: float32 holds every integer below 2**24. Convolution sums (int8 x int8 x 256 taps,
# or counts <= 15 x int8 x 144) stay below it; so do int16 values times a Q8 gate and sums of 128
# int16 values. Requantization products (up to 2**22 x 2**15) do not: they run in float64.


def _conv(b: _Builder, x32: str, layer: Conv) -> str:
    """float32 integers in -> float32 Q8 currents out (saturated to int16)."""
    w = b.once((id(layer), "w"), lambda: b.op("Cast", b.const(layer.w, "w_int8", np.int8), to=F32))
    acc = b.op("Conv", x32, w, strides=[layer.stride], pads=[layer.pad, layer.pad], kernel_shape=[layer.w.shape[2]])
    current = b.clip(b.requant(b.op("Cast", acc, to=F64), layer.rq, 3), *INT16, np.float64)
    return b.op("Cast", current, to=F32)


def _attend(b: _Builder, i: str, a: Attention, length: int, lut: str) -> str:
    mean = b.op("Cast", b.mean_shift(i, length), to=F64)  # [N, C]
    w1 = b.once((id(a), "w1"), lambda: b.op("Cast", b.const(a.w1.T, "w1_int8", np.int8), to=F64))
    w2 = b.once((id(a), "w2"), lambda: b.op("Cast", b.const(a.w2.T, "w2_int8", np.int8), to=F64))
    h = b.op("Relu", b.requant(b.op("MatMul", mean, w1), a.rq1, 2))
    return b.gated(i, b.table(b.requant(b.op("MatMul", h, w2), a.rq2, 2), lut))


def _neuron_step(b: _Builder, v: str | None, i: str, n: Neurons, length: int, lut: str) -> tuple[str, str]:
    v = b.clip(i if v is None else b.op("Add", b.floor_div(v, 2.0), i), *INT16)
    if n.gate is None:
        s = b.floor_div(v, float(1 << Q))
    else:
        # ((v*g + 128) >> 8) >> 8 == floor(v * (g / 2**16) + 2**-9): the power-of-two scalings are
        # exact and v*g + 128 < 2**24, so one multiply and one add on the big tensor do it
        gate = b.table(b.requant(b.op("Cast", b.mean_shift(v, length), to=F64), n.gate, 2), lut)
        gate = b.op("Mul", gate, b.const(2.0 ** -(GATE_Q + Q), dtype=np.float32))
        s = b.op("Floor", b.op("Add", b.op("Mul", v, gate), b.const(2.0 ** -(Q + 1), dtype=np.float32)))
    s = b.clip(s, 0.0, float(n.levels))
    return s, b.op("Sub", v, b.op("Mul", s, b.const(float(1 << Q), dtype=np.float32)))


def _exact_spikes(b: _Builder, s32: str) -> str:
    """Spike counts as uint8 with scale 1, zero point 0, and back to float32 for the next conv."""
    one, zero = b.const(1.0, "scale", np.float32), b.const(0, "zero_point", np.uint8)
    return b.op("DequantizeLinear", b.op("QuantizeLinear", s32, one, zero, stem="spikes"), one, zero)


def build_onnx(net: IntMRASNN) -> onnx.ModelProto:
    b = _Builder()
    lut = b.const(net.lut.astype(np.float32), "sigmoid_q8", np.float32)
    axes = b.const([-1], "axes", np.int64)
    x = "acceleration"
    # float g -> int16 samples, scaled per window (network.to_int16), in float32 as numpy does it
    peak = b.op("Max", b.op("ReduceMax", b.op("Abs", x), axes, keepdims=1), b.const(1e-30, dtype=np.float32))
    x16 = b.op("Round", b.op("Mul", x, b.op("Div", b.const(32767.0, dtype=np.float32), peak)))
    # integer standardization (network.standardize), exact in float64
    x16 = b.op("Cast", x16, to=F64)
    n = float(net.window)
    mean = b.floor_div(b.op("Add", b.op("ReduceSum", x16, axes, keepdims=1), b.const(n // 2)), n, np.float64)
    c = b.op("Sub", x16, mean)
    var = b.floor_div(b.op("ReduceSum", b.op("Mul", c, c), axes, keepdims=1), n, np.float64)
    rms = b.op("Max", b.op("Floor", b.op("Sqrt", var)), b.const(1.0))
    num = b.op("Add", b.op("Mul", c, b.const(float(2 ** (net.s_in + 1)))), rms)
    xq = b.clip(b.op("Floor", b.op("Div", num, b.op("Mul", rms, b.const(2.0)))), -127.0, 127.0, np.float64)
    xq32 = b.op("Cast", xq, to=F32)

    length = net.window // net.encoder[0].stride
    i_enc = b.op("Concat", *[_conv(b, xq32, c) for c in net.encoder], axis=1)
    i_enc = b.clip(_attend(b, i_enc, net.encoder_attention, length, lut), *INT16)
    steps, v = [], None
    for _ in range(net.timesteps):
        s, v = _neuron_step(b, v, i_enc, net.encoder_neurons, length, lut)
        steps.append(s)
    # blocks: the T timesteps folded into the batch ([T*N, C, L]) for conv and attention, which
    # treat each (timestep, window) alone; the neurons then step through time
    spikes = b.op("Concat", *steps, axis=0)
    for block in net.blocks:
        i = _attend(b, _conv(b, _exact_spikes(b, spikes), block.conv), block.attention, length, lut)
        i = b.clip(b.op("Add", i, b.op("Mul", spikes, b.const(float(1 << Q), dtype=np.float32))), *INT16)
        steps, v = [], None
        for current in _split(b, i, net.timesteps):
            s, v = _neuron_step(b, v, current, block.neurons, length, lut)
            steps.append(s)
        spikes = b.op("MaxPool", _exact_spikes(b, b.op("Concat", *steps, axis=0)), kernel_shape=[2], strides=[2])
        length //= 2
    # spike counts summed over time and length: [T*N, C, L] -> [T, N, C, L] -> [N, C]
    channels = sum(c.w.shape[0] for c in net.encoder)
    per_t = b.op("Reshape", spikes, b.const([net.timesteps, -1, channels, length], "shape", np.int64))
    counts = b.op("ReduceSum", per_t, b.const([0, 3], "axes", np.int64), keepdims=0)
    fc_w = b.op("Cast", b.const(net.fc_w.T, "fc_w_int8", np.int8), to=F64)
    q8 = b.requant(b.op("MatMul", b.op("Cast", counts, to=F64), fc_w), net.fc_rq, 2)
    logits = b.op("Cast", b.op("Mul", q8, b.const(1.0 / (1 << Q))), to=F32)
    b.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    graph = helper.make_graph(
        b.nodes, "edgesnn_int_mra_snn",
        [helper.make_tensor_value_info("acceleration", F32, ["batch", 1, net.window])],
        [helper.make_tensor_value_info("logits", F32, ["batch", len(net.classes)])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgesnn")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _split(b: _Builder, x: str, parts: int) -> list[str]:
    """[T*N, ...] -> T tensors [N, ...] (equal parts along the batch axis)."""
    outs = [b.name("step") for _ in range(parts)]
    b.nodes.append(helper.make_node("Split", [x], outs, axis=0, num_outputs=parts))
    return outs
