"""Physics-based synthetic bearing vibration, for tests and demos that must run without real data.

Each defect strikes at its characteristic frequency (from the bearing geometry and shaft speed),
every strike rings a structural resonance; inner-race strikes are modulated by the load zone at
shaft speed and ball strikes at cage speed; rolling elements slip, so strike times jitter. Never a
substitute for real recordings in a reported accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bearing:
    """Deep-groove ball bearing geometry; the default is CWRU's drive-end SKF 6205."""

    n_balls: int = 9
    ball_diameter_in: float = 0.3126
    pitch_diameter_in: float = 1.537
    contact_angle_deg: float = 0.0

    def _ratio(self) -> float:
        return self.ball_diameter_in / self.pitch_diameter_in * np.cos(np.radians(self.contact_angle_deg))

    def defect_orders(self) -> dict[str, float]:
        """Defect frequencies as multiples of shaft speed."""
        r = self._ratio()
        n = self.n_balls
        return {
            "bpfo": n / 2 * (1 - r),
            "bpfi": n / 2 * (1 + r),
            "bsf": self.pitch_diameter_in / (2 * self.ball_diameter_in) * (1 - r**2),
            "ftf": 0.5 * (1 - r),
        }


_DEFECT_RATE = {"outer_race": "bpfo", "inner_race": "bpfi", "ball": "bsf"}


def bearing_signal(
    fault: str = "normal",
    seconds: float = 1.0,
    fs: float = 12_000.0,
    rpm: float = 1797.0,
    severity: float = 1.0,
    resonance_hz: float = 3_000.0,
    damping: float = 0.05,
    slip: float = 0.01,
    noise_g: float = 0.05,
    bearing: Bearing = Bearing(),
    seed: int | None = None,
) -> np.ndarray:
    """Acceleration in g of one bearing with `fault` in normal / ball / inner_race / outer_race."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    shaft_hz = rpm / 60.0
    # Running speed harmonics (residual imbalance and misalignment) and broadband noise.
    x = 0.02 * np.sin(2 * np.pi * shaft_hz * t + rng.uniform(0, 2 * np.pi))
    x += 0.01 * np.sin(2 * np.pi * 2 * shaft_hz * t + rng.uniform(0, 2 * np.pi))
    x += noise_g * rng.standard_normal(n)
    if fault == "normal":
        return x.astype(np.float32)
    if fault not in _DEFECT_RATE:
        raise ValueError(f"unknown fault {fault!r}; use normal, ball, inner_race or outer_race")

    orders = bearing.defect_orders()
    strike_hz = orders[_DEFECT_RATE[fault]] * shaft_hz
    if fault == "ball":
        strike_hz *= 2  # a ball defect hits both races once per ball revolution
    # Strike times with slip: each interval jitters by `slip` around the nominal period.
    period = 1.0 / strike_hz
    intervals = period * (1 + slip * rng.standard_normal(int(seconds * strike_hz) + 2))
    strikes = np.cumsum(intervals) - rng.uniform(0, period)
    strikes = strikes[(strikes >= 0) & (strikes < seconds)]

    if fault == "inner_race":  # the defect passes through the load zone once per shaft turn
        gain = 0.5 * (1 + np.cos(2 * np.pi * shaft_hz * strikes))
    elif fault == "ball":  # the ball passes through the load zone at cage speed
        gain = 0.5 * (1 + np.cos(2 * np.pi * orders["ftf"] * shaft_hz * strikes))
    else:  # a stationary outer-race defect sits in the load zone
        gain = np.ones_like(strikes)

    # Every strike rings the resonance: a damped sinusoid a few milliseconds long.
    ring_n = int(fs * 8 / (damping * resonance_hz * 2 * np.pi)) + 1
    tr = np.arange(ring_n) / fs
    ring = np.exp(-damping * 2 * np.pi * resonance_hz * tr) * np.sin(2 * np.pi * resonance_hz * tr)
    impulses = np.zeros(n)
    np.add.at(impulses, np.minimum((strikes * fs).astype(int), n - 1), severity * gain)
    x += np.convolve(impulses, ring)[:n]
    return x.astype(np.float32)
