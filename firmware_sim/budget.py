"""What the integer network needs on a device: flash, RAM, operations, energy and cycles.

Memory is what the C export allocates (layer-major schedule): the encoder runs once and emits
the spike counts of all T timesteps, packed; each block then runs its T steps with one current and
one membrane, reading packed counts and writing pooled ones. Membranes and currents are int16,
weights int8, requantization per channel an int32 multiplier, a shift and an int32 bias. The
stack (a few dozen bytes of locals) is not counted.

Operations: dense multiply-accumulates (MAC) where the input is not a spike (the encoder on the
signal, the attention layers, the classifier) and accumulates (AC) triggered by spikes: an input
count c > 0 at one position adds its weight c times into every output it reaches (kernel x output
channels). The ANN figure is the MACs of the same network run as a conventional network, once.

Energy constants, 45 nm (Horowitz, ISSCC 2014), per operation in pJ: fp32 AC 0.9, MAC 4.6; int8
AC 0.03, MAC 0.23. Cycle estimates use the per-operation costs of each MCU profile below; they are
estimates for planning, not measurements on silicon.

A network with both views (frontend=raw+envelope) is counted as the C export runs it: the
envelope view after the raw view, in the raw view's buffers, one band at a time (its Morlet
kernels stored and multiplied over their nonzero taps only, its envelope and its DFT in a
one-band buffer), into an int16 spectrum. Its integer square roots and
divisions are counted apart (`envelope_isqrt`, `envelope_divisions`) and priced in cycles; the
energy figure holds MACs and ACs only, the view's MACs on 16-bit values (`envelope_wide_mac`:
Morlet bank, DFT, mix) at the int8x16 price. (In cycles they cost what an int8 MAC does: the M4's
dual MAC multiplies 16-bit halves, and their sums fit 32 bits.)
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesnn.firmware_sim.network import IntMRASNN

# int8x16: an int8 weight times a 16-bit value into a 32-bit sum (the envelope view's Morlet bank,
# DFT and mix); not in the table: twice its 8-bit multiply (0.2 pJ) plus its 32-bit add (0.1 pJ)
ENERGY_PJ = {"fp32": {"ac": 0.9, "mac": 4.6}, "int8": {"ac": 0.03, "mac": 0.23}, "int8x16": {"mac": 0.5}}


@dataclass(frozen=True)
class McuProfile:
    name: str
    mhz: float
    cycles_per_mac: float  # int8 MAC (SIMD dual 16-bit MAC where the core has it)
    cycles_per_ac: float  # one spike-triggered accumulate (load weight, add)
    cycles_per_neuron: float  # one neuron update: leak, add, gate, fire, reset
    cycles_per_isqrt: float  # floor square root of a 64-bit sum of squares (the envelope view)
    cycles_per_division: float  # 32-bit integer division (the envelope view's modulation depth)


MCU_PROFILES = (  # M4: no double-precision unit, a bitwise 64-bit square root; M7: a double sqrt and a check
    McuProfile("Cortex-M4 @ 168 MHz", 168.0, 0.5, 1.0, 12.0, 120.0, 12.0),
    McuProfile("Cortex-M7 @ 480 MHz", 480.0, 0.25, 0.5, 6.0, 40.0, 10.0),
)


def _requant_bytes(channels: int) -> int:
    return channels * (4 + 1 + 4)  # int32 multiplier, int8 shift, int32 bias


def flash_bytes(net: IntMRASNN) -> dict:
    heads = [(net.fc_w, net.fc_rq)] + [(h.w, h.rq) for h in net.exits]
    weights = sum(c.w.size for c in net.encoder) + sum(w.size for w, _ in heads)
    tables = sum(_requant_bytes(c.w.shape[0]) for c in net.encoder) + sum(_requant_bytes(w.shape[0]) for w, _ in heads)
    weights += sum(m.q.size for m in net.mixes if m is not None)
    tables += 2 * len(net.lut)  # int16 sigmoid table
    tables += 2 * len(net.exp_table) if net.exits else 0  # uint16 exp table of the early exits
    views = [(net.encoder_attention, net.encoder_neurons, net.blocks)]
    if net.envelope is not None:
        e = net.envelope
        spans = e.spectrum.spans()
        weights += sum(2 * (stop - start) for start, stop in spans) + e.spectrum.dft.size + e.mix.w.size
        tables += 4 * len(spans) + _requant_bytes(e.mix.w.shape[0])  # each band's first tap and tap count, uint16
        views.append((e.attention, e.neurons, e.blocks))
    for attention, neurons, blocks in views:  # what follows each view's encoder: attention, gates, blocks
        atts = [attention] + [b.attention for b in blocks]
        weights += sum(a.w1.size + a.w2.size for a in atts) + sum(b.conv.w.size for b in blocks)
        tables += sum(_requant_bytes(a.w1.shape[0]) + _requant_bytes(a.w2.shape[0]) for a in atts)
        tables += sum(_requant_bytes(b.conv.w.shape[0]) for b in blocks)
        tables += sum(_requant_bytes(len(n.gate.m)) for n in [neurons] + [b.neurons for b in blocks]
                      if n.gate is not None)
    return _flash(weights, tables)


def _flash(weights: int, tables: int) -> dict:
    return {"weights": int(weights), "tables": int(tables), "total": int(weights + tables)}


def _ram(buffers: dict, window: int) -> dict:
    """RAM from the static buffers; the first is the caller's int16 input window."""
    return {"buffers": buffers, "static": sum(buffers.values()) - 2 * window, "peak": sum(buffers.values())}


