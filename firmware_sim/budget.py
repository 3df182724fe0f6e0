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
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesnn.firmware_sim.network import IntMRASNN

ENERGY_PJ = {"fp32": {"ac": 0.9, "mac": 4.6}, "int8": {"ac": 0.03, "mac": 0.23}}


@dataclass(frozen=True)
class McuProfile:
    name: str
    mhz: float
    cycles_per_mac: float  # int8 MAC (SIMD dual 16-bit MAC where the core has it)
    cycles_per_ac: float  # one spike-triggered accumulate (load weight, add)
    cycles_per_neuron: float  # one neuron update: leak, add, gate, fire, reset


MCU_PROFILES = (
    McuProfile("Cortex-M4 @ 168 MHz", 168.0, 0.5, 1.0, 12.0),
    McuProfile("Cortex-M7 @ 480 MHz", 480.0, 0.25, 0.5, 6.0),
)


def _requant_bytes(channels: int) -> int:
    return channels * (4 + 1 + 4)  # int32 multiplier, int8 shift, int32 bias


def flash_bytes(net: IntMRASNN) -> dict:
    weights = sum(c.w.size for c in net.encoder) + net.fc_w.size
    tables = sum(_requant_bytes(c.w.shape[0]) for c in net.encoder) + _requant_bytes(net.fc_w.shape[0])
    atts = [net.encoder_attention] + [b.attention for b in net.blocks]
    weights += sum(a.w1.size + a.w2.size for a in atts) + sum(b.conv.w.size for b in net.blocks)
    tables += sum(_requant_bytes(a.w1.shape[0]) + _requant_bytes(a.w2.shape[0]) for a in atts)
    tables += sum(_requant_bytes(b.conv.w.shape[0]) for b in net.blocks)
    neurons = [net.encoder_neurons] + [b.neurons for b in net.blocks]
    tables += sum(_requant_bytes(len(n.gate.m)) for n in neurons if n.gate is not None)
    tables += 2 * len(net.lut)  # int16 sigmoid table
    return {"weights": int(weights), "tables": int(tables), "total": int(weights + tables)}


def _lengths(net: IntMRASNN) -> list[int]:
    """Signal length at the encoder output and after each block."""
    lengths = [net.window // net.encoder[0].stride]
    for _ in net.blocks:
        lengths.append(lengths[-1] // 2)
    return lengths


def storage_bits(levels: int) -> int:
    """Bits that store one spike count, a power of two so that counts never straddle bytes."""
    bits = max(1, int(levels).bit_length())
    return 1 << (bits - 1).bit_length()


def ram_bytes(net: IntMRASNN) -> dict:
    """The static buffers of the C export (c_export.py), plus the caller's int16 window."""
    c = sum(e.w.shape[0] for e in net.encoder)
    h = net.encoder_attention.w1.shape[0]
    bits = storage_bits(net.encoder_neurons.levels)
    lengths = _lengths(net)
    packed = lambda n: (n * bits + 7) // 8  # noqa: E731
    buffers = {
        "input window (int16, the caller's)": 2 * net.window,
        "current (int16)": 2 * c * lengths[0],
        "membrane (int16)": 2 * c * lengths[0],
        "spike counts A (packed)": packed(net.timesteps * c * lengths[0]),
        "int8 input / spike counts B (shared)": max(net.window, packed(net.timesteps * c * lengths[1])),
        "attention sums (int64), conv and count sums (int32)": 8 * (c + h) + 4 * (c + c),
    }
    return {"buffers": buffers, "static": sum(buffers.values()) - 2 * net.window, "peak": sum(buffers.values())}


def operations(net: IntMRASNN, stats: dict) -> dict:
    """Per window; `stats` from IntMRASNN.run(..., stats) over some windows."""
    n = stats["windows"]
    lengths = _lengths(net)
    c = sum(e.w.shape[0] for e in net.encoder)
    encoder_mac = sum(e.w.shape[0] * e.w.shape[2] * lengths[0] for e in net.encoder)
    atts = [(net.encoder_attention, 1)] + [(b.attention, net.timesteps) for b in net.blocks]
    attention_mac = sum((a.w1.size + a.w2.size) * times for a, times in atts)
    classifier_mac = net.fc_w.size
    ac = 0.0
    ann_mac = encoder_mac + sum(a.w1.size + a.w2.size for a, _ in atts) + classifier_mac
    for k, b in enumerate(net.blocks):
        c_out, _, kernel = b.conv.w.shape
        ac += stats[f"block{k}_input_spikes"] / n * c_out * kernel  # each unit of a count: one add
        ann_mac += b.conv.w.size * lengths[k]  # the same conv, dense, once
    neuron_updates = net.timesteps * c * (lengths[0] + sum(lengths[:-1]))  # encoder, then each block before pooling
    mac = encoder_mac + attention_mac + classifier_mac
    return {"snn_mac": int(mac), "snn_ac": int(round(ac)), "neuron_updates": int(neuron_updates),
            "ann_mac": int(ann_mac), "spike_density": {
                k: stats[f"block{k}_input_nonzero"] / n / (net.timesteps * c * lengths[k]) for k in range(len(net.blocks))}}


def energy_pj(ops: dict) -> dict:
    snn = ops["snn_mac"] * ENERGY_PJ["int8"]["mac"] + ops["snn_ac"] * ENERGY_PJ["int8"]["ac"]
    return {"snn_int8": snn, "ann_fp32": ops["ann_mac"] * ENERGY_PJ["fp32"]["mac"],
            "ann_int8": ops["ann_mac"] * ENERGY_PJ["int8"]["mac"]}


def cycles(ops: dict, window_s: float) -> list[dict]:
    rows = []
    for p in MCU_PROFILES:
        cyc = ops["snn_mac"] * p.cycles_per_mac + ops["snn_ac"] * p.cycles_per_ac + ops["neuron_updates"] * p.cycles_per_neuron
        ms = cyc / (p.mhz * 1e3)
        rows.append({"mcu": p.name, "cycles": int(cyc), "ms_per_window": ms, "real_time_factor": ms / 1e3 / window_s})
    return rows


def budget(net: IntMRASNN, stats: dict, sample_rate_hz: float) -> dict:
    ops = operations(net, stats)
    return {"flash_bytes": flash_bytes(net), "ram_bytes": ram_bytes(net), "operations": ops,
            "energy_pj": energy_pj(ops), "mcu": cycles(ops, net.window / sample_rate_hz),
            "energy_constants_pj_45nm": ENERGY_PJ}
