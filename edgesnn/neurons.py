"""Spiking neurons as pure step functions: (input, state, params) -> (spikes, new_state).

In the style of Norse: state and parameters are small named tuples, nothing is hidden in a
module, and a loop over T timesteps with explicit state unrolls into a plain ONNX graph.

Surrogate gradients use the straight-through form `hard + (soft - hard).detach()`: the forward
pass is the exact spike function (Floor / Clip in ONNX), the backward pass the gradient of a
clipped linear ramp. No custom autograd function, so export sees ordinary operators.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class LIFParams(NamedTuple):
    beta: float = 0.5  # membrane decay per step (0.5 is a shift by one on a microcontroller)
    v_th: float = 1.0  # firing threshold
    reset: str = "soft"  # "soft": subtract the threshold; "hard": back to zero
    rectifier: float = 0.0  # steepness k of the membrane potential rectifier (0: none; inflor pack)


class LIFState(NamedTuple):
    v: torch.Tensor


def rectify(u: torch.Tensor, k: float) -> torch.Tensor:
    """Membrane potential rectifier (InfLoR-SNN, arXiv 2307.04356), per spike level.

    Within each level [n, n+1) of u = v / v_th, a tanh of steepness k pushes the potential
    toward the level's ends, the values a spike count can express: phi(n + f) = n + 1/2 +
    tanh(k (f - 1/2)) / (2 tanh(k/2)). phi is monotonic and fixes every integer, so the spike
    count floor(phi(u)) = floor(u) is unchanged and the deployed network is the same; what
    changes is training, where the surrogate gradient of the rectified potential is large for
    potentials far from any count and small for those already close to one.
    """
    n = torch.floor(u).detach()
    f = u - n
    return n + 0.5 + torch.tanh(k * (f - 0.5)) / (2 * torch.tanh(torch.tensor(k / 2)))


def spike(v: torch.Tensor, v_th: float, levels: int, surrogate: bool, rectifier: float = 0.0) -> torch.Tensor:
    """Integer spike count in 0..levels from the membrane potential.

    levels = 1 is the binary spike of a classic LIF neuron; levels = 2**bits - 1 is a multi-bit
    neuron that emits how many thresholds the potential crossed.
    """
    u = v if v_th == 1.0 else v / v_th  # a division by 1 would still be a node in every exported graph
    hard = torch.clamp(torch.floor(u), 0, levels)
    if not surrogate:
        return hard
    soft = torch.clamp(rectify(u, rectifier) if rectifier else u, 0, levels)
    return soft + (hard - soft).detach()


def integrate(x: torch.Tensor, state: LIFState | None, p: LIFParams) -> torch.Tensor:
    """The membrane after leak and input; no state: the first step, from rest (v = x)."""
    return x if state is None else p.beta * state.v + x


def lif_step(x: torch.Tensor, state: LIFState | None, p: LIFParams = LIFParams(), surrogate: bool = True):
    """Binary leaky integrate-and-fire with hard or soft reset."""
    v = integrate(x, state, p)
    s = spike(v, p.v_th, 1, surrogate, p.rectifier)
    v = v * (1 - s) if p.reset == "hard" else v - s * p.v_th
    return s, LIFState(v)


def multibit_step(x: torch.Tensor, state: LIFState | None, bits: int, p: LIFParams = LIFParams(),
                  surrogate: bool = True):
    """Multi-bit LIF (arXiv 2407.05739): emits 0..2**bits-1, reset by subtraction of what it sent."""
    v = integrate(x, state, p)
    s = spike(v, p.v_th, 2**bits - 1, surrogate, p.rectifier)
    return s, LIFState(v - s * p.v_th)


class DendriteParams(NamedTuple):
    """Per-channel gate of the dendritic filter: g = sigmoid(w * mean_L(v) + b)."""

    w: torch.Tensor  # [C]
    b: torch.Tensor  # [C]


def dendritic_step(x: torch.Tensor, state: LIFState | None, bits: int, d: DendriteParams,
                   p: LIFParams = LIFParams(), surrogate: bool = True):
    """Multi-bit LIF with attention inside the neuron (dendritic filtering).

    Before the soma fires, each channel's membrane is scaled by a gate computed from that
    channel's own mean potential over the signal: two parameters per channel, no cross-channel
    mixing, so it costs one mean and one sigmoid per channel and step. Channels whose dendrites
    see only background activity are damped, channels carrying a strong (impulsive) drive pass.
    x, v: [N, C, L].
    """
    v = integrate(x, state, p)
    gate = torch.sigmoid(d.w[:, None] * v.mean(dim=-1, keepdim=True) + d.b[:, None])
    s = spike(v * gate, p.v_th, 2**bits - 1, surrogate, p.rectifier)
    return s, LIFState(v - s * p.v_th)


def run_over_time(step, currents, *args, **kwargs) -> list[torch.Tensor]:
    """Apply a step function to each timestep's current in turn (the rows of a [T, ...] tensor,
    or a sequence of tensors), from rest; the spikes of every step."""
    state, out = None, []
    for x in currents:
        s, state = step(x, state, *args, **kwargs)
        out.append(s)
    return out