def storage_bits(levels: int) -> int:
    """Bits that store one spike count, a power of two so that counts never straddle bytes."""
    bits = max(1, int(levels).bit_length())
    return 1 << (bits - 1).bit_length()


def ram_bytes(net: IntMRASNN) -> dict:
    """The static buffers of the C export (c_export.py), plus the caller's int16 window. The
    encoder writes spike buffer A, block 0 reads A and writes B, block 1 writes A again, and so
    on; each buffer is as large as the largest stage output it holds. A shrinking network (which
    the C export does not cover) adds one int16 frame for a stage's time-mixed input."""
    c = sum(e.w.shape[0] for e in net.encoder)
    h = net.encoder_attention.w1.shape[0]
    bits = storage_bits(net.encoder_neurons.levels)
    lengths = net.lengths()
    packed = lambda n: (n * bits + 7) // 8  # noqa: E731
    outputs = [net.timesteps * c * lengths[0]] + [t * c * lengths[k + 1] for k, t in enumerate(net.stage_timesteps)]
    buffers = {
        "input window (int16, the caller's)": 2 * net.window,
        "current (int16)": 2 * c * lengths[0],
        "membrane (int16)": 2 * c * lengths[0],
        "spike counts A (packed)": packed(max(outputs[0::2])),
        "int8 input / spike counts B (shared)": max(net.window, packed(max(outputs[1::2]))),
        "attention sums (int64), conv and count sums (int32)": 8 * (c + h) + 4 * (c + c),
    }
    mixed = [2 * c * lengths[k] for k, m in enumerate(net.mixes) if m is not None]
    if mixed:
        buffers["time-mixed input frame (int16)"] = max(mixed)
    if net.envelope is not None:  # after the raw view, in its buffers (its lengths are shorter)
        spectrum = net.envelope.spectrum
        buffers["envelope view: one band's envelope (int32)"] = 4 * spectrum.dft.shape[1]
        buffers["envelope view: spectrum (int16)"] = 2 * spectrum.bins * spectrum.bands
        buffers["raw view's counts, kept (int32)"] = 4 * c
    return _ram(buffers, net.window)


