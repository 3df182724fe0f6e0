"""Training augmentations change what a recording looks like, never the fault physics in it."""

import numpy as np
import pytest
import torch
from test_synthetic import FS, RPM, envelope_peak

from edgesnn.sensors.synthetic import Bearing, bearing_signal
from edgesnn.training import _random_spectral_gain


def test_spectral_gain_stays_within_its_bound_and_zero_is_the_identity():
    x = torch.randn(16, 1, 2048, generator=torch.Generator().manual_seed(0))
    y = _random_spectral_gain(x, 10.0, torch.Generator().manual_seed(1))
    gain_db = 20 * torch.log10(torch.fft.rfft(y).abs() / torch.fft.rfft(x).abs())
    assert y.shape == x.shape and gain_db.abs().max() <= 10.0 + 1e-3
    assert gain_db.std(dim=0).mean() > 2.0  # each window gets its own curve
    assert torch.allclose(_random_spectral_gain(x, 0.0, torch.Generator().manual_seed(1)), x, atol=1e-5)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_spectral_gain_keeps_the_defect_rate(seed):
    """The curve is smooth against the sidebands of a resonance (a few hundred Hz), so an
    outer-race defect still strikes at BPFO in the envelope spectrum."""
    x = bearing_signal("outer_race", seconds=4.0, fs=FS, rpm=RPM, seed=seed)
    y = _random_spectral_gain(torch.from_numpy(x)[None, None], 10.0, torch.Generator().manual_seed(seed))
    expected = Bearing().defect_orders()["bpfo"] * RPM / 60
    assert envelope_peak(y[0, 0].numpy().astype(np.float64)) == pytest.approx(expected, rel=0.02)
