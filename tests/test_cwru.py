import shutil

import numpy as np
import pytest

from edgesnn.errors import EdgesnnError
from edgesnn.sensors import cwru


def test_reads_all_recordings_at_12khz(cwru_dir):
    recs = cwru.load(cwru_dir)
    assert len(recs) == 37
    normal = [r for r in recs if r.entry.fault == "normal"]
    assert len(normal) == 1 and normal[0].entry.fs_hz == 48_000
    # 243938 samples at 48 kHz become a quarter as many at 12 kHz.
    assert abs(len(normal[0].signal) - 243_938 / 4) <= 1
    for r in recs:
        assert r.signal.dtype == np.float32 and np.isfinite(r.signal).all()
        if r.entry.fault != "normal":
            assert len(r.signal) > 120_000


def test_resampled_normal_matches_fault_files_in_spectrum(cwru_dir):
    """Read at 48 kHz and resampled, the normal baseline's shaft line sits at ~30 Hz like the faults."""
    normal = cwru.load(cwru_dir, loads=[0], sizes=[])[0]
    x = normal.signal - normal.signal.mean()
    spec = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / cwru.MODEL_FS_HZ)
    band = (freqs > 20) & (freqs < 40)
    shaft = freqs[band][np.argmax(spec[band])]
    assert abs(shaft - 1796 / 60) < 1.0


def test_filters_by_load_and_size(cwru_dir):
    recs = cwru.load(cwru_dir, loads=[2], sizes=[0.014])
    names = sorted(r.entry.label() for r in recs)
    assert names == ["ball_014", "inner_race_014", "normal", "outer_race_014"]


def test_reads_the_files_own_variable(cwru_dir):
    entry = next(e for e in cwru.read_manifest(cwru_dir) if e.file.endswith("_118.mat"))
    assert entry.variable == "X118_DE_time"
    bad = entry.__class__(**{**entry.__dict__, "variable": "X999_DE_time"})
    with pytest.raises(EdgesnnError, match="X999_DE_time"):
        cwru.read_entry(cwru_dir, bad)


def test_refuses_a_file_whose_sha256_differs(cwru_dir, tmp_path):
    entry = cwru.read_manifest(cwru_dir)[0]
    copy = tmp_path / entry.file
    shutil.copy(cwru_dir / entry.file, copy)
    with open(copy, "r+b") as f:
        f.seek(-10, 2)
        f.write(b"\x00\x01\x02")
    with pytest.raises(EdgesnnError, match="sha256"):
        cwru.read_entry(tmp_path, entry)


def test_a_manifest_row_cut_short_is_named_by_its_line(tmp_path):
    (tmp_path / "MANIFEST.csv").write_text("file,variable,fault,diameter_in,load_hp,rpm,fs_hz,samples,sha256\n"
                                           "a.mat,X1_DE_time,ball,0.007,0,1797,12000,1000,\n"
                                           "b.mat,X2_DE_time,ball\n")
    with pytest.raises(EdgesnnError, match="MANIFEST.csv line 3: no diameter_in, load_hp, rpm, fs_hz"):
        cwru.read_manifest(tmp_path)


def test_indexes_a_download_by_standard_names(cwru_dir, tmp_path):
    for name in ("12k_Drive_End_IR007_0_105.mat", "12k_Drive_End_OR014@6_1_198.mat", "normal_0_97.mat"):
        (tmp_path / name).symlink_to(cwru_dir / name)
    (tmp_path / "notes.mat").write_bytes(b"")
    entries = {e.file: e for e in cwru.index_download(tmp_path)}
    assert set(entries) == {"12k_Drive_End_IR007_0_105.mat", "12k_Drive_End_OR014@6_1_198.mat", "normal_0_97.mat"}
    assert entries["normal_0_97.mat"].fs_hz == 48_000 and entries["normal_0_97.mat"].variable == "X097_DE_time"
    assert entries["12k_Drive_End_OR014@6_1_198.mat"].label() == "outer_race_014"
    recs = cwru.load(tmp_path)  # no manifest: the names are enough
    assert len(recs) == 3 and all(len(r.signal) > 60_000 for r in recs)


def test_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(EdgesnnError, match="not found"):
        cwru.load(tmp_path / "nowhere")
