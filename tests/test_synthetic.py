"""The synthetic generator obeys bearing physics: the envelope spectrum peaks at the defect rate."""

import numpy as np
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt

from edgesnn.sensors.synthetic import Bearing, bearing_signal

FS = 12_000.0
RPM = 1797.0


def envelope_peak(x: np.ndarray, lo: float = 40, hi: float = 400) -> float:
    """Frequency of the largest line of the envelope spectrum (resonance band demodulation)."""
    band = sosfiltfilt(butter(4, [2_000, 4_000], btype="band", fs=FS, output="sos"), x)
    env = np.abs(hilbert(band))
    spec = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(len(env), 1 / FS)
    sel = (freqs > lo) & (freqs < hi)
    return float(freqs[sel][np.argmax(spec[sel])])


def test_cwru_bearing_orders_match_the_dataset_readme():
    orders = Bearing().defect_orders()
    assert orders["bpfi"] == pytest.approx(5.4152, abs=1e-3)
    assert orders["bpfo"] == pytest.approx(3.5848, abs=1e-3)
    assert orders["bsf"] == pytest.approx(2.357, abs=2e-3)
    assert orders["ftf"] == pytest.approx(0.39828, abs=1e-4)


@pytest.mark.parametrize("fault,order", [("outer_race", "bpfo"), ("inner_race", "bpfi")])
def test_envelope_spectrum_peaks_at_defect_frequency(fault, order):
    x = bearing_signal(fault, seconds=4.0, fs=FS, rpm=RPM, seed=3)
    expected = Bearing().defect_orders()[order] * RPM / 60
    assert envelope_peak(x) == pytest.approx(expected, rel=0.02)


def test_ball_fault_strikes_at_twice_ball_spin():
    x = bearing_signal("ball", seconds=4.0, fs=FS, rpm=RPM, severity=3.0, seed=4)
    expected = 2 * Bearing().defect_orders()["bsf"] * RPM / 60
    assert envelope_peak(x) == pytest.approx(expected, rel=0.02)


def test_normal_has_no_impacts_and_is_reproducible():
    a = bearing_signal("normal", seed=1)
    assert np.array_equal(a, bearing_signal("normal", seed=1))
    kurtosis = lambda v: np.mean((v - v.mean()) ** 4) / np.var(v) ** 2  # noqa: E731
    assert kurtosis(a) < 3.5 < kurtosis(bearing_signal("outer_race", seed=1))


def test_simulated_fleet_mixes_faults_and_names_the_truth():
    from edgesnn.sensors.publisher import simulated_fleet

    fleet = simulated_fleet(8, seconds=0.5)
    assert len(fleet) == 8 and all(len(x) == 6000 and fs == 12_000 for x, fs in fleet.values())
    assert [s.split("_", 1)[1] for s in fleet][:4] == ["normal", "ball", "inner_race", "outer_race"]
