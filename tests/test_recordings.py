import numpy as np
import pytest
import scipy.io
from scipy.io import wavfile

from edgesnn.errors import EdgesnnError
from edgesnn.sensors.recordings import read_recording

rng = np.random.default_rng(0)
SIGNAL = rng.standard_normal(24_000).astype(np.float32)


def test_npy_with_explicit_rate_is_resampled(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, SIGNAL)
    x, fs = read_recording(p, fs=24_000, target_fs=12_000)
    assert fs == 12_000 and len(x) == 12_000


def test_csv_with_header_and_column(tmp_path):
    p = tmp_path / "a.csv"
    np.savetxt(p, np.stack([SIGNAL, 2 * SIGNAL], 1), delimiter=",", header="de,fe", comments="")
    x, _ = read_recording(p, fs=12_000, variable="fe")
    np.testing.assert_allclose(x, 2 * SIGNAL, rtol=1e-5, atol=1e-6)
    with pytest.raises(EdgesnnError, match="several columns"):
        read_recording(p, fs=12_000)
    with pytest.raises(EdgesnnError, match="no column 'x'"):
        read_recording(p, fs=12_000, variable="x")


def test_csv_without_header(tmp_path):
    p = tmp_path / "a.csv"
    np.savetxt(p, SIGNAL[:, None])
    x, _ = read_recording(p, fs=12_000)
    np.testing.assert_allclose(x, SIGNAL, rtol=1e-5, atol=1e-6)


def test_wav_carries_its_rate(tmp_path):
    p = tmp_path / "a.wav"
    wavfile.write(p, 48_000, (SIGNAL / 5 * 32767).astype(np.int16))
    x, fs = read_recording(p, target_fs=12_000)
    assert fs == 12_000 and len(x) == 6_000
    with pytest.raises(EdgesnnError, match="contradicts"):
        read_recording(p, fs=12_000)


def test_mat_named_variable(tmp_path):
    p = tmp_path / "rec.mat"
    scipy.io.savemat(p, {"acc": SIGNAL[:, None], "rpm": np.array([[1797.0]])})
    x, _ = read_recording(p, fs=12_000, variable="acc")
    np.testing.assert_allclose(x, SIGNAL)
    with pytest.raises(EdgesnnError, match="no numeric variable 'nope'"):
        read_recording(p, fs=12_000, variable="nope")


@pytest.mark.parametrize("fs", [None, 0.0, 5.0, float("nan"), 1e9])
def test_missing_or_absurd_rate(tmp_path, fs):
    p = tmp_path / "a.npy"
    np.save(p, SIGNAL)
    with pytest.raises(EdgesnnError, match="sample rate"):
        read_recording(p, fs=fs)


def test_nan_unsupported_and_missing(tmp_path):
    p = tmp_path / "nan.npy"
    bad = SIGNAL.copy()
    bad[100] = np.nan
    np.save(p, bad)
    with pytest.raises(EdgesnnError, match="first at index 100"):
        read_recording(p, fs=12_000)
    q = tmp_path / "a.xlsx"
    q.write_bytes(b"PK")
    with pytest.raises(EdgesnnError, match="unsupported format"):
        read_recording(q, fs=12_000)
    with pytest.raises(EdgesnnError, match="not found"):
        read_recording(tmp_path / "none.npy", fs=12_000)
