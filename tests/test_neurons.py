"""Neuron step functions checked with hand-made numbers."""

import torch

from edgesnn import neurons
from edgesnn.neurons import LIFParams, LIFState


def test_lif_hard_and_soft_reset():
    x = torch.tensor([0.6, 1.5, 3.0])
    s, st = neurons.lif_step(x, LIFState(torch.zeros(3)), LIFParams(beta=0.5, reset="hard"), surrogate=False)
    assert s.tolist() == [0, 1, 1] and torch.allclose(st.v, torch.tensor([0.6, 0.0, 0.0]))
    s, st = neurons.lif_step(x, LIFState(torch.zeros(3)), LIFParams(beta=0.5, reset="soft"), surrogate=False)
    assert s.tolist() == [0, 1, 1] and torch.allclose(st.v, torch.tensor([0.6, 0.5, 2.0]))
    # leak: 0.6 decays to 0.3, plus 0.8 crosses the threshold
    s, st = neurons.lif_step(torch.tensor([0.8]), LIFState(torch.tensor([0.6])), LIFParams(beta=0.5), surrogate=False)
    assert s.tolist() == [1.0] and abs(st.v.item() - 0.1) < 1e-6


def test_multibit_emits_integer_counts_and_subtracts_them():
    x = torch.tensor([0.5, 1.2, 2.7, 9.0])
    s, st = neurons.multibit_step(x, LIFState(torch.zeros(4)), bits=2, surrogate=False)
    assert s.tolist() == [0, 1, 2, 3]  # 2 bits: at most 3
    assert torch.allclose(st.v, torch.tensor([0.5, 0.2, 0.7, 6.0]))


def test_surrogate_forward_is_exact_and_gradient_flows():
    v = torch.tensor([0.3, 1.7, 5.0], requires_grad=True)
    s = neurons.spike(v, 1.0, 3, surrogate=True)
    assert s.tolist() == [0, 1, 3]
    s.sum().backward()
    assert v.grad.tolist() == [1.0, 1.0, 0.0]  # ramp inside 0..levels, flat beyond


def test_dendritic_gate_damps_a_quiet_channel():
    x = torch.full((1, 2, 4), 1.5)
    d = neurons.DendriteParams(w=torch.tensor([0.0, 0.0]), b=torch.tensor([10.0, -10.0]))
    s, _ = neurons.dendritic_step(x, LIFState(torch.zeros_like(x)), bits=2, d=d, surrogate=False)
    assert s[0, 0].tolist() == [1, 1, 1, 1] and s[0, 1].tolist() == [0, 0, 0, 0]


def test_run_over_time_accumulates():
    out = torch.stack(neurons.run_over_time(neurons.multibit_step, torch.full((4, 1), 0.6), 2, surrogate=False))
    # v: 0.6 -> 0.9 -> 1.05 (spike, 0.05) -> 0.625
    assert out.flatten().tolist() == [0, 0, 1, 0]
