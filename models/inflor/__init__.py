"""InfLoR-SNN (arXiv 2307.04356) on the MRA-SNN backbone: reduce the information spiking loses.

Two parts, both in edgesnn.neurons: the soft reset (the membrane keeps what exceeded the
threshold, reset by subtraction; every edgesnn neuron already resets this way) and the membrane
potential rectifier, which redistributes each membrane potential toward the spike counts it can
express before it fires. The rectifier fixes every integer, so the deployed network and its
spikes are exactly MRA-SNN's (it quantizes and runs on firmware_sim unchanged); it changes only
the gradients training follows.
"""

from __future__ import annotations

from edgesnn.models.mra_snn import MRASNN
from edgesnn.registry import real_number

RECTIFIER = 4.0  # tanh steepness k: the slope of phi is 2.1 at mid-level and 0.15 at the ends of a level


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 1, bits: int = 2,
          rectifier: float = RECTIFIER, **kwargs) -> MRASNN:
    if real_number("rectifier", rectifier, 0.0) == 0:
        raise ValueError("rectifier (the tanh steepness) must be > 0; rectifier=0 is the mra_snn pack")
    return MRASNN(n_classes=n_classes, window=window, timesteps=timesteps, bits=bits, rectifier=rectifier, **kwargs)
