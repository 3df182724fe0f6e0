"""Stream assembly: windows across frames equal offline framing; gaps restart; rates are converted."""

import numpy as np

from edgesnn.payloads import WaveformFrame
from edgesnn.signal import frame, resample
from edgesnn.windowing import SensorWindower

rng = np.random.default_rng(0)


def frames_of(x, fs, sizes, t0=1000.0, seq0=0):
    out, pos = [], 0
    for i, n in enumerate(sizes):
        out.append(WaveformFrame(seq0 + i, t0 + pos / fs, fs, x[pos : pos + n]))
        pos += n
    return out


def test_windows_span_frames_like_offline_framing():
    x = rng.standard_normal(20_000).astype(np.float32)
    w = SensorWindower(12_000, 2048, 1024)
    got = [win for f in frames_of(x, 12_000, [300, 5000, 1, 4096, 10_603]) for win in w.push(f)]
    expected = frame(x, 2048, 1024)
    assert len(got) == len(expected)
    for (win, t_end), (i, exp) in zip(got, enumerate(expected)):
        np.testing.assert_array_equal(win, exp)
        assert abs(t_end - (1000.0 + (i * 1024 + 2047) / 12_000)) < 1e-6
    assert w.restarts == 0


def test_a_hop_longer_than_the_window_skips_signal_without_restarting():
    x = rng.standard_normal(40_000).astype(np.float32)
    w = SensorWindower(12_000, 2048, 5000)
    got = [win for f in frames_of(x, 12_000, [2048] * 19 + [1088]) for win in w.push(f)]
    expected = frame(x, 2048, 5000)
    assert len(got) == len(expected) == 8
    for (win, t_end), (i, exp) in zip(got, enumerate(expected)):
        np.testing.assert_array_equal(win, exp)
        assert abs(t_end - (1000.0 + (i * 5000 + 2047) / 12_000)) < 1e-6
    assert w.restarts == 0


def test_seq_gap_and_time_gap_restart_the_window():
    x = rng.standard_normal(6000).astype(np.float32)
    w = SensorWindower(12_000, 2048, 2048)
    f = frames_of(x, 12_000, [1500, 1500, 1500, 1500])
    assert w.push(f[0]) == []
    skipped = WaveformFrame(f[2].seq, f[2].t0, f[2].fs, f[2].samples)  # frame 1 lost
    assert w.push(skipped) == []  # 1500 + 1500 would be a window, but they are not contiguous
    assert w.restarts == 1
    assert w.restart_reason == "seq 2 where 1 was next" and w.time_gaps == 0
    late = WaveformFrame(f[3].seq, f[3].t0 + 0.5, f[3].fs, f[3].samples)  # right seq, wrong time
    assert w.push(late) == [] and w.restarts == 2
    assert w.restart_reason == "t0 +500.0 ms off where the last frame ended" and w.time_gaps == 1


def test_clock_jitter_of_a_millisecond_or_two_is_no_gap():
    """Frames stamped by a clock that jitters by up to +-2 ms keep every window; a frame 10 ms off
    restarts the window, and --max-jitter-ms sets the line."""
    fs, n = 12_000.0, 1000
    jitter = np.random.default_rng(1).uniform(-0.002, 0.002, 60)
    samples = rng.standard_normal(n).astype(np.float32)
    w = SensorWindower(fs, 2048, 2048)
    got = sum(len(w.push(WaveformFrame(k, 1000.0 + k * n / fs + jitter[k], fs, samples))) for k in range(60))
    assert w.restarts == 0 and got == 60 * n // 2048
    w.push(WaveformFrame(60, 1000.0 + 60 * n / fs + 0.010, fs, samples))
    assert w.restarts == 1 and w.time_gaps == 1
    strict = SensorWindower(fs, 2048, 2048, max_jitter_s=0.0)  # two samples, as before
    for k in range(3):
        strict.push(WaveformFrame(k, 1000.0 + k * n / fs + jitter[k], fs, samples))
    assert strict.restarts == 2


def test_48khz_sensor_is_windowed_by_duration_and_resampled():
    x = rng.standard_normal(48_000).astype(np.float32)
    w = SensorWindower(12_000, 2048, 2048)
    got = [win for f in frames_of(x, 48_000, [4096] * 11 + [2944]) for win in w.push(f)]
    assert len(got) == 48_000 // (4 * 2048)
    first, t_end = got[0]
    assert first.shape == (2048,)
    # Resampling a window at a time matches resampling the whole signal away from window edges.
    whole = resample(x.astype(np.float64), 48_000, 12_000)
    np.testing.assert_allclose(first[200:1800], whole[200:1800], atol=1e-3)
    assert abs(t_end - (1000.0 + 8191 / 48_000)) < 1e-6


def test_a_perfectly_timed_sensor_never_restarts_at_unix_times():
    """Twenty minutes of 100 ms frames stamped with exact Unix times: summing each window's
    float time step had drifted past the gap tolerance after about 17 minutes."""
    fs, n, t0 = 12_000.0, 1200, 1_763_800_000.125
    w = SensorWindower(fs, 2048, 2048)
    samples = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    windows = 0
    for k in range(12_000):
        out = w.push(WaveformFrame(k, t0 + k * n / fs, fs, samples))
        windows += len(out)
        for _, t_end in out:  # each window's time is its last sample's, to the sample
            assert abs(t_end - (t0 + (windows * 2048 - 1) / fs)) < 1e-6
    assert w.restarts == 0 and windows == 12_000 * n // 2048
