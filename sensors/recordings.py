"""A user's own vibration recordings: .mat, .csv, .npy and .wav, resampled to the model's rate."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgesnn.errors import EdgesnnError
from edgesnn.folders import require_file
from edgesnn.payloads import MAX_ABS_G
from edgesnn.sensors.cwru import known_rate
from edgesnn.signal import check_fs, resample, too_slow

FORMATS = (".mat", ".csv", ".npy", ".wav")


class Recording(NamedTuple):
    signal: np.ndarray  # one channel of acceleration, float32
    rate_hz: float
    channel: str | None  # what `--variable` reads the same channel with; None: the file holds one


def _channel(x: np.ndarray, index: str | None, where: str,
             choose: str = "--variable INDEX") -> tuple[np.ndarray, str | None]:
    """One channel of `x` and its index (None for a vector): a vector (a [1, N] or [N, 1] matrix
    too) as it is; of a [N, C] or [C, N] matrix (channels on the shorter axis) the one `index`
    names. Never several channels run together, which would read as one signal of the wrong length."""
    if x.dtype.kind not in "fiu":
        raise EdgesnnError(f"{where}: holds {x.dtype} values, not numbers")
    if x.ndim <= 1 or sum(n > 1 for n in x.shape) <= 1:
        if index not in (None, "0"):
            raise EdgesnnError(f"{where}: one channel; there is no channel {index!r}")
        return x.ravel(), None
    if x.ndim > 2:
        raise EdgesnnError(f"{where}: a {x.ndim}-D array {x.shape}; give one channel (a vector or a 2-D channel matrix)")
    channels = min(x.shape)
    if index is None:
        raise EdgesnnError(f"{where}: {channels} channels {x.shape}; choose one with {choose}")
    if not index.isdigit() or int(index) >= channels:
        raise EdgesnnError(f"{where}: channel {index!r} is not one of 0..{channels - 1}")
    return (x[:, int(index)] if x.shape[0] > x.shape[1] else x[int(index)]), index


def _from_mat(path: Path, variable: str | None) -> tuple[np.ndarray, str]:
    """A variable of a MATLAB file (a CWRU file's own drive-end one by default), and its name."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except NotImplementedError:
        raise EdgesnnError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7") from None
    except Exception as exc:
        raise EdgesnnError(f"{path}: not a readable MATLAB file ({exc})") from None
    arrays = {k: v for k, v in mat.items() if not k.startswith("__") and isinstance(v, np.ndarray)
              and v.dtype.kind in "fiu" and v.size > 1}
    channel = None
    if variable is not None and ":" in variable:  # NAME:CHANNEL picks a column of a matrix
        variable, channel = variable.rsplit(":", 1)
    if variable is None:
        # CWRU convention: the drive-end signal of "..._105.mat" is X105_DE_time.
        if m := re.search(r"(\d+)\.mat$", path.name):
            own = f"X{int(m[1]):03d}_DE_time"
            if own in arrays:
                variable = own
        if variable is None:
            if not arrays:
                raise EdgesnnError(f"{path}: no numeric variable")
            if len(arrays) > 1:
                raise EdgesnnError(f"{path}: {len(arrays)} numeric variables ({', '.join(sorted(arrays))}); "
                                   "choose one with --variable")
            variable = next(iter(arrays))
    if variable not in arrays:
        held = mat.get(variable)
        if isinstance(held, np.ndarray) and held.dtype.kind in "fiu" and held.size <= 1:  # e.g. a stored RPM
            raise EdgesnnError(f"{path}: {variable!r} holds {held.size} number{'s' if held.size != 1 else ''}, "
                               "not a signal")
        raise EdgesnnError(f"{path}: no numeric variable {variable!r}; it has {', '.join(sorted(arrays)) or 'none'}")
    x, channel = _channel(arrays[variable], channel, f"{path}: {variable}", f"--variable {variable}:INDEX")
    return x, variable if channel is None else f"{variable}:{channel}"


def _number(cell: str) -> float:
    """A CSV cell as a number; one comma and no point is a decimal comma (`-0,5`), which a cell
    can only hold when `;` or a tab separates the columns, or the cell is quoted. ValueError else."""
    cell = cell.strip()
    if cell.count(",") == 1 and "." not in cell:
        cell = cell.replace(",", ".")
    return float(cell)


def _is_number(cell: str) -> bool:
    try:
        _number(cell)
    except ValueError:
        return False
    return True


def _from_csv(path: Path, variable: str | None) -> tuple[np.ndarray, str | None]:
    """A column of a comma-, semicolon-, tab- or space-separated file, by header name or by index,
    and what --variable reads it by: its name, else its index (a repeated, empty or numeric name);
    None for the one column of a file without a header.
    Every row must have the header's columns and every cell of the column must be a number; any
    other row is refused where it is, never read in part or as NaN."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # a spreadsheet's export on a European Windows machine (a header such as m/s²)
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            text = None
    if text is None or "\0" in text:
        raise EdgesnnError(f"{path}: not a text CSV file (not UTF-8, nor Windows-1252)")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise EdgesnnError(f"{path}: the CSV file is empty")
    # blank lines before or after the rows are layout; between them they may be a gap in the
    # recording, and joining the samples on either side would make a signal that never was
    gap = next((a + 1 for (a, _), (b, _) in zip(lines, lines[1:]) if b > a + 1), None)
    if gap is not None:
        raise EdgesnnError(f"{path} line {gap}: an empty line between rows of samples; remove it if the "
                           "recording is continuous there, or split the file")
    first = lines[0][1]
    delimiter = next((d for d in ";\t," if d in first), " ")
    try:  # each line is one row (no quoted line breaks), so that an error names its line
        cells = csv.reader((line.strip() for _, line in lines), delimiter=delimiter, skipinitialspace=True)
        rows = [(n, row) for (n, _), row in zip(lines, cells)]
    except csv.Error as exc:
        raise EdgesnnError(f"{path}: not a readable CSV file ({exc})") from None
    header = None if all(_is_number(c) for c in rows[0][1]) else [c.strip() for c in rows.pop(0)[1]]
    if not rows:
        raise EdgesnnError(f"{path}: the CSV file has a header and no data")
    if header and len(header) > 1 and delimiter == " " and len(rows[0][1]) == 1:  # one name with spaces: Acceleration (g)
        header = [first.strip()]
    width = len(header) if header else len(rows[0][1])
    names = header or [str(i) for i in range(width)]
    if variable is None:
        if width != 1:
            raise EdgesnnError(f"{path}: {width} columns ({', '.join(names)}); choose one with --variable NAME or INDEX")
        column = 0
    elif variable in names:
        if names.count(variable) > 1:  # which one was meant is not ours to guess
            at = [str(i) for i, name in enumerate(names) if name == variable]
            raise EdgesnnError(f"{path}: {names.count(variable)} columns are named {variable!r} "
                               f"(indexes {', '.join(at)}); choose one with --variable INDEX")
        column = names.index(variable)
    elif variable.isdigit() and int(variable) < width:
        column = int(variable)
    else:
        where = f"; line {lines[0][0]}, the header, has" if header else "; it has"  # a preamble above it shows
        raise EdgesnnError(f"{path}: no column {variable!r}{where} {', '.join(names)} (or an index 0..{width - 1})")
    values = np.empty(len(rows))
    for i, (line, row) in enumerate(rows):
        if len(row) != width:
            hint = " (decimal commas need ; or tabs between columns, or quotes)" \
                if delimiter == "," and len(row) > width else ""
            if delimiter == " " and not all(_is_number(c) for c in row):  # "0.044 g": a unit after the value
                hint = f" ({' '.join(row)[:30]!r}: only numbers, separated by spaces)"
            raise EdgesnnError(f"{path}: line {line} has {len(row)} column{'s' * (len(row) != 1)}, not {width}{hint}")
        try:
            values[i] = _number(row[column])
        except ValueError:
            raise EdgesnnError(f"{path}: line {line}, column {names[column]}: "
                               f"{row[column].strip()[:20]!r} is not a number") from None
        if not np.isfinite(values[i]):  # "nan", "inf": named by line here, as a spreadsheet shows it
            raise EdgesnnError(f"{path}: line {line}, column {names[column]}: {row[column].strip()[:20]!r} is not "
                               "a finite number (a gap in the recording?)")
    if width == 1 and not header:
        return values, None
    name = names[column]  # a name --variable would read this column by: unique, and not an index's digits
    return values, name if header and name and not name.isdigit() and names.count(name) == 1 else str(column)


def _from_npy(path: Path, variable: str | None) -> tuple[np.ndarray, str | None]:
    with open(path, "rb") as f:  # np.load would read an .npz archive, and call any other file a pickle
        if f.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
            raise EdgesnnError(f"{path}: not a .npy file (no NumPy header); save one array with numpy.save")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise EdgesnnError(f"{path}: not a readable .npy file ({exc})") from None
    return _channel(x, variable, str(path))


def read_recording(path: str | Path, fs: float | None = None, target_fs: float | None = None,
                   variable: str | None = None) -> Recording:
    """One channel of acceleration, its rate and which channel it is; resampled to `target_fs`
    when given.

    A .wav file carries its own rate; the other formats need `fs`.
    """
    path = require_file(path, "recording")
    suffix = path.suffix.lower()
    if suffix == ".wav":
        from scipy.io import wavfile

        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", wavfile.WavFileWarning)  # a truncated file is not read in part
                file_fs, x = wavfile.read(path)
        except Exception as exc:
            raise EdgesnnError(f"{path}: not a readable WAV file ({exc})") from None
        if fs is not None and abs(fs - file_fs) > 1e-6:
            raise EdgesnnError(f"{path}: --fs {fs:g} contradicts the file's own rate {file_fs} Hz")
        fs = float(file_fs)
        x, channel = _channel(x, variable, str(path))
        if x.dtype == np.uint8:  # 8-bit PCM is unsigned, silence at 128: full scale to +-1
            x = (x.astype(np.float64) - 128) / 128
        elif x.dtype.kind in "iu":  # integer PCM: full scale to +-1
            x = x / float(np.iinfo(x.dtype).max)
    elif suffix == ".mat":
        x, channel = _from_mat(path, variable)
        known = known_rate(path)  # a CWRU file's rate is known: a 48 kHz one read as 12 kHz misleads
        if known is not None and fs is not None and abs(fs - known) > 1e-6:
            raise EdgesnnError(f"{path}: --fs {fs:g} contradicts the {known:g} Hz this CWRU recording was made at")
        fs = known if fs is None else fs
    elif suffix == ".csv":
        x, channel = _from_csv(path, variable)
    elif suffix == ".npy":
        x, channel = _from_npy(path, variable)
    else:
        raise EdgesnnError(f"{path}: unsupported format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    fs = check_fs(fs, str(path))
    if target_fs is not None and (why := too_slow(fs, target_fs)):
        raise EdgesnnError(f"{path}: {why}")
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise EdgesnnError(f"{path}: the signal is empty")
    bad = ~np.isfinite(x)
    if bad.any():
        raise EdgesnnError(f"{path}: {int(bad.sum())} NaN or infinite samples (first at index {int(np.argmax(bad))})")
    huge = np.abs(x) > MAX_ABS_G
    if huge.any():
        raise EdgesnnError(f"{path}: a sample of {np.abs(x).max():.3g} g (first at index {int(np.argmax(huge))}); no "
                           f"accelerometer measures more than {MAX_ABS_G:g} g: the wrong unit or variable?")
    steps = np.diff(x)
    if len(x) > 2 and ((steps > 0).all() or (steps < 0).all()):  # vibration goes both ways; a clock does not
        raise EdgesnnError(f"{path}: the signal only {'rises' if steps.sum() > 0 else 'falls'} over its {len(x)} "
                           "samples: a time or index column, not vibration; choose the acceleration with --variable")
    recording = Recording(x.astype(np.float32), fs, channel)
    return recording if target_fs is None else at_rate(recording, target_fs, path)


def at_rate(recording: Recording, target_fs: float, path) -> Recording:
    """The recording resampled to `target_fs` (a model's rate); refused when it is too slow for it."""
    if why := too_slow(recording.rate_hz, target_fs):
        raise EdgesnnError(f"{path}: {why}")
    x = resample(recording.signal.astype(np.float64), recording.rate_hz, target_fs)
    return Recording(x.astype(np.float32), target_fs, recording.channel)
