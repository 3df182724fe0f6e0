"""Physics reference for another sensor position: how much fault-type information does classic,
untrained envelope analysis find on the drive-end, fan-end and base accelerometers?

benchmarks/sensor_position.py scores trained models on the three channels of the CWRU recordings.
Its numbers mean little without a reference: if the fan-end and base signals carry the fault's
impact rate, an analysis with no learned parameters finds it there too, and a model that does not
has learned the drive-end sensor rather than the fault. This script applies one fixed rule, the
same on every sensor, to the same windows (the time-ordered test region of CONTRACTS section 1,
2048 samples at 12 kHz, via sensor_position.channel_task and TaskData) and scores the fault type
(ball / inner race / outer race) of the fault windows only; normal windows have no defect
frequency to find. (sensor_position's `fault_type_accuracy` also counts the normal windows on the
drive and fan end; its `called` counts give the fault-only number.)

The rule, per window: remove the mean; band-pass in a resonance band; squared envelope (Hilbert
transform), mean removed; its spectrum (Hann window, zero-padded); for each fault type the peaks at
the first 3 harmonics of its characteristic frequency (BPFO outer race, BPFI inner race, 2 x BSF
ball; shaft speed from the manifest's rpm), each the maximum within +-2 % of the harmonic divided
by the median of the spectrum beside it (20 Hz either side of the peak's search range and the Hann
main lobe), summed; the fault type with the largest sum is the prediction. Every band variant is
its own row (fixed bands, no band-pass, and a band chosen per window by spectral kurtosis from a
short-time FFT of that window alone); none is picked on the test region.

    python benchmarks/physics_reference.py [--data ../shared/datasets/cwru] [--out benchmarks/results/physics_reference]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.signal import butter, hilbert, sosfiltfilt, stft

from edgesnn.dataset import TaskData
from edgesnn.labels import CWRU10, FAULT_TYPES, fault_type
from edgesnn.split import region_windows
from sensor_position import CHANNEL_NAMES, CHANNELS, channel_task, plot_by_channel

FS = 12000.0
NFFT = 16384  # zero-padded envelope spectrum: 0.73 Hz bins (the window alone resolves 5.9 Hz)
ORDERS = {"ball": 2 * 2.357, "inner_race": 5.4152, "outer_race": 3.5848}  # x shaft speed (2 x BSF, BPFI, BPFO)
FAULTS = tuple(ORDERS)  # ball, inner_race, outer_race: FAULT_TYPES without normal
HARMONICS, TOL, SIDE_HZ = 3, 0.02, 20.0
LOBE_HZ = 2 * FS / 2048  # half width of the Hann main lobe of a 2048-sample window
FIXED_BANDS = {"no band-pass": None, "1-3 kHz": (1000, 3000), "2-5 kHz": (2000, 5000), "3-5.5 kHz": (3000, 5500)}
SK = "spectral kurtosis band"
# Candidate bands of the spectral-kurtosis choice: 1, 1.5 and 2 kHz wide, lower edges every 250 Hz.
SK_BANDS = [(lo, lo + w) for w in (1000, 1500, 2000) for lo in range(500, 5751 - w, 250)]


def bandpass(x: np.ndarray, band) -> np.ndarray:
    return x if band is None else sosfiltfilt(butter(4, band, btype="bandpass", fs=FS, output="sos"), x, axis=-1)


def sk_bands(x: np.ndarray) -> np.ndarray:
    """Per window, the index in SK_BANDS of the band whose short-time FFT bins (64 samples, 187.5 Hz)
    have the largest mean spectral kurtosis: where the window is most impulsive."""
    f, _, z = stft(x, FS, nperseg=64, noverlap=48, axis=-1)
    p = np.abs(z) ** 2
    sk = (p**2).mean(-1) / np.maximum(p.mean(-1), 1e-30) ** 2 - 2  # [N, bins]
    member = np.array([(f >= lo) & (f <= hi) for lo, hi in SK_BANDS], dtype=float)
    return np.argmax(sk @ (member / member.sum(1, keepdims=True)).T, axis=1)


def envelope_spectrum(x: np.ndarray) -> np.ndarray:
    env = np.abs(hilbert(x, axis=-1)) ** 2
    env -= env.mean(-1, keepdims=True)
    return np.abs(np.fft.rfft(env * np.hanning(x.shape[-1]), NFFT, axis=-1))


def fault_scores(spec: np.ndarray, rpm: np.ndarray) -> np.ndarray:
    """[N, 3] summed peak-to-local-median ratios at the harmonics of each fault's frequency."""
    df = FS / NFFT
    out = np.zeros((len(spec), len(FAULTS)))
    for r in np.unique(rpm):
        rows = rpm == r
        for j, fault in enumerate(FAULTS):
            for k in range(1, HARMONICS + 1):
                f = k * ORDERS[fault] * r / 60
                tol = TOL * f
                peak = spec[rows, int(np.ceil((f - tol) / df)) : int(np.floor((f + tol) / df)) + 1].max(1)
                inner, outer = int((tol + LOBE_HZ) / df), int((tol + LOBE_HZ + SIDE_HZ) / df)
                i = int(round(f / df))
                side = np.concatenate([spec[rows, i - outer : i - inner], spec[rows, i + inner + 1 : i + outer + 1]], 1)
                out[rows, j] += peak / np.median(side, 1)
    return out


