"""Firing-rate state of a spiking model on a client's data, and the SFedCA credit built on it.

State F(model, X) of a model on local windows X (no labels involved):
  r_l in R^{C_l}  mean spike count of each channel of spiking layer l, over windows, time and length
  p   in simplex  mean softmax output per class ("how strongly each output class fires")

A client reports F(global, X_k) when queried (the state before local training) and, after it
trained, F(local, X_k) with its update (the state after). The credit of client k is how far the
current global model's state on k's data is from the state of k's own locally trained model:

  credit_k = mean_l ||r_l^after - r_l^before||_1 / ||r_l^before||_1  +  TV(p^after, p^before)

with TV the total-variation distance (half the L1 norm). A client whose data the global model
already handles has credit near 0; one carrying distribution the global model lacks has a large
credit. The 'after' state is the last one the client reported; 'before' is fresh every round, so
a client's credit decays as the global model absorbs its data.
"""

from __future__ import annotations

import numpy as np


def firing_state(model, x: np.ndarray, batch: int = 128) -> dict[str, np.ndarray]:
    """{"layer0": r_0, ..., "output": p} of the torch `model` on windows x [N, L], in eval mode."""
    import torch  # here, not above: the credit and the selection rules run without torch

    from edgesnn.layers import SpikingNeurons

    layers = [m for m in model.modules() if isinstance(m, SpikingNeurons)]
    sums = [None] * len(layers)

    def hook(i):
        def record(_module, _inputs, spikes):
            s = spikes.detach().mean(dim=2).sum(dim=0)  # [C], summed over T*N
            sums[i] = s if sums[i] is None else sums[i] + s
        return record

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(layers)]
    was_training = model.training
    model.eval()
    probs = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32))[:, None, :]
                probs.append(torch.softmax(model(xb), dim=1).sum(dim=0))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    timesteps = getattr(model, "timesteps", 1)
    state = {f"layer{i}": (s / (len(x) * timesteps)).numpy().astype(np.float32) for i, s in enumerate(sums)}
    state["output"] = (torch.stack(probs).sum(dim=0) / len(x)).numpy().astype(np.float32)
    return state


def credit(after: dict[str, np.ndarray], before: dict[str, np.ndarray]) -> float:
    """The SFedCA credit of one client (module docstring)."""
    layers = [k for k in before if k.startswith("layer")]
    hidden = [np.abs(after[k] - before[k]).sum() / (np.abs(before[k]).sum() + 1e-6) for k in layers]
    output = 0.5 * np.abs(after["output"] - before["output"]).sum()
    return float(np.mean(hidden) if hidden else 0.0) + float(output)
