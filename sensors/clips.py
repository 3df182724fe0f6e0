"""Short real CWRU clips shipped inside the package, one per class, for the demo and smoke tests.

Each clip is the first seconds of its recording's **test region** (CONTRACTS section 1), so the
shipped models never saw it in training. The loads rotate over 0-3 hp (the normal baseline
exists at 0 hp only). Regenerate from the data with:

    python -m edgesnn.sensors.clips ../shared/datasets/cwru
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLIPS_FILE = Path(__file__).with_name("clips") / "cwru_clips.npz"
SECONDS = 1.5  # the normal baseline (48 kHz, 5 s) has 1.52 s of test region at 12 kHz
FS_HZ = 12_000.0


@dataclass(frozen=True)
class Clip:
    label: str  # the truth, a CONTRACTS class name
    source: str  # CWRU file it was cut from
    source_sha256: str
    load_hp: int
    start: int  # first sample, at 12 kHz, in the recording
    signal: np.ndarray  # acceleration in g, float32, at FS_HZ

    @property
    def sensor(self) -> str:
        return f"demo/{self.label}"


def make_clips(cwru_dir: Path, out: Path = CLIPS_FILE, seconds: float = SECONDS) -> list[Clip]:
    from edgesnn.labels import CWRU10
    from edgesnn.sensors import cwru
    from edgesnn.split import region_bounds

    entries = cwru.read_manifest(cwru_dir)
    clips = []
    for i, label in enumerate(CWRU10):
        matching = [e for e in entries if e.label() == label]
        entry = next((e for e in matching if e.load_hp == i % 4), matching[0])
        x = cwru.read_entry(cwru_dir, entry).signal
        start = region_bounds(len(x), "test")[0]
        clips.append(Clip(label, entry.file, entry.sha256 or "", entry.load_hp, start,
                          x[start : start + int(seconds * FS_HZ)].astype(np.float32)))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, signals=np.stack([c.signal for c in clips]), labels=[c.label for c in clips],
                        sources=[c.source for c in clips], source_sha256=[c.source_sha256 for c in clips],
                        loads=[c.load_hp for c in clips], starts=[c.start for c in clips])
    return clips


def load_clips(path: Path = CLIPS_FILE) -> list[Clip]:
    with np.load(path) as f:
        return [Clip(str(l), str(s), str(h), int(ld), int(st), sig)
                for l, s, h, ld, st, sig in zip(f["labels"], f["sources"], f["source_sha256"], f["loads"],
                                                f["starts"], f["signals"])]


if __name__ == "__main__":
    for clip in make_clips(Path(sys.argv[1])):
        print(f"{clip.label:16s} {clip.source} load {clip.load_hp} hp, samples {clip.start}..{clip.start + len(clip.signal)}")
    print(f"wrote {CLIPS_FILE}")
