"""The integer network as an ONNX graph that stock onnxruntime runs on the CPU (needs `onnx`).

Weights are stored as int8 initializers (cast to float once, when onnxruntime loads the model);
spike tensors are uint8, read through DequantizeLinear with scale 1 and zero point 0, so they
carry the integer counts exactly. Every value in the graph is an integer held in a float, and every
operation is exact: float32 holds every integer below 2**24 and float64 every one below 2**53,
and multiplying by a power of two is exact. So onnxruntime computes what network.py computes,
bit for bit.

The graph is built for speed as well: at batch 1 onnxruntime spends about a microsecond per node
whatever the node does, so the arithmetic is written in as few nodes as exactness allows:
- requantization `((acc * m + 2**(k-1)) >> k) + b` is one multiply and one add before a Floor:
  floor(acc * (m / 2**k) + (b + 1/2)). That is exact when the numerator acc*m + 2**(k-1) +
  b*2**k stays below 2**53, which `_foldable` checks per channel against the largest |acc| the
  weights allow for any input; otherwise the graph spells out every step;
- the scale of a requantized matrix product moves into its weights, the bias into Gemm's C;
- a saturation that those bounds prove can never act is left out;
- sigmoid tables are pre-divided by their power-of-two output scale, so a gate and its shift are
  one multiply;
- a value clipped to a non-negative range (a table index, a spike count) is floored by its Cast
  to an integer type, which truncates.
Measured on the default model's exact graph: 332 nodes and 0.31 ms a window before, 193 and
0.24 ms after. The default now ships the faster gateway graph (gateway_graph.py); this exact one
is what networks with integer decision rules ship (ssnn's exits, the esvae detector).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgesnn.errors import EdgesnnError
from edgesnn.framing import framed_kernel
from edgesnn.firmware_sim.arith import EXP_Q, EXP_STEP, GATE_Q, INT16, Q, Requant
from edgesnn.firmware_sim.network import Attention, Conv, IntMRASNN, Neurons

OPSET = 18  # ReduceMax takes its axes as an input from 18 on
F32, F64 = TensorProto.FLOAT, TensorProto.DOUBLE
EXACT = 2.0**53  # float64 integers are exact below this
INT16_MAX = INT16[1]
INT16_BOUND = float(1 << 15)  # |int16| <= 2**15


def spike_encoding(levels: int) -> str:
    """How the graph carries spikes, in the words of the model card."""
    return f"exact integer counts 0..{levels}, uint8 tensors read through DequantizeLinear (scale 1, zero point 0)"


def _out_bound(rq: Requant, acc_bound: np.ndarray, extra_bias: float = 0.0) -> np.ndarray:
    """Largest |requantized value| per channel for |acc| <= acc_bound."""
    return (acc_bound * np.abs(rq.m) + 2.0 ** (rq.shift - 1)) / 2.0**rq.shift + np.abs(rq.bias + extra_bias)


def _foldable(rq: Requant, acc_bound: np.ndarray, extra_bias: float = 0.0) -> bool:
    """Whether floor(acc * m/2**k + b + 1/2) is exact in float64 for every |acc| <= acc_bound."""
    numerator = acc_bound * np.abs(rq.m) + 2.0 ** (rq.shift - 1) + np.abs(rq.bias + extra_bias) * 2.0**rq.shift
    return bool(np.all(numerator < EXACT))


class _Builder:
    def __init__(self):
        self.nodes, self.inits, self._n = [], [], 0
        self._cached: dict[tuple, str] = {}  # a layer's constants, shared by its T timesteps
        self._keyed: list = []  # objects whose id() is part of a cache key stay alive (ids are not reused)

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

    def op(self, op_type: str, *inputs: str, stem: str | None = None, out: str | None = None, **attrs) -> str:
        out = out or self.name(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    # integer arithmetic on float tensors ------------------------------------------------------
    def clip(self, x: str, lo: float, hi: float, dtype=np.float32) -> str:
        return self.op("Clip", x, self.const(lo, dtype=dtype), self.const(hi, dtype=dtype))

    def requant(self, acc64: str, rq: Requant, shape: tuple, acc_bound: np.ndarray, extra_bias: float = 0.0,
                floor: bool = True) -> str:
        """((acc * m + 2**(k-1)) >> k) + bias + extra_bias per channel, on a float64 tensor;
        `shape`: how the per-channel constants broadcast against it. `floor=False` may leave the
        last Floor to the caller (a table index: its Cast to int64 truncates)."""
        key = (id(rq), shape, extra_bias)
        self._keyed.append(rq)
        if _foldable(rq, acc_bound, extra_bias):
            scale, offset = self.once(key, lambda: (
                self.const((rq.m * 2.0 ** -rq.shift.astype(np.float64)).reshape(shape), "rq_scale"),
                self.const((rq.bias + extra_bias + 0.5).reshape(shape), "rq_offset")))
            pre = self.op("Add", self.op("Mul", acc64, scale), offset)
            return self.op("Floor", pre) if floor else pre
        m, half, inv, bias = self.once(key, lambda: tuple(self.const(v.reshape(shape), k) for k, v in (
            ("m", rq.m.astype(np.float64)), ("half", 2.0 ** (rq.shift - 1)),
            ("inv_pow2", 2.0 ** -rq.shift.astype(np.float64)), ("bias", rq.bias + extra_bias))))
        shifted = self.op("Floor", self.op("Mul", self.op("Add", self.op("Mul", acc64, m), half), inv))
        return self.op("Add", shifted, bias)

    def dense(self, x64: str, w: np.ndarray, rq: Requant, in_bound: float, extra_bias: float = 0.0,
              floor: bool = True) -> str:
        """requant(x @ w.T) for x [N, in] in float64 and int8 w [out, in]: one Gemm with the
        scale in its weights and bias + 1/2 as C, then a Floor, when that is exact."""
        acc_bound = in_bound * np.abs(w.astype(np.float64)).sum(axis=1)
        wt = self.op("Cast", self.const(w.T, "w_int8", np.int8), to=F64)
        if _foldable(rq, acc_bound, extra_bias):
            # int8 weights times m / 2**k per column (exact: < 2**22 x 2**-k); onnxruntime folds
            # this constant product once, at load
            scaled = self.op("Mul", wt, self.const(rq.m * 2.0 ** -rq.shift.astype(np.float64), "rq_scale"))
            gemm = self.op("Gemm", x64, scaled, self.const(rq.bias + extra_bias + 0.5, "b_half"))
            return self.op("Floor", gemm) if floor else gemm
        return self.requant(self.op("MatMul", x64, wt), rq, (-1,), acc_bound, extra_bias)

    def mean_floor(self, x: str, keepdims: int) -> str:
        """floor(mean over the last axis): the sum of L integers is exact (< 2**24 in float32 for
        int16 values while L <= 512, asserted in build_onnx) and L is a power of two."""
        return self.op("Floor", self.op("ReduceMean", x, self.const([-1], "axes", np.int64), keepdims=keepdims))

    def gate(self, pre64: str, table: str) -> str:
        """Sigmoid table at index floor(pre) + 128, `pre` a float64 requantization already offset
        by 128 and maybe not yet floored: clipped to [0, 255], the Cast to int64 truncates, which
        is the floor there."""
        idx = self.op("Cast", self.clip(pre64, 0.0, 255.0, np.float64), to=TensorProto.INT64)
        return self.op("Gather", table, idx)


# Exactness in float32: convolution sums (int8 x int8 x 256 taps, or counts <= 15 x int8 x 144)
# stay below 2**24; so do int16 values times a Q8 gate (+ 2**7) and sums of 128 int16 values.


def _conv(b: _Builder, x32: str, layers: list[Conv], in_bound: float, length: int) -> tuple[str, float]:
    """Convolutions of one float32 input [N, C, length], concatenated on the channel axis,
    requantized to Q8 currents (saturated to int16). Returns the current and a bound on its
    magnitude. A strided convolution of the one-channel window runs over stride-long frames
    (edgesnn/framing.py: the same integer sums, exact in any order, faster in onnxruntime)."""
    # (one Conv with the narrower kernels zero-padded into the widest measured slower: more MACs)
    accs = []
    for c in layers:
        if c.w.shape[1] == 1 and c.stride > 1:
            w, lead, right = framed_kernel(c.w, c.stride, c.pad, length)
            frames = b.once(("frames", x32, c.stride), lambda c=c: b.op("Transpose", b.op(
                "Reshape", x32, b.const([-1, length // c.stride, c.stride], "shape", np.int64)), perm=[0, 2, 1]))
            accs.append(b.op("Conv", frames, b.op("Cast", b.const(w, "w_int8", np.int8), to=F32),
                             pads=[lead, right], kernel_shape=[w.shape[2]]))
        else:
            accs.append(b.op("Conv", x32, b.op("Cast", b.const(c.w, "w_int8", np.int8), to=F32), strides=[c.stride],
                             pads=[c.pad, c.pad], kernel_shape=[c.w.shape[2]]))
    acc = accs[0] if len(accs) == 1 else b.op("Concat", *accs, axis=1)
    rq = Requant(*(np.concatenate([getattr(c.rq, f) for c in layers]) for f in ("m", "shift", "bias")))
    acc_bound = np.concatenate([in_bound * np.abs(c.w.astype(np.float64)).reshape(c.w.shape[0], -1).sum(axis=1)
                                for c in layers])
    current = b.op("Cast", b.requant(b.op("Cast", acc, to=F64), rq, (-1, 1), acc_bound), to=F32)
    bound = float(_out_bound(rq, acc_bound).max())
    if bound > INT16_MAX:
        return b.clip(current, *INT16), INT16_BOUND
    return current, bound


def _attend(b: _Builder, i: str, a: Attention, tables: dict) -> str:
    """Q8 currents [N, C, L] (float32) times their channel gates: (i * gate + 128) >> 8."""
    mean = b.op("Cast", b.mean_floor(i, keepdims=0), to=F64)  # [N, C]
    h = b.op("Relu", b.dense(mean, a.w1, a.rq1, INT16_BOUND))
    h_bound = float(_out_bound(a.rq1, INT16_BOUND * np.abs(a.w1.astype(np.float64)).sum(axis=1)).max())
    pre = b.dense(h, a.w2, a.rq2, h_bound, extra_bias=128.0, floor=False)
    gate = b.gate(pre, tables["attention"])  # [N, C, 1]: the Q8 gate / 2**8
    return b.op("Floor", b.op("Add", b.op("Mul", i, gate), b.const(0.5, dtype=np.float32)))


def _neuron_step(b: _Builder, v: str | None, i: str, n: Neurons, tables: dict, last: bool) -> tuple[str, str | None]:
    """One timestep: float32 membrane and current [N, C, L] -> float32 spike counts and the new
    membrane (None after the last step). `i` is already int16."""
    if v is None:  # v = sat16((0 >> 1) + i) = i
        v = i
    else:
        half = b.op("Floor", b.op("Mul", v, b.const(0.5, dtype=np.float32)))
        v = b.clip(b.op("Add", half, i), *INT16)
    if n.gate is None:
        s = b.op("Mul", v, b.const(2.0**-Q, dtype=np.float32))
    else:
        # ((v*g + 128) >> 8) >> 8 == floor(v * (g / 2**16) + 2**-9); the table holds g / 2**16
        mean = b.op("Cast", b.mean_floor(v, keepdims=1), to=F64)  # [N, C, 1]
        g = b.gate(b.requant(mean, n.gate, (-1, 1), np.full(len(n.gate.m), INT16_BOUND), extra_bias=128.0,
                             floor=False), tables["neuron"])
        s = b.op("Add", b.op("Mul", v, g), b.const(2.0 ** -(Q + 1), dtype=np.float32))
    if last:  # the count is floored where it becomes uint8 (_exact_spikes)
        return b.clip(s, 0.0, float(n.levels)), None
    s = b.clip(b.op("Floor", s), 0.0, float(n.levels))
    return s, b.op("Sub", v, b.op("Mul", s, b.const(float(1 << Q), dtype=np.float32)))


def _neurons(b: _Builder, currents: list[str], n: Neurons, tables: dict) -> str:
    """Step through time: one current per timestep -> float32 spike counts, timesteps folded
    into the batch ([T*N, C, L])."""
    v, out = None, []
    for t, i in enumerate(currents):
        s, v = _neuron_step(b, v, i, n, tables, last=t == len(currents) - 1)
        out.append(s)
    return out[0] if len(out) == 1 else b.op("Concat", *out, axis=0)


def _exact_spikes(b: _Builder, s32: str) -> str:
    """The spike tensor as onnxruntime stores it: uint8 counts, read through DequantizeLinear with
    scale 1 and zero point 0. `s32` is clipped to [0, levels] and maybe not yet floored: the Cast
    truncates, which is the floor there."""
    return b.op("Cast", s32, to=TensorProto.UINT8, stem="spikes")


def _prepare(b: _Builder, x: str, net: IntMRASNN) -> str:
    """Float windows -> int16 (network.to_int16, in float32 as numpy does it) -> standardized int8
    (network.standardize, exact in float64), as float32 [N, 1, L]."""
    axes = b.const([-1], "axes", np.int64)
    peak = b.op("Max", b.op("ReduceMax", b.op("Abs", x), axes, keepdims=1), b.const(1e-30, dtype=np.float32))
    x16 = b.op("Cast", b.op("Round", b.op("Mul", x, b.op("Div", b.const(32767.0, dtype=np.float32), peak))), to=F64)
    assert net.window & (net.window - 1) == 0, "the window length is a power of two"
    half = b.const(0.5)
    # mean = (sum + L/2) // L = floor(sum / L + 1/2): sum / L is exact for L a power of two
    mean = b.op("Floor", b.op("Add", b.op("ReduceMean", x16, axes, keepdims=1), half))
    c = b.op("Sub", x16, mean)
    var = b.op("Floor", b.op("ReduceMean", b.op("Mul", c, c), axes, keepdims=1))
    rms = b.op("Max", b.op("Floor", b.op("Sqrt", var)), b.const(1.0))  # isqrt: floor(sqrt) is exact below 2**52
    # ((c << (s+1)) + rms) // (2 rms) = floor(c * 2**s / rms + 1/2): the quotient of integers below
    # 2**21 is never rounded across an integer or a half
    q = b.op("Floor", b.op("Add", b.op("Div", c, b.op("Mul", rms, b.const(2.0**-net.s_in))), half))
    return b.op("Cast", b.clip(q, -127.0, 127.0, np.float64), to=F32)


def _block(b: _Builder, net: IntMRASNN, k: int, spikes: str, tables: dict) -> str:
    """Block k on the previous stage's uint8 spikes [T_in*N, C, L] -> its pooled uint8 spikes
    [T_k*N, C, L/2]. The T timesteps are folded into the batch for conv and attention, which
    treat each (timestep, window) alone; the neurons then step through time."""
    block, mix, steps = net.blocks[k], net.mixes[k], net.stage_timesteps[k]
    levels = net.encoder_neurons.levels
    counts = b.op("DequantizeLinear", spikes, b.const(1.0, "scale", np.float32), b.const(0, "zero_point", np.uint8))
    if mix is None:  # the residual on the membrane input: spikes << 8
        frames, in_bound = counts, float(levels)
        residual = b.op("DequantizeLinear", spikes, b.const(float(1 << Q), "scale", np.float32),
                        b.const(0, "zero_point", np.uint8))
    else:  # q @ frames, exact in float32 (|q| <= 127, counts <= 15, T <= 16); residual m << (8 - shift)
        c, length = block.conv.w.shape[1], net.lengths()[k]
        flat = b.op("Reshape", counts, b.const([mix.q.shape[1], -1], "shape", np.int64))
        mixed = b.op("MatMul", b.const(mix.q, "time_mix", np.float32), flat)
        frames = b.op("Reshape", mixed, b.const([-1, c, length], "shape", np.int64))
        in_bound = float(np.abs(mix.q.astype(np.float64)).sum(axis=1).max() * levels)
        residual = b.op("Mul", frames, b.const(2.0 ** (Q - mix.shift), dtype=np.float32))
    current, bound = _conv(b, frames, [block.conv], in_bound, net.lengths()[k])
    i = b.op("Add", _attend(b, current, block.attention, tables), residual)
    if bound + in_bound * 2.0 ** (Q - (mix.shift if mix else 0)) > INT16_MAX:
        i = b.clip(i, *INT16)
    s = _neurons(b, [i] if steps == 1 else _split(b, i, steps), block.neurons, tables)
    # max pool commutes with the clip and the floor; onnxruntime's float32 pooling is fast
    return _exact_spikes(b, b.op("MaxPool", s, kernel_shape=[2], strides=[2]))


def _readout(b: _Builder, net: IntMRASNN, k: int, spikes: str, w: np.ndarray, rq: Requant) -> str:
    """Q8 logits [N, classes] (float64) of the classifier (w, rq) on block k's spike counts,
    summed over time and length."""
    steps, length = net.stage_timesteps[k], net.lengths()[k + 1]
    counts = b.op("Cast", spikes, to=F64)
    if steps == 1:
        counts = b.op("ReduceSum", counts, b.const([-1], "axes", np.int64), keepdims=0)
    else:
        per_t = b.op("Reshape", counts, b.const([steps, -1, w.shape[1], length], "shape", np.int64))
        counts = b.op("ReduceSum", per_t, b.const([0, 3], "axes", np.int64), keepdims=0)
    return b.dense(counts, w, rq, float(net.encoder_neurons.levels * steps * length))


def _stages_from(b: _Builder, net: IntMRASNN, k: int, spikes: str, tables: dict) -> str:
    """Blocks k, k+1, ... on the previous stage's spikes -> each window's Q8 logits. After a stage
    with an early classifier, the windows that are not sure (network.py's rule) go on, cut out of
    the batch; the stages after run in an If branch only when there are such windows, and their
    logits are scattered back over the early ones."""
    spikes = _block(b, net, k, spikes, tables)
    if k == len(net.blocks) - 1:
        return _readout(b, net, k, spikes, net.fc_w, net.fc_rq)
    if not net.exits:
        return _stages_from(b, net, k + 1, spikes, tables)
    logits = _readout(b, net, k, spikes, net.exits[k].w, net.exits[k].rq)
    # integer confidence: sum_j table[min((max z - z_j) >> 4, n - 1)], the Cast truncating (>= 0)
    top = b.op("ReduceMax", logits, b.const([1], "axes", np.int64), keepdims=1)
    step = b.op("Mul", b.op("Sub", top, logits), b.const(2.0**-EXP_STEP))
    index = b.op("Cast", b.clip(step, 0.0, float(len(net.exp_table) - 1), np.float64), to=TensorProto.INT64)
    table = b.once(("exp_table",), lambda: b.const(net.exp_table, "exp_q15", np.float32))
    total = b.op("ReduceSum", b.op("Gather", table, index), b.const([1], "axes", np.int64), keepdims=0)  # [N]
    unsure = b.op("Greater", total, "exit_limit")
    go_on = b.op("Greater", b.op("ReduceMax", total, b.const([0], "axes", np.int64), keepdims=0), "exit_limit")

    def later(kept: str) -> tuple[list, str]:  # the later stages, built in place, then moved into the If
        start = len(b.nodes)
        result = _stages_from(b, net, k + 1, kept, tables)
        nodes, b.nodes[start:] = b.nodes[start:], []
        return nodes, result

    out = b.name(f"exit{k}_logits")
    shape = [net.stage_timesteps[k], net.blocks[k].conv.w.shape[0], net.lengths()[k + 1]]
    b.nodes += per_window_exit(f"exit{k}/", logits, spikes, shape, unsure, go_on, later, F64, out)
    return out


def per_window_exit(prefix: str, logits: str, spikes: str, shape: list[int], unsure: str, any_unsure: str,
                    later, elem_type: int, out: str) -> list:
    """The nodes of an early exit decided per window, after one stage of a shrinking network
    (ssnn; its float export builds its graph with this too). `out` gets the stage's `logits`
    [N, classes], except for the `unsure` windows ([N] bool): those are cut out of the stage's
    `spikes` ([T*N, C, L]; `shape` = [T, C, L]) and go on through `later(name of their spikes)`,
    which returns (its nodes, the name of their logits); those nodes run inside an If on
    `any_unsure` and their logits are scattered back over the early ones."""
    steps, c, length = shape
    dims = lambda name, values: numpy_helper.from_array(np.array(values, dtype=np.int64), prefix + name)  # noqa: E731
    go_on = [helper.make_node("Reshape", [spikes, prefix + "by_t"], [prefix + "spikes_t"]),
             helper.make_node("Compress", [prefix + "spikes_t", unsure], [prefix + "kept_t"], axis=1),
             helper.make_node("Reshape", [prefix + "kept_t", prefix + "flat"], [prefix + "kept"])]
    nodes, later_logits = later(prefix + "kept")
    go_on += nodes + [helper.make_node("NonZero", [unsure], [prefix + "rows_t"]),
                      helper.make_node("Transpose", [prefix + "rows_t"], [prefix + "rows"]),  # [M, 1]
                      helper.make_node("ScatterND", [logits, prefix + "rows", later_logits], [prefix + "merged"])]

    def graph(nodes: list, result: str, name: str, initializer=()):
        return helper.make_graph(nodes, prefix + name, [], [helper.make_tensor_value_info(result, elem_type, None)],
                                 initializer=list(initializer))

    return [helper.make_node("If", [any_unsure], [out],
                             then_branch=graph(go_on, prefix + "merged", "go_on",
                                               [dims("by_t", [steps, -1, c, length]), dims("flat", [-1, c, length])]),
                             else_branch=graph([helper.make_node("Identity", [logits], [prefix + "early"])],
                                               prefix + "early", "early"))]


def build_onnx(net: IntMRASNN) -> onnx.ModelProto:
    if net.envelope is not None:  # the gateway graph carries it (gateway_graph.py)
        raise EdgesnnError("the exact graph does not carry the envelope view of a network with both views")
    b = _Builder()
    # sigmoid tables pre-divided by the shift that follows each lookup (exact: powers of two)
    # [256, 1] gathers [N, C] indices into [N, C, 1]; [256] keeps [N, C, 1] indices as they are
    tables = {"attention": b.const((net.lut / 2.0**GATE_Q).reshape(-1, 1), "sigmoid_q8_attention", np.float32),
              "neuron": b.const(net.lut / 2.0 ** (GATE_Q + Q), "sigmoid_q8_neuron", np.float32)}
    x = _prepare(b, "acceleration", net)
    length = net.lengths()[0]
    assert length * INT16_BOUND < 2.0**24, "sums over length of int16 values are exact in float32"
    inputs = [helper.make_tensor_value_info("acceleration", F32, ["batch", 1, net.window])]
    if net.exits:  # the threshold, an optional input: floor(2**15 / p) as network.exit_limit computes it
        b.inits.append(numpy_helper.from_array(np.array(net.exit_threshold, dtype=np.float32), "exit_threshold"))
        inputs.append(helper.make_tensor_value_info("exit_threshold", F32, []))
        b.op("Floor", b.op("Div", b.const(float(1 << EXP_Q), dtype=np.float32), "exit_threshold"), out="exit_limit")

    i_enc, _ = _conv(b, x, net.encoder, 127.0, net.window)
    i_enc = _attend(b, i_enc, net.encoder_attention, tables)  # |gated| <= |i|: still int16
    spikes = _exact_spikes(b, _neurons(b, [i_enc] * net.timesteps, net.encoder_neurons, tables))
    logits_q8 = _stages_from(b, net, 0, spikes, tables)
    b.op("Cast", b.op("Mul", logits_q8, b.const(1.0 / (1 << Q))), to=F32, out="logits")
    graph = helper.make_graph(b.nodes, "edgesnn_int_mra_snn", inputs,
                              [helper.make_tensor_value_info("logits", F32, ["batch", len(net.classes)])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgesnn")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _lif(b: _Builder, currents: list[str], levels: int) -> list[str]:
    """Plain multi-bit LIF neurons (no gate), one float32 current per timestep -> float32 spike
    counts per timestep (network.lif_step)."""
    v, out = None, []
    for t, i in enumerate(currents):
        last = t == len(currents) - 1
        s, v = _neuron_step(b, v, i, Neurons(levels, None), {}, last)
        out.append(b.op("Floor", s) if last else s)
    return out


def _dense_current(b: _Builder, x64: str, head, in_bound: float) -> str:
    """A Q8 current from an int8 linear layer, saturated to int16, as float32 (network's dense)."""
    acc_bound = in_bound * np.abs(head.w.astype(np.float64)).sum(axis=1)
    out = b.dense(x64, head.w, head.rq, in_bound)
    if _out_bound(head.rq, acc_bound).max() > INT16_MAX:
        out = b.clip(out, *INT16, dtype=np.float64)
    return b.op("Cast", out, to=F32)


def build_esvae_onnx(net) -> onnx.ModelProto:
    """The integer ESVAE (firmware_sim/esvae.py) as a graph: `acceleration` -> `anomaly_score`."""
    from edgesnn.firmware_sim.esvae import LOG_BITS, MAX_EXPONENT

    b = _Builder()
    x = _prepare(b, "acceleration", net)  # [N, 1, L] int8 values in float32
    # spectrum: |y| <= 64 x 127 x 127 < 2**24, exact in float32; its squares in float64
    frame = net.stft_w.shape[1]
    y = b.op("Conv", x, b.op("Cast", b.const(net.stft_w[:, None, :], "stft_int8", np.int8), to=F32),
             strides=[net.hop], kernel_shape=[frame])
    y = b.op("Cast", y, to=F64)
    per_part = b.op("ReduceSum", b.op("Mul", y, y), b.const([-1], "axes", np.int64), keepdims=0)  # [N, 2B]
    halves = b.op("Reshape", per_part, b.const([-1, 2, net.bins], "shape", np.int64))
    power = b.op("Max", b.op("ReduceSum", halves, b.const([1], "axes", np.int64), keepdims=0), b.const(1.0))
    # log2 in Q8: exponent = how many of 2**1..2**62 the sum reaches; mantissa in [128, 256)
    powers = b.const(2.0 ** np.arange(1, MAX_EXPONENT + 1), "powers_of_two")
    reached = b.op("GreaterOrEqual", b.op("Unsqueeze", power, b.const([-1], "axes", np.int64)), powers)
    e = b.op("ReduceSum", b.op("Cast", reached, to=F64), b.const([-1], "axes", np.int64), keepdims=0)
    to_mantissa = b.const(2.0 ** (LOG_BITS - np.arange(MAX_EXPONENT + 1)), "pow2_7_minus_e")
    m = b.op("Floor", b.op("Mul", power, b.op("Gather", to_mantissa, b.op("Cast", e, to=TensorProto.INT64))))
    index = b.op("Cast", b.op("Sub", m, b.const(float(1 << LOG_BITS))), to=TensorProto.INT64)
    log2 = b.op("Add", b.op("Mul", e, b.const(float(1 << Q))), b.op("Gather", b.const(net.log2, "log2_q8"), index))
    log2_bound = np.full(net.bins, float((MAX_EXPONENT + 1) << Q))
    target = b.clip(b.requant(log2, net.target_rq, (-1,), log2_bound), *INT16, dtype=np.float64)  # [N, B]
    # encoder, latent, decoder: spikes are counts 0..levels in float32
    t, levels = net.timesteps, net.levels
    hidden = _lif(b, [_dense_current(b, target, net.enc_in, INT16_BOUND)] * t, levels)
    steps = b.op("Cast", b.op("Concat", *hidden, axis=0), to=F64)  # [T*N, H]: one Gemm for every step
    latent = b.op("Sum", *_lif(b, _split(b, _dense_current(b, steps, net.enc_latent, float(levels)), t), levels))
    decoded = b.op("Sum", *_lif(b, [_dense_current(b, b.op("Cast", latent, to=F64), net.dec_in,
                                                   float(t * levels))] * t, levels))
    recon = b.dense(b.op("Cast", decoded, to=F64), net.dec_out.w, net.dec_out.rq, float(t * levels))
    d = b.op("Sub", recon, target)
    total = b.op("ReduceSum", b.op("Mul", d, d), b.const([1], "axes", np.int64), keepdims=1)  # exact: < 2**53
    b.op("Cast", b.op("Div", total, b.const(float(net.bins << (2 * Q)))), to=F32, out="anomaly_score")
    graph = helper.make_graph(b.nodes, "edgesnn_int_esvae",
                              [helper.make_tensor_value_info("acceleration", F32, ["batch", 1, net.window])],
                              [helper.make_tensor_value_info("anomaly_score", F32, ["batch", 1])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgesnn")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _split(b: _Builder, x: str, parts: int) -> list[str]:
    """[T*N, ...] -> T tensors [N, ...] (equal parts along the batch axis)."""
    outs = [b.name("step") for _ in range(parts)]
    b.nodes.append(helper.make_node("Split", [x], outs, axis=0, num_outputs=parts))
    return outs


def write_checked(net, onnx_path, check_windows: np.ndarray, n_random: int = 64, seed: int = 0) -> dict:
    """Write the graph of `net` (an IntMRASNN or an IntESVAE) to `onnx_path`, checked against
    the simulator on `check_windows` (real windows [N, L]) and on `n_random` random ones of every
    scale. Returns the card's `onnx_check`.

    A plain MRA-SNN gets the gateway graph (gateway_graph.py) when it picks the simulator's class
    on at least MIN_AGREEMENT of the real windows (on a few hundred windows: every one); the random
    windows, which belong to no class, are reported, not judged. Otherwise (a barely trained
    network whose classes are near ties), and for every other network, it gets this module's
    exact graph, which must equal the simulator bit for bit on every window or is refused. A
    network with both views has no exact graph: its gateway graph is kept too when every real
    window it disagrees on is a near tie in the simulator (the simulator's class leads the
    graph's by less than NEAR_TIE_LOGITS) and they are at most MAX_NEAR_TIE_SHARE of the real
    windows; else it is refused. The file at `onnx_path` is replaced only by a graph that passed."""
    import os
    from pathlib import Path

    from edgesnn.firmware_sim.esvae import IntESVAE
    from edgesnn.firmware_sim.gateway_graph import (MAX_NEAR_TIE_SHARE, MIN_AGREEMENT, NEAR_TIE_LOGITS,
                                                    build_gateway_onnx, fits)

    onnx_path = Path(onnx_path)
    trial = onnx_path.with_name(onnx_path.name + ".checking")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n_random, net.window)) * rng.uniform(0.01, 3.0, size=(n_random, 1))
    x = np.concatenate([check_windows, noise]).astype(np.float32)
    real = len(check_windows)
    gateway_agreement = None
    try:
        if fits(net):
            onnx.save(build_gateway_onnx(net), str(trial))
            check, _ = _compare(net, trial, x, real)
            gateway_agreement = check["real_argmax_agreement"]
            both_views = getattr(net, "envelope", None) is not None
            leads = check.pop("real_disagreement_leads", [])
            near_ties = both_views and max(leads, default=0.0) < NEAR_TIE_LOGITS and len(leads) <= MAX_NEAR_TIE_SHARE * real
            if gateway_agreement >= MIN_AGREEMENT or near_ties:
                os.replace(trial, onnx_path)
                return check | {"graph": "gateway: float32 currents and membranes (firmware_sim/gateway_graph.py)"} \
                    | ({"real_near_tie_disagreements": len(leads)} if leads else {})
            if both_views:
                raise EdgesnnError(f"{onnx_path} not written: the gateway graph picked another class than the integer "
                                   f"network on {len(leads)} of {real} real windows, where the integer network's class "
                                   f"led by up to {max(leads):.2f} logits; a network with both views has no exact graph "
                                   f"to fall back on, and its gateway graph is kept only when those are near ties (a lead "
                                   f"below {NEAR_TIE_LOGITS:g} logits, on at most {MAX_NEAR_TIE_SHARE:.0%} of the windows); "
                                   f"a network trained longer has fewer near ties")
        onnx.save(build_esvae_onnx(net) if isinstance(net, IntESVAE) else build_onnx(net), str(trial))
        check, differ = _compare(net, trial, x, real)
        check.pop("real_disagreement_leads", None)  # bit for bit or refused: there are none to judge
        if differ:
            tried = ("" if gateway_agreement is None else
                     f"; the gateway graph, tried first, picked its class on {gateway_agreement:.2%} of real windows")
            raise EdgesnnError(f"{onnx_path} not written: onnxruntime and the integer simulator differ on {differ} of "
                               f"{len(x) * len(check.get('exit_thresholds_checked', [None]))} windows{tried}")
        os.replace(trial, onnx_path)
    finally:
        trial.unlink(missing_ok=True)
    check["graph"] = "exact: the integer network bit for bit (firmware_sim/onnx_graph.py)"
    if gateway_agreement is not None:
        check["gateway_real_argmax_agreement"] = gateway_agreement  # why the gateway graph was not kept
    return check


def _compare(net, onnx_path, x: np.ndarray, real: int) -> tuple[dict, int]:
    """onnxruntime on `onnx_path` against the simulator on windows `x` (the first `real` of them
    real): the card's check and the number of windows that are not bit for bit the same."""
    from edgesnn.firmware_sim.esvae import IntESVAE
    from edgesnn.runtime import MAX_BATCH, onnx_session

    detector = isinstance(net, IntESVAE)
    session = onnx_session(str(onnx_path))
    # a network with early exits is checked at its own threshold (windows leave at every stage),
    # with none leaving early (2: above any probability) and with all leaving at the first exit (0)
    exits = not detector and bool(net.exits)
    thresholds = [net.exit_threshold, 2.0, 0.0] if exits else [None]
    differ = 0
    for threshold in thresholds:
        feed = {} if threshold is None else {"exit_threshold": np.array(threshold, dtype=np.float32)}
        # the simulator's scores, or its Q8 logits / 256 (exact in float32)
        ours = (net.scores(x)[:, None] if detector
                else (net.q8_logits(x, exit_threshold=threshold) / (1 << Q)).astype(np.float32))
        theirs = np.concatenate([session.run(None, {"acceleration": x[i : i + MAX_BATCH, None]} | feed)[0]
                                 for i in range(0, len(x), MAX_BATCH)])
        exact = np.all(theirs == ours, axis=1)
        differ += len(x) - int(exact.sum())
        if threshold is None or threshold == net.exit_threshold:
            check = {"reference": "edgesnn.firmware_sim (integer network)", "windows": len(x),
                     "real_windows": real, "bit_exact_windows": int(exact.sum())}
            if not detector:
                same = theirs.argmax(1) == ours.argmax(1)
                check |= {"argmax_agreement": float(np.mean(same)),
                          "real_argmax_agreement": float(np.mean(same[:real])),
                          "max_logit_difference": float(np.abs(theirs - ours)[:real].max(initial=0.0)),
                          # how far the simulator's class leads the graph's where they disagree
                          "real_disagreement_leads": [float(ours[i].max() - ours[i, theirs[i].argmax()])
                                                      for i in np.flatnonzero(~same[:real])]}
    if exits:
        check["exit_thresholds_checked"] = thresholds
    return check, differ
