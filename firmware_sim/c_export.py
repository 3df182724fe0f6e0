"""The integer network as self-contained C99: a header, one source, no heap, no floats.

The source holds the weights and tables as `const` arrays (flash) and every buffer as a static
array (RAM, the layer-major schedule of budget.py: the encoder emits the spike counts of all
timesteps, packed; each block then steps through time with one current and one membrane). A
network with both views runs its envelope view after the raw view, in the same buffers, its
spectrum band by band (envelope.py). It computes exactly what network.py computes; tests compile
it with gcc and compare bit for bit.

Shifts of negative values use `asr`, a floor shift written without relying on the compiler's
choice for `>>` on negative integers.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from edgesnn.errors import EdgesnnError
from edgesnn.firmware_sim.arith import GATE_Q, Q, Requant
from edgesnn.firmware_sim.budget import storage_bits
from edgesnn.firmware_sim.network import IntMRASNN


def _array(ctype: str, name: str, values) -> str:
    values = [str(int(v)) for v in np.asarray(values).ravel()]
    rows = [", ".join(values[i : i + 24]) for i in range(0, len(values), 24)]
    return f"static const {ctype} {name}[{len(values)}] = {{\n  " + ",\n  ".join(rows) + "\n};\n"


def _rq(name: str, rq: Requant) -> str:
    return (_array("int32_t", f"{name}_m", rq.m) + _array("uint8_t", f"{name}_sh", rq.shift)
            + _array("int32_t", f"{name}_b", rq.bias))


HELPERS = r"""
static int64_t asr(int64_t x, int s) { /* floor(x / 2^s) */
  return x >= 0 ? (x >> s) : -((-x + (((int64_t)1 << s) - 1)) >> s);
}
static int64_t floordiv(int64_t a, int64_t b) { /* b > 0 */
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
static int64_t requant(int64_t acc, int32_t m, int sh, int32_t bias) {
  return asr(acc * m + ((int64_t)1 << (sh - 1)), sh) + bias;
}
static int32_t clampi(int64_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : (int32_t)v; }
static int16_t sat16(int64_t v) { return (int16_t)clampi(v, -32768, 32767); }
static int32_t isqrt(uint64_t n) {
  uint64_t r = 0, bit = (uint64_t)1 << 62;
  while (bit > n) bit >>= 2;
  while (bit) {
    if (n >= r + bit) { n -= r + bit; r = (r >> 1) + bit; } else { r >>= 1; }
    bit >>= 2;
  }
  return (int32_t)r;
}
static int get_count(const uint8_t *p, int32_t i) {
  return (p[(i * SBITS) >> 3] >> ((i * SBITS) & 7)) & SMASK;
}
static void set_count(uint8_t *p, int32_t i, int v) {
  int shift = (i * SBITS) & 7;
  p[(i * SBITS) >> 3] = (uint8_t)((p[(i * SBITS) >> 3] & ~(SMASK << shift)) | (v << shift));
}
"""

BODY = r"""
/* squeeze-excitation on cur [C][len]: per-channel gate from the channel means */
static void attend(int len, int log2len, const int8_t *w1, const int32_t *m1, const uint8_t *sh1, const int32_t *b1,
                   const int8_t *w2, const int32_t *m2, const uint8_t *sh2, const int32_t *b2) {
  int c, r, x;
  for (c = 0; c < C; c++) {
    int64_t s = 0;
    for (x = 0; x < len; x++) s += cur[c * len + x];
    att_mean[c] = asr(s, log2len);
  }
  for (r = 0; r < H; r++) {
    int64_t acc = 0;
    for (c = 0; c < C; c++) acc += (int64_t)w1[r * C + c] * att_mean[c];
    att_hidden[r] = requant(acc, m1[r], sh1[r], b1[r]);
    if (att_hidden[r] < 0) att_hidden[r] = 0;
  }
  for (c = 0; c < C; c++) {
    int64_t acc = 0;
    int32_t g;
    for (r = 0; r < H; r++) acc += (int64_t)w2[c * H + r] * att_hidden[r];
    g = lut[clampi(requant(acc, m2[c], sh2[c], b2[c]) + 128, 0, 255)];
    for (x = 0; x < len; x++) cur[c * len + x] = (int16_t)asr((int64_t)cur[c * len + x] * g + GATE_HALF, GATE_Q);
  }
}

/* one timestep of the layer's neurons: mem += cur (with leak); counts out, pooled by `pool` */
static void neuron_step(int len, int log2len, const int32_t *gm, const uint8_t *gsh, const int32_t *gb,
                        uint8_t *out, int32_t out_base, int pool) {
  int c, x;
  for (c = 0; c < C; c++) {
    int64_t sum = 0;
    int32_t g = 0, prev = 0;
    for (x = 0; x < len; x++) {
      int16_t v = sat16(asr(mem[c * len + x], 1) + cur[c * len + x]);
      mem[c * len + x] = v;
      sum += v;
    }
    if (gm) g = lut[clampi(requant(asr(sum, log2len), gm[c], gsh[c], gb[c]) + 128, 0, 255)];
    for (x = 0; x < len; x++) {
      int32_t v = mem[c * len + x];
      int64_t u = gm ? asr((int64_t)v * g + GATE_HALF, GATE_Q) : v;
      int32_t s = clampi(asr(u, Q), 0, LEVELS);
      mem[c * len + x] = (int16_t)(v - (s << Q));
      if (!pool) {
        set_count(out, out_base + c * len + x, s);
      } else if (x & 1) {
        set_count(out, out_base + c * (len / 2) + x / 2, s > prev ? s : prev);
      } else {
        prev = s;
      }
    }
  }
}

/* a block: conv on the counts of all timesteps in `in`, attention, residual, neurons, max pool */
static void block(const uint8_t *in, uint8_t *out, int len, int log2len, const int8_t *w, const int32_t *m,
                  const uint8_t *sh, const int32_t *b, const int8_t *w1, const int32_t *m1, const uint8_t *sh1,
                  const int32_t *b1, const int8_t *w2, const int32_t *m2, const uint8_t *sh2, const int32_t *b2,
                  const int32_t *gm, const uint8_t *gsh, const int32_t *gb) {
  int t, co, ci, k, x;
  memset(mem, 0, sizeof(int16_t) * C * len);
  for (t = 0; t < T; t++) {
    /* event-driven: only the non-zero counts reach the accumulators (w is [C_in][K][C_out]) */
    for (x = 0; x < len; x++) {
      for (co = 0; co < C; co++) conv_acc[co] = 0;
      for (ci = 0; ci < C; ci++) {
        for (k = 0; k < BK; k++) {
          int xi = x + k - BPAD, n;
          const int8_t *wk = w + (ci * BK + k) * C;
          if (xi < 0 || xi >= len || !(n = get_count(in, (t * C + ci) * len + xi))) continue;
          for (co = 0; co < C; co++) conv_acc[co] += wk[co] * n;
        }
      }
      for (co = 0; co < C; co++) cur[co * len + x] = sat16(requant(conv_acc[co], m[co], sh[co], b[co]));
    }
    attend(len, log2len, w1, m1, sh1, b1, w2, m2, sh2, b2);
    for (co = 0; co < C; co++)
      for (x = 0; x < len; x++)
        cur[co * len + x] = sat16((int64_t)cur[co * len + x] + ((int64_t)get_count(in, (t * C + co) * len + x) << Q));
    neuron_step(len, log2len, gm, gsh, gb, out, t * C * (len / 2), 1);
  }
}
"""


def c_sources(net: IntMRASNN, name: str) -> tuple[str, str]:
    """(header, source) for `net`; the API is edgesnn_infer() in <name>.h."""
    if net.exits:
        raise EdgesnnError(f"{name}: the C export covers the plain MRA-SNN, not a shrinking network with early "
                           f"exits (ssnn); firmware-sim and onnxruntime run this one")
    c = sum(e.w.shape[0] for e in net.encoder)
    h = net.encoder_attention.w1.shape[0]
    lengths = net.lengths()
    l0 = lengths[0]
    bk = net.blocks[0].conv.w.shape[2]
    bits = storage_bits(net.encoder_neurons.levels)
    packed = lambda n: (n * bits + 7) // 8  # noqa: E731
    guard = f"EDGESNN_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_H"
    header = f"""/* {name}: integer MRA-SNN for one {net.window}-sample window, generated by edgesnn.
 * C99, no heap, no floating point. */
#ifndef {guard}
#define {guard}
#include <stdint.h>

#define EDGESNN_WINDOW {net.window}
#define EDGESNN_CLASSES {len(net.classes)}

extern const char *const edgesnn_classes[EDGESNN_CLASSES];

/* x: one window of samples in any fixed gain (the network standardizes it).
 * logits_q8: Q8 logits (divide by 256 for the float model's scale). Returns the class index. */
int edgesnn_infer(const int16_t x[EDGESNN_WINDOW], int32_t logits_q8[EDGESNN_CLASSES]);

#endif
"""
    consts = [f"#define W {net.window}", f"#define LOG2W {int(math.log2(net.window))}", f"#define C {c}",
              f"#define H {h}", f"#define T {net.timesteps}", f"#define L0 {l0}", f"#define S_IN {net.s_in}",
              f"#define LEVELS {net.encoder_neurons.levels}", f"#define SBITS {bits}", f"#define SMASK {(1 << bits) - 1}",
              f"#define Q {Q}", f"#define GATE_Q {GATE_Q}", f"#define GATE_HALF {1 << (GATE_Q - 1)}",
              f"#define BK {bk}", f"#define BPAD {net.blocks[0].conv.pad}", f"#define NCLASSES {len(net.classes)}",
              f"#define FC_IN {net.fc_w.shape[1]}"]
    tables = [_array("int16_t", "lut", net.lut)]
    for k, e in enumerate(net.encoder):
        tables += [_array("int8_t", f"enc{k}_w", e.w), _rq(f"enc{k}", e.rq)]
    tables += _view_tables("enc", net.encoder_attention, net.encoder_neurons, "b", net.blocks)
    tables += [_array("int8_t", "fc_w", net.fc_w), _rq("fc", net.fc_rq)]
    env_consts, env_tables, env_buffers, env_code, env_run = _envelope_parts(net, c, h, bk)
    consts += env_consts
    tables += env_tables
    classes = ", ".join(f'"{cl}"' for cl in net.classes)
    big, small = packed(net.timesteps * c * lengths[0]), packed(net.timesteps * c * lengths[1])
    buffers = f"""
/* RAM: the layer-major schedule (see edgesnn firmware-sim). xq lives only in the encoder, spk_b
 * only from the first block on, so they share memory. */
static int16_t cur[C * L0];
static int16_t mem[C * L0];
static uint8_t spk_a[{big}];
static union {{ int8_t xq[W]; uint8_t spk_b[{small}]; }} shared;
static int64_t att_mean[C], att_hidden[H];
static int32_t counts[C], conv_acc[C];
"""
    buffers += env_buffers
    enc_gate = "enc_gate_m, enc_gate_sh, enc_gate_b" if net.encoder_neurons.gate is not None else "0, 0, 0"
    enc_convs = "\n".join(
        f"  conv_encoder(enc{k}_w, enc{k}_m, enc{k}_sh, enc{k}_b, {e.w.shape[0]}, {e.w.shape[2]}, {e.pad}, "
        f"{e.stride}, {sum(x.w.shape[0] for x in net.encoder[:k])});" for k, e in enumerate(net.encoder))
    blocks = _block_calls("b", net.blocks, lengths)
    final = "spk_a" if len(net.blocks) % 2 == 0 else "shared.spk_b"
    lf = lengths[-1]
    source = f"""/* {name}: integer MRA-SNN, generated by edgesnn (edgesnn.firmware_sim.c_export). */
#include <string.h>
#include "{name}.h"

{chr(10).join(consts)}

const char *const edgesnn_classes[EDGESNN_CLASSES] = {{{classes}}};

{"".join(tables)}{buffers}{HELPERS}{BODY}
/* the window's integer mean, rounded half up: what both views start from */
static int32_t window_mean(const int16_t *x) {{
  int64_t sum = 0;
  int32_t i;
  for (i = 0; i < W; i++) sum += x[i];
  return (int32_t)asr(sum + W / 2, LOG2W);
}}

static void standardize(const int16_t *x) {{
  int64_t e = 0;
  int32_t mean = window_mean(x), rms, i;
  for (i = 0; i < W; i++) e += (int64_t)(x[i] - mean) * (x[i] - mean);
  rms = isqrt((uint64_t)(e >> LOG2W));
  if (rms < 1) rms = 1;
  for (i = 0; i < W; i++)
    shared.xq[i] = (int8_t)clampi(floordiv((int64_t)(x[i] - mean) * ((int64_t)1 << (S_IN + 1)) + rms, 2 * (int64_t)rms),
                                  -127, 127);
}}

static void conv_encoder(const int8_t *w, const int32_t *m, const uint8_t *sh, const int32_t *b, int cout, int k,
                         int pad, int stride, int first) {{
  int co, j, i;
  for (co = 0; co < cout; co++) {{
    for (j = 0; j < L0; j++) {{
      int32_t acc = 0;
      for (i = 0; i < k; i++) {{
        int xi = j * stride + i - pad;
        if (xi >= 0 && xi < W) acc += w[co * k + i] * shared.xq[xi];
      }}
      cur[(first + co) * L0 + j] = sat16(requant(acc, m[co], sh[co], b[co]));
    }}
  }}
}}
{env_code}
int edgesnn_infer(const int16_t x[EDGESNN_WINDOW], int32_t logits_q8[EDGESNN_CLASSES]) {{
  int t, c, i, best = 0;
  standardize(x);
{enc_convs}
  attend(L0, {int(math.log2(l0))}, enc_att_w1, enc_att1_m, enc_att1_sh, enc_att1_b, enc_att_w2, enc_att2_m,
         enc_att2_sh, enc_att2_b);
  memset(mem, 0, sizeof mem);
  for (t = 0; t < T; t++) neuron_step(L0, {int(math.log2(l0))}, {enc_gate}, spk_a, t * C * L0, 0);
{chr(10).join(blocks)}
  for (c = 0; c < C; c++) {{
    counts[c] = 0;
    for (t = 0; t < T; t++)
      for (i = 0; i < {lf}; i++) counts[c] += get_count({final}, (t * C + c) * {lf} + i);
  }}
{env_run}  for (i = 0; i < NCLASSES; i++) {{
    int64_t acc = 0;
    for (c = 0; c < C; c++) acc += (int64_t)fc_w[i * FC_IN + c] * counts[c];
{"    for (c = 0; c < C; c++) acc += (int64_t)fc_w[i * FC_IN + C + c] * ((int64_t)env_counts[c] << ENV_COUNT_SHIFT);" if net.envelope is not None else ""}
    logits_q8[i] = (int32_t)requant(acc, fc_m[i], fc_sh[i], fc_b[i]);
    if (logits_q8[i] > logits_q8[best]) best = i;
  }}
  return best;
}}
"""
    return header, source


def _view_tables(name: str, attention, neurons, block_prefix: str, blocks) -> list[str]:
    """The tables of one view after its encoder: attention `<name>_att*`, neuron gate `<name>_gate`,
    and block k's convolution `<block_prefix><k>`, attention and gate."""
    def att(n, a):
        return [_array("int8_t", f"{n}_att_w1", a.w1), _rq(f"{n}_att1", a.rq1), _array("int8_t", f"{n}_att_w2", a.w2),
                _rq(f"{n}_att2", a.rq2)]

    tables = att(name, attention) + ([_rq(f"{name}_gate", neurons.gate)] if neurons.gate is not None else [])
    for k, blk in enumerate(blocks):
        b = f"{block_prefix}{k}"
        tables += [_array("int8_t", f"{b}_w", blk.conv.w.transpose(1, 2, 0)), _rq(b, blk.conv.rq), *att(b, blk.attention)]
        tables += [_rq(f"{b}_gate", blk.neurons.gate)] if blk.neurons.gate is not None else []
    return tables


def _block_calls(prefix: str, blocks, lengths: list[int]) -> list[str]:
    """edgesnn_infer's lines that run `blocks` (tables `<prefix><k>`), spike buffers taking turns."""
    lines = []
    for k, blk in enumerate(blocks):
        b = f"{prefix}{k}"
        src, dst = ("spk_a", "shared.spk_b") if k % 2 == 0 else ("shared.spk_b", "spk_a")
        gate = f"{b}_gate_m, {b}_gate_sh, {b}_gate_b" if blk.neurons.gate is not None else "0, 0, 0"
        lines.append(f"  block({src}, {dst}, {lengths[k]}, {int(math.log2(lengths[k]))}, {b}_w, {b}_m, {b}_sh, {b}_b, "
                     f"{b}_att_w1, {b}_att1_m, {b}_att1_sh, {b}_att1_b, {b}_att_w2, {b}_att2_m, {b}_att2_sh, "
                     f"{b}_att2_b, {gate});")
    return lines


def _envelope_parts(net: IntMRASNN, c: int, h: int, bk: int) -> tuple[list[str], list[str], str, str, str]:
    """The envelope view of a network with both views (envelope.py): constants, tables, buffers,
    functions and the lines of edgesnn_infer that run it after the raw view, in its buffers (its
    channels, attention width and block kernel are the raw view's; its lengths are shorter).
    Nothing for a network with the raw view only."""
    e = net.envelope
    if e is None:
        return [], [], "", "", ""
    sp = e.spectrum
    if ((e.mix.w.shape[0], e.attention.w1.shape[0]) != (c, h)
            or any((b.conv.w.shape[2], b.conv.pad) != (bk, net.blocks[0].conv.pad) for b in e.blocks)):
        raise EdgesnnError("the C export runs the envelope view in the raw view's buffers: it needs the raw view's "
                           "channels, attention width and block kernel")
    spans = sp.spans()
    morlet = np.concatenate([np.concatenate([sp.bank[b, a:z], sp.bank[sp.bands + b, a:z]]) for b, (a, z) in enumerate(spans)])
    n = sp.dft.shape[1]
    consts = [f"#define ENV_PAIRS {int(sp.pairs(net.window))}",  # Morlet bands: envelopes averaged in pairs
              f"#define ENV_BANDS {sp.bands}", f"#define LOG2_ENV_BANDS {int(math.log2(sp.bands))}",
              f"#define ENV_BINS {sp.bins}", f"#define ENV_N {n}", f"#define LOG2_ENV_N {int(math.log2(n))}",
              f"#define ENV_STRIDE {sp.stride}", f"#define ENV_PAD {sp.pad}", f"#define ENV_SHIFT {sp.shift}",
              f"#define ENV_COUNT_SHIFT {e.count_shift}"]
    tables = [_array("int8_t", "morlet", morlet), _array("uint16_t", "morlet_start", [a for a, _ in spans]),
              _array("uint16_t", "morlet_len", [z - a for a, z in spans]), _array("int8_t", "env_dft", sp.dft),
              _array("int8_t", "env_mix_w", e.mix.w[:, :, 0]), _rq("env_mix", e.mix.rq)]
    tables += _view_tables("env", e.attention, e.neurons, "env_b", e.blocks)
    buffers = """static int32_t env_band[ENV_N];
static int16_t spectrum[ENV_BINS * ENV_BANDS];
static int32_t env_counts[C];
"""
    code = r"""
/* the envelope view's spectrum [ENV_BINS][ENV_BANDS] of the centered window, band by band */
static void envelope_spectrum(const int16_t *x) {
  int64_t sum, prev = 0, mean;
  int32_t mean_x = window_mean(x), b, j, t, k, off = 0;
  for (b = 0; b < ENV_BANDS; b++) {
    const int8_t *re = morlet + off, *im = morlet + off + morlet_len[b];
    off += 2 * morlet_len[b];
    sum = 0;
    for (j = 0; j < (ENV_PAIRS + 1) * ENV_N; j++) {
      int64_t zr = 0, zi = 0, mag;
      for (t = 0; t < morlet_len[b]; t++) {
        int32_t xi = j * ENV_STRIDE - ENV_PAD + morlet_start[b] + t;
        if (xi >= 0 && xi < W) { zr += (int64_t)re[t] * (x[xi] - mean_x); zi += (int64_t)im[t] * (x[xi] - mean_x); }
      }
      mag = isqrt((uint64_t)(zr * zr + zi * zi));
      if (!ENV_PAIRS) { env_band[j] = (int32_t)mag; sum += mag; }
      else if (j & 1) { env_band[j / 2] = (int32_t)((prev + mag) >> 1); sum += env_band[j / 2]; } else { prev = mag; }
    }
    mean = sum >> LOG2_ENV_N;
    if (mean < 1) mean = 1;
    for (t = 0; t < ENV_N; t++) env_band[t] = sat16(((int64_t)env_band[t] << Q) / mean - (1 << Q));
    for (k = 0; k < ENV_BINS; k++) {
      int64_t fr = 0, fi = 0;
      for (t = 0; t < ENV_N; t++) {
        fr += (int64_t)env_dft[k * ENV_N + t] * env_band[t];
        fi += (int64_t)env_dft[(ENV_BINS + k) * ENV_N + t] * env_band[t];
      }
      spectrum[k * ENV_BANDS + b] = (int16_t)clampi(isqrt((uint64_t)(fr * fr + fi * fi)) >> ENV_SHIFT, 0, 32767);
    }
  }
}

/* the 1x1 mix of the bins into channels: Q8 currents [C][ENV_BANDS] */
static void envelope_mix(void) {
  int co, k, x;
  for (co = 0; co < C; co++)
    for (x = 0; x < ENV_BANDS; x++) {
      int64_t acc = 0;
      for (k = 0; k < ENV_BINS; k++) acc += (int64_t)env_mix_w[co * ENV_BINS + k] * spectrum[k * ENV_BANDS + x];
      cur[co * ENV_BANDS + x] = sat16(requant(acc, env_mix_m[co], env_mix_sh[co], env_mix_b[co]));
    }
}
"""
    gate = "env_gate_m, env_gate_sh, env_gate_b" if e.neurons.gate is not None else "0, 0, 0"
    lengths = e.lengths()
    run = ["  envelope_spectrum(x);", "  envelope_mix();",
           "  attend(ENV_BANDS, LOG2_ENV_BANDS, env_att_w1, env_att1_m, env_att1_sh, env_att1_b, env_att_w2, env_att2_m,",
           "         env_att2_sh, env_att2_b);", "  memset(mem, 0, sizeof mem);",
           f"  for (t = 0; t < T; t++) neuron_step(ENV_BANDS, LOG2_ENV_BANDS, {gate}, spk_a, t * C * ENV_BANDS, 0);"]
    run += _block_calls("env_b", e.blocks, lengths)
    final, lf = ("spk_a" if len(e.blocks) % 2 == 0 else "shared.spk_b"), lengths[-1]
    run += ["  for (c = 0; c < C; c++) {", "    env_counts[c] = 0;", "    for (t = 0; t < T; t++)",
            f"      for (i = 0; i < {lf}; i++) env_counts[c] += get_count({final}, (t * C + c) * {lf} + i);", "  }"]
    return consts, tables, buffers, code, "\n".join(run) + "\n"


def write_c(net: IntMRASNN, out_dir: Path, name: str) -> tuple[Path, Path]:
    header, source = c_sources(net, name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h, c = out_dir / f"{name}.h", out_dir / f"{name}.c"
    h.write_text(header)
    c.write_text(source)
    return h, c