def operations(net: IntMRASNN, stats: dict) -> dict:
    """Mean per window; `stats` from IntMRASNN.run(..., stats) over some windows. In a network
    with early exits a stage costs only for the windows that reach it."""
    n = stats["windows"]
    lengths = net.lengths()
    c = sum(e.w.shape[0] for e in net.encoder)
    encoder_mac = sum(e.w.shape[0] * e.w.shape[2] * lengths[0] for e in net.encoder)
    enc_att = net.encoder_attention.w1.size + net.encoder_attention.w2.size
    mac, ac = encoder_mac + enc_att, 0.0
    neuron_updates = net.timesteps * c * lengths[0]
    ann_mac = encoder_mac + enc_att + net.fc_w.size  # the conventional network: every stage, once
    density = {}
    # a stage no window reached (every one left at an earlier exit) has no counters: it cost nothing
    stats = {f"block{k}_{what}": 0 for k in range(len(net.blocks))
             for what in ("windows", "input_spikes", "input_nonzero")} | stats
    for k, (b, t, m) in enumerate(zip(net.blocks, net.stage_timesteps, net.mixes)):
        reach = stats[f"block{k}_windows"] / n  # share of windows that run block k
        c_out, _, kernel = b.conv.w.shape
        if m is None:  # each unit of an input spike count: one add into every output it reaches
            ac += stats[f"block{k}_input_spikes"] / n * c_out * kernel
        else:  # a time-mixed input is a small integer: a multiply-accumulate per nonzero input
            mac += stats[f"block{k}_input_nonzero"] / n * c_out * kernel + reach * m.q.size * c * lengths[k]
        mac += reach * t * (b.attention.w1.size + b.attention.w2.size)
        neuron_updates += reach * t * c * lengths[k]  # before pooling
        head = net.fc_w if k == len(net.blocks) - 1 else (net.exits[k].w if net.exits else None)
        mac += reach * head.size if head is not None else 0
        ann_mac += b.conv.w.size * lengths[k] + b.attention.w1.size + b.attention.w2.size
        density[k] = stats[f"block{k}_input_nonzero"] / max(stats[f"block{k}_windows"], 1) / (t * c * lengths[k])
    out = {"snn_mac": int(round(mac)), "snn_ac": int(round(ac)), "neuron_updates": int(round(neuron_updates)),
           "ann_mac": int(ann_mac), "spike_density": density}
    if net.envelope is not None:
        env = _envelope_operations(net, stats)
        for key in ("snn_mac", "snn_ac", "neuron_updates", "ann_mac"):
            out[key] += env.pop(key)
        out |= env
    if net.exits:
        out["exit_share"] = {k: stats.get(f"exit{k}_windows", 0) / n for k in range(len(net.blocks))}
    return out


def _envelope_operations(net: IntMRASNN, stats: dict) -> dict:
    """The envelope view's share, mean per window (network.IntMRASNN.envelope_counts)."""
    n, e, t = stats["windows"], net.envelope, net.timesteps
    sp = e.spectrum
    frames = net.window // sp.stride  # band samples before any pair average
    samples = sp.dft.shape[1]  # and after it
    front = sum(2 * (stop - start) for start, stop in sp.spans()) * frames + sp.dft.size * sp.bands
    c, bins = e.mix.w.shape[:2]
    mix = c * bins * sp.bands
    mac = ann = front + mix + e.attention.w1.size + e.attention.w2.size
    ac, updates = 0.0, t * c * sp.bands
    density = {}
    for k, (b, length) in enumerate(zip(e.blocks, e.lengths())):
        c_out, _, kernel = b.conv.w.shape
        ac += stats[f"env_block{k}_input_spikes"] / n * c_out * kernel
        mac += t * (b.attention.w1.size + b.attention.w2.size)
        updates += t * c * length
        ann += b.conv.w.size * length + b.attention.w1.size + b.attention.w2.size
        density[k] = stats[f"env_block{k}_input_nonzero"] / n / (t * c * length)
    return {"snn_mac": mac, "snn_ac": int(round(ac)), "neuron_updates": updates, "ann_mac": ann,
            "envelope_wide_mac": front + mix, "envelope_isqrt": sp.bands * (frames + sp.bins),
            "envelope_divisions": sp.bands * samples,
            **({"envelope_spike_density": density} if density else {})}  # a view without blocks has no block input


