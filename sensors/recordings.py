"""A user's own vibration recordings: .mat, .csv, .npy and .wav, resampled to the model's rate."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgesnn.errors import EdgesnnError
from edgesnn.signal import check_fs, resample

FORMATS = (".mat", ".csv", ".npy", ".wav")


def _from_mat(path: Path, variable: str | None) -> np.ndarray:
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except NotImplementedError:
        raise EdgesnnError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7") from None
    except Exception as exc:
        raise EdgesnnError(f"{path}: not a readable MATLAB file ({exc})") from None
    arrays = {k: v for k, v in mat.items() if not k.startswith("__") and isinstance(v, np.ndarray)
              and v.dtype.kind in "fiu" and v.size > 1}
    if variable is None:
        # CWRU convention: the drive-end signal of "..._105.mat" is X105_DE_time.
        if m := re.search(r"(\d+)\.mat$", path.name):
            own = f"X{int(m[1]):03d}_DE_time"
            if own in arrays:
                variable = own
        if variable is None:
            if len(arrays) != 1:
                raise EdgesnnError(f"{path}: several signals ({', '.join(sorted(arrays))}); choose one with --variable")
            variable = next(iter(arrays))
    if variable not in arrays:
        raise EdgesnnError(f"{path}: no numeric variable {variable!r}; it has {', '.join(sorted(arrays)) or 'none'}")
    return arrays[variable]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _from_csv(path: Path, variable: str | None) -> np.ndarray:
    with open(path) as f:
        first = f.readline()
    delimiter = ";" if ";" in first else ","
    has_header = not all(_is_number(cell) for cell in first.strip().split(delimiter))
    try:
        data = np.genfromtxt(path, delimiter=delimiter, names=True if has_header else None, dtype=np.float64)
    except ValueError as exc:
        raise EdgesnnError(f"{path}: not a numeric CSV ({exc})") from None
    if has_header:
        names = data.dtype.names
        if variable is None:
            if len(names) != 1:
                raise EdgesnnError(f"{path}: several columns ({', '.join(names)}); choose one with --variable")
            variable = names[0]
        if variable not in names:
            raise EdgesnnError(f"{path}: no column {variable!r}; it has {', '.join(names)}")
        return np.asarray(data[variable])
    data = np.atleast_2d(data.T).T if data.ndim == 1 else data
    column = int(variable) if variable is not None else 0
    if data.ndim == 2 and data.shape[1] > 1 and variable is None:
        raise EdgesnnError(f"{path}: {data.shape[1]} columns; choose one with --variable INDEX")
    return data[:, column] if data.ndim == 2 else data


def _from_npy(path: Path, variable: str | None) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise EdgesnnError(f"{path}: not a readable .npy file ({exc})") from None
    if x.ndim == 2 and min(x.shape) > 1:
        if variable is None:
            raise EdgesnnError(f"{path}: {x.shape} array; choose a channel with --variable INDEX")
        x = x[:, int(variable)] if x.shape[0] > x.shape[1] else x[int(variable)]
    return x


def read_recording(path: str | Path, fs: float | None = None, target_fs: float | None = None,
                   variable: str | None = None) -> tuple[np.ndarray, float]:
    """One channel of acceleration (float32) and its rate; resampled to `target_fs` when given.

    A .wav file carries its own rate; the other formats need `fs`.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgesnnError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".wav":
        from scipy.io import wavfile

        try:
            file_fs, x = wavfile.read(path)
        except Exception as exc:
            raise EdgesnnError(f"{path}: not a readable WAV file ({exc})") from None
        if fs is not None and abs(fs - file_fs) > 1e-6:
            raise EdgesnnError(f"{path}: --fs {fs:g} contradicts the file's own rate {file_fs} Hz")
        fs = float(file_fs)
        if x.ndim == 2:
            x = x[:, int(variable or 0)]
        if x.dtype.kind in "iu":  # integer PCM: full scale to +-1
            x = x / float(np.iinfo(x.dtype).max)
    elif suffix == ".mat":
        x = _from_mat(path, variable)
    elif suffix == ".csv":
        x = _from_csv(path, variable)
    elif suffix == ".npy":
        x = _from_npy(path, variable)
    else:
        raise EdgesnnError(f"{path}: unsupported format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    fs = check_fs(fs, str(path))
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise EdgesnnError(f"{path}: the signal is empty")
    bad = ~np.isfinite(x)
    if bad.any():
        raise EdgesnnError(f"{path}: {int(bad.sum())} NaN or infinite samples (first at index {int(np.argmax(bad))})")
    if target_fs is not None:
        x = resample(x, fs, target_fs)
        fs = target_fs
    return x.astype(np.float32), fs
