"""Reader for the CWRU bearing recordings, driven by a manifest or by the standard file names."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from edgesnn.errors import EdgesnnError
from edgesnn.labels import FAULT_TYPES as FAULTS, label_for
from edgesnn.signal import check_fs, resample

MODEL_FS_HZ = 12_000.0


@dataclass(frozen=True)
class Entry:
    """One recording as the manifest describes it."""

    file: str
    variable: str
    fault: str
    diameter_in: float
    load_hp: int
    rpm: float
    fs_hz: float
    sha256: str | None = None

    def label(self, task: str = "cwru10") -> str:
        return label_for(self.fault, self.diameter_in, task)


@dataclass(frozen=True)
class Recording:
    entry: Entry
    signal: np.ndarray  # drive-end acceleration in g, at MODEL_FS_HZ


def read_manifest(root: Path) -> list[Entry]:
    path = Path(root) / "MANIFEST.csv"
    if not path.is_file():
        raise EdgesnnError(f"{root}: no MANIFEST.csv; point --data at the CWRU folder")
    columns = ("file", "variable", "fault", "diameter_in", "load_hp", "rpm", "fs_hz", "sha256")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EdgesnnError(f"{path}: not a readable CSV manifest ({exc})") from None
    missing = [c for c in columns if rows and c not in rows[0]]
    if not rows or missing:
        raise EdgesnnError(f"{path}: a manifest needs the columns {', '.join(columns)}"
                           + (f"; it lacks {', '.join(missing)}" if rows else "; it has no rows"))
    entries = []
    for line, r in enumerate(rows, 2):
        short = [c for c in columns[:-1] if not (r.get(c) or "").strip()]  # csv gives None past a row's end
        if short:
            raise EdgesnnError(f"{path} line {line}: no {', '.join(short)} (every row needs "
                               f"{', '.join(columns[:-1])}; sha256 may be empty)")
        try:
            entry = Entry(file=r["file"], variable=r["variable"], fault=r["fault"],
                          diameter_in=float(r["diameter_in"]), load_hp=int(r["load_hp"]), rpm=float(r["rpm"]),
                          fs_hz=check_fs(float(r["fs_hz"]), f"{path} line {line}"), sha256=r["sha256"] or None)
        except (TypeError, ValueError) as exc:
            raise EdgesnnError(f"{path} line {line}: {exc}") from None
        if entry.fault not in FAULTS:
            raise EdgesnnError(f"{path} line {line}: fault {entry.fault!r} is not one of {', '.join(FAULTS)}")
        entries.append(entry)
    return entries


# Standard CWRU names: "12k_Drive_End_IR007_0_105.mat", "12k_Drive_End_OR014@6_1_198.mat",
# "48k_Drive_End_B021_3_229.mat", "normal_0_97.mat". The number names the variable (X105_DE_time).
_FAULT_NAME = re.compile(r"^(?P<k>12|48)k_Drive_End_(?P<f>B|IR|OR)(?P<d>\d{3})(?:@\d+)?_(?P<load>\d)_(?P<num>\d+)\.mat$")
_NORMAL_NAME = re.compile(r"^normal_(?P<load>\d)_(?P<num>\d+)\.mat$")
_FAULTS = {"B": "ball", "IR": "inner_race", "OR": "outer_race"}
_RPM = {0: 1797.0, 1: 1772.0, 2: 1750.0, 3: 1730.0}


def index_download(root: Path) -> list[Entry]:
    """Index a user's own download of CWRU files by their standard names (no manifest needed)."""
    entries = []
    for path in sorted(Path(root).glob("*.mat")):
        if m := _FAULT_NAME.match(path.name):
            load = int(m["load"])
            entries.append(Entry(
                file=path.name, variable=f"X{int(m['num']):03d}_DE_time", fault=_FAULTS[m["f"]],
                diameter_in=int(m["d"]) / 1000, load_hp=load, rpm=_RPM[load],
                fs_hz=float(m["k"]) * 1000,
            ))
        elif m := _NORMAL_NAME.match(path.name):
            load = int(m["load"])
            # The CWRU normal baselines are recorded at 48 kHz.
            entries.append(Entry(
                file=path.name, variable=f"X{int(m['num']):03d}_DE_time", fault="normal",
                diameter_in=0.0, load_hp=load, rpm=_RPM[load], fs_hz=48_000.0,
            ))
    if not entries:
        raise EdgesnnError(f"{root}: no CWRU files with standard names (e.g. 12k_Drive_End_IR007_0_105.mat)")
    return entries


def known_rate(path: Path) -> float | None:
    """The sample rate a CWRU recording is known to have: from a MANIFEST.csv beside it, else
    from its standard name (12k_/48k_, and the 48 kHz normal baselines); None for other files."""
    path = Path(path)
    try:
        listed = {e.file: e.fs_hz for e in read_manifest(path.parent)} if (path.parent / "MANIFEST.csv").is_file() else {}
    except EdgesnnError:
        listed = {}
    if path.name in listed:
        return listed[path.name]
    if m := _FAULT_NAME.match(path.name):
        return float(m["k"]) * 1000
    return 48_000.0 if _NORMAL_NAME.match(path.name) else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_entry(root: Path, entry: Entry, verify: bool = True) -> Recording:
    path = Path(root) / entry.file
    if not path.is_file():
        raise EdgesnnError(f"{path}: file listed in the manifest is missing")
    if verify and entry.sha256 and sha256_of(path) != entry.sha256:
        raise EdgesnnError(f"{path}: sha256 differs from the manifest; the file is corrupt or replaced")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:
        raise EdgesnnError(f"{path}: not a readable MATLAB file ({exc})") from None
    if entry.variable not in mat:
        raise EdgesnnError(f"{path}: no variable {entry.variable!r} (the file's own drive-end signal)")
    x = np.asarray(mat[entry.variable], dtype=np.float64).ravel()
    return Recording(entry, resample(x, entry.fs_hz, MODEL_FS_HZ).astype(np.float32))


def entries(root: Path) -> list[Entry]:
    """The recordings under `root` (its manifest's, else those with standard names), without
    reading them: a command checks its --data with this before its slow imports."""
    root = Path(root)
    if not root.is_dir():
        raise EdgesnnError(f"{root}: {'a file, not a data folder' if root.exists() else 'data folder not found'} "
                           "(--data, or $EDGESNN_CWRU)")
    return read_manifest(root) if (root / "MANIFEST.csv").is_file() else index_download(root)


def load(root: Path, verify: bool = True, loads=None, sizes=None) -> list[Recording]:
    """Read every recording under `root` (manifest if present, else standard names), at 12 kHz.

    `loads` keeps only those motor loads (hp); `sizes` keeps only faults of those diameters
    (inches); the normal recording is always kept.
    """
    root = Path(root)
    keep = [
        e for e in entries(root)
        if (loads is None or e.load_hp in loads or e.fault == "normal")
        and (sizes is None or e.fault == "normal" or any(abs(e.diameter_in - s) < 1e-6 for s in sizes))
    ]
    return [read_entry(root, e, verify) for e in keep]