def fault_windows(task: TaskData):
    """Test-region windows of the fault recordings, with their fault type and the recording's rpm."""
    xs, types, rpms = [], [], []
    for rec, label in zip(task.recordings, task.labels):
        kind = fault_type(CWRU10[label])
        if kind == "normal":
            continue
        w = region_windows(rec.signal, "test", task.window)
        xs.append(w)
        types += [kind] * len(w)
        rpms.append(np.full(len(w), rec.entry.rpm, dtype=float))
    return np.concatenate(xs).astype(np.float64), np.array(types), np.concatenate(rpms)


def score(pred: np.ndarray, true: np.ndarray) -> dict:
    """Fault-type accuracy, recall per type and what each type was called (as sensor_position.py)."""
    return {"windows": int(len(true)), "fault_type_accuracy": float(np.mean(pred == true)),
            "recall": {t: float(np.mean(pred[true == t] == t)) for t in FAULTS},
            "called": {t: {p: int(np.sum(pred[true == t] == p)) for p in FAULTS} for t in FAULTS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/cwru"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/physics_reference"))
    args = ap.parse_args()
    assert set(FAULTS) == set(FAULT_TYPES) - {"normal"}
    start = time.perf_counter()
    results = {name: {} for name in [*FIXED_BANDS, SK]}
    for c in CHANNELS:
        x, true, rpm = fault_windows(channel_task(args.data, c))
        x -= x.mean(1, keepdims=True)
        for name, band in FIXED_BANDS.items():
            pred = np.array(FAULTS)[fault_scores(envelope_spectrum(bandpass(x, band)), rpm).argmax(1)]
            results[name][c] = score(pred, true)
        chosen = sk_bands(x)
        filtered = np.empty_like(x)
        for b in np.unique(chosen):
            filtered[chosen == b] = bandpass(x[chosen == b], SK_BANDS[b])
        pred = np.array(FAULTS)[fault_scores(envelope_spectrum(filtered), rpm).argmax(1)]
        results[SK][c] = score(pred, true)
        centers = np.array([sum(SK_BANDS[b]) / 2 for b in chosen])
        results[SK][c]["chosen_band_center_hz_quartiles"] = [float(q) for q in np.percentile(centers, [25, 50, 75])]
    seconds = time.perf_counter() - start

    print("| band | " + " | ".join(f"{CHANNEL_NAMES[c]} fault type" for c in CHANNELS) + " | windows (DE/FE/BA) |")
    print("|---" * (2 + len(CHANNELS)) + "|")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[c]['fault_type_accuracy']:.3f}" for c in CHANNELS)
              + " | " + "/".join(str(r[c]["windows"]) for c in CHANNELS) + " |")
    print(f"{seconds:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"harmonics": HARMONICS, "tolerance": TOL, "side_hz": SIDE_HZ, "nfft": NFFT, "orders": ORDERS,
             "fixed_bands_hz": FIXED_BANDS, "sk_candidate_bands_hz": SK_BANDS, "seconds": seconds}
    args.out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                         "setup": setup, "results": results}, indent=1))

    plot_by_channel(results, args.out.with_suffix(".png"), "fault-type accuracy, test region\n(fault windows)",
                    "untrained envelope analysis (BPFO / BPFI / 2 x BSF) per sensor position", chance=1 / 3)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