def energy_pj(ops: dict) -> dict:
    wide = ops.get("envelope_wide_mac", 0) * (ENERGY_PJ["int8x16"]["mac"] - ENERGY_PJ["int8"]["mac"])
    snn = ops["snn_mac"] * ENERGY_PJ["int8"]["mac"] + ops["snn_ac"] * ENERGY_PJ["int8"]["ac"] + wide
    return {"snn_int8": snn, "ann_fp32": ops["ann_mac"] * ENERGY_PJ["fp32"]["mac"],
            "ann_int8": ops["ann_mac"] * ENERGY_PJ["int8"]["mac"] + wide}


def cycles(ops: dict, window_s: float) -> list[dict]:
    rows = []
    for p in MCU_PROFILES:
        cyc = ops["snn_mac"] * p.cycles_per_mac + ops["snn_ac"] * p.cycles_per_ac + ops["neuron_updates"] * p.cycles_per_neuron
        cyc += ops.get("envelope_isqrt", 0) * p.cycles_per_isqrt + ops.get("envelope_divisions", 0) * p.cycles_per_division
        ms = cyc / (p.mhz * 1e3)
        rows.append({"mcu": p.name, "cycles": int(cyc), "ms_per_window": ms, "real_time_factor": ms / 1e3 / window_s})
    return rows


def budget(net: IntMRASNN, stats: dict, sample_rate_hz: float) -> dict:
    return _report(flash_bytes(net), ram_bytes(net), operations(net, stats), net.window / sample_rate_hz)


def _report(flash: dict, ram: dict, ops: dict, window_s: float) -> dict:
    return {"flash_bytes": flash, "ram_bytes": ram, "operations": ops, "energy_pj": energy_pj(ops),
            "mcu": cycles(ops, window_s), "energy_constants_pj_45nm": ENERGY_PJ}


def detector_budget(net, stats: dict, sample_rate_hz: float) -> dict:
    """The same quantities for the integer ESVAE (firmware_sim/esvae.py), per window. The
    spectrum's convolution is dense MACs on the int8 signal; a layer fed by binary or small spike
    counts adds its weights once per unit of count (accumulates); the decoder's first layer, fed
    by latent spike counts that are the same every step, runs once as MACs."""
    n, t = stats["windows"], net.timesteps
    heads = net.heads()
    frames = (net.window - net.stft_w.shape[1]) // net.hop + 1
    hidden, latent = net.enc_in.w.shape[0], net.enc_latent.w.shape[0]
    weights = net.stft_w.size + sum(h.w.size for h in heads)
    tables = _requant_bytes(net.bins) + sum(_requant_bytes(h.w.shape[0]) for h in heads) + 2 * len(net.log2)
    stft_mac = net.stft_w.size * frames
    mac = stft_mac + net.enc_in.w.size + net.dec_in.w.size
    ac = (stats["hidden_spikes"] * latent + stats["decoded_spikes"] * net.bins) / n
    ops = {"snn_mac": int(mac), "snn_ac": int(round(ac)), "neuron_updates": t * (2 * hidden + latent),
           "ann_mac": int(stft_mac + sum(h.w.size for h in heads))}
    buffers = {"input window (int16, the caller's)": 2 * net.window, "int8 input": net.window,
               "power sums (int64)": 8 * net.bins, "target (int16)": 2 * net.bins,
               "currents and membranes (int16)": 4 * (2 * hidden + latent), "spike counts (uint8)": 2 * hidden + latent}
    return _report(_flash(weights, tables), _ram(buffers, net.window), ops, net.window / sample_rate_hz)
