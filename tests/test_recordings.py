import json

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
    x, fs, _ = read_recording(p, fs=24_000, target_fs=12_000)
    assert fs == 12_000 and len(x) == 12_000


def test_a_file_named_npy_that_is_not_one_is_refused_as_such(tmp_path):
    """An .npz archive or any other file behind a .npy name: one line saying it is not a .npy
    file, not numpy's advice on unpickling, nor an error from reading the archive as an array."""
    np.savez(tmp_path / "a.npz", x=SIGNAL)
    (tmp_path / "a.npy").write_bytes((tmp_path / "a.npz").read_bytes())
    (tmp_path / "b.npy").write_text("time,accel\n0,0.1\n")
    for name in ("a.npy", "b.npy"):
        with pytest.raises(EdgesnnError, match=r"not a \.npy file \(no NumPy header\)"):
            read_recording(tmp_path / name, fs=12_000)


def test_csv_with_header_and_column(tmp_path):
    p = tmp_path / "a.csv"
    np.savetxt(p, np.stack([SIGNAL, 2 * SIGNAL], 1), delimiter=",", header="de,fe", comments="")
    x, _, _ = read_recording(p, fs=12_000, variable="fe")
    np.testing.assert_allclose(x, 2 * SIGNAL, rtol=1e-5, atol=1e-6)
    with pytest.raises(EdgesnnError, match="2 columns"):
        read_recording(p, fs=12_000)
    x, _, _ = read_recording(p, fs=12_000, variable="1")  # a column by index, as by name
    np.testing.assert_allclose(x, 2 * SIGNAL, rtol=1e-5, atol=1e-6)
    with pytest.raises(EdgesnnError, match="no column 'x'"):
        read_recording(p, fs=12_000, variable="x")


def test_csv_header_with_spaces_units_and_a_preamble(tmp_path):
    """What spreadsheets and DAQ exports write: a one-column header with spaces is one name; a unit
    after each value, or lines above the header, are refused saying so."""
    rows = "\n".join(f"{v:.6f}" for v in SIGNAL)
    (tmp_path / "a.csv").write_text("Acceleration (g)\n" + rows)
    x, _, channel = read_recording(tmp_path / "a.csv", fs=12_000)
    np.testing.assert_allclose(x, SIGNAL, atol=1e-5)
    assert channel == "Acceleration (g)"
    (tmp_path / "q.csv").write_text('"Acceleration (g)"\n' + rows)  # quoted, as R's write.csv writes it
    assert read_recording(tmp_path / "q.csv", fs=12_000, variable="Acceleration (g)").channel == "Acceleration (g)"
    (tmp_path / "b.csv").write_text("acc\n" + "\n".join(f"{v:.6f} g" for v in SIGNAL))
    with pytest.raises(EdgesnnError, match=r"line 2 has 2 columns, not 1 \('.* g': only numbers, separated by spaces\)"):
        read_recording(tmp_path / "b.csv", fs=12_000)
    (tmp_path / "c.csv").write_text("Exported by DAQ 1.2\n# 2026-12-08\ntime,acc\n" + "\n".join(f"0,{v:.6f}" for v in SIGNAL))
    with pytest.raises(EdgesnnError, match="no column 'acc'; line 1, the header, has Exported, by, DAQ, 1.2"):
        read_recording(tmp_path / "c.csv", fs=12_000, variable="acc")


def test_a_time_or_index_column_is_not_vibration(tmp_path):
    np.save(tmp_path / "t.npy", np.arange(5000) / 12_000)
    with pytest.raises(EdgesnnError, match="the signal only rises over its 5000 samples: a time or index column"):
        read_recording(tmp_path / "t.npy", fs=12_000)
    np.save(tmp_path / "d.npy", -np.arange(5000.0))
    with pytest.raises(EdgesnnError, match="only falls"):
        read_recording(tmp_path / "d.npy", fs=12_000)
    np.save(tmp_path / "jump.npy", np.r_[np.zeros(6000), np.full(6000, 0.05)])  # a stuck sensor's offset jump
    assert len(read_recording(tmp_path / "jump.npy", fs=12_000).signal) == 12_000  # its windows: no vibration


def test_a_csv_gap_is_named_by_its_line(tmp_path):
    (tmp_path / "n.csv").write_text("acc\n0.1\nnan\n0.2\n")
    with pytest.raises(EdgesnnError, match="line 3, column acc: 'nan' is not a finite number"):
        read_recording(tmp_path / "n.csv", fs=12_000)


def test_csv_without_header(tmp_path):
    p = tmp_path / "a.csv"
    np.savetxt(p, SIGNAL[:, None])
    x, _, _ = read_recording(p, fs=12_000)
    np.testing.assert_allclose(x, SIGNAL, rtol=1e-5, atol=1e-6)


def test_wav_carries_its_rate(tmp_path):
    p = tmp_path / "a.wav"
    wavfile.write(p, 48_000, (SIGNAL / 5 * 32767).astype(np.int16))
    x, fs, _ = read_recording(p, target_fs=12_000)
    assert fs == 12_000 and len(x) == 6_000
    with pytest.raises(EdgesnnError, match="contradicts"):
        read_recording(p, fs=12_000)


def test_8_bit_wav_is_centred_on_its_silence(tmp_path):
    """8-bit WAV samples are unsigned around 128: read as g they are centred on 0, full scale +-1."""
    p = tmp_path / "a.wav"
    pcm = np.clip(np.round(128 + SIGNAL / 5 * 127), 0, 255).astype(np.uint8)
    wavfile.write(p, 12_000, pcm)
    x, _, _ = read_recording(p)
    np.testing.assert_allclose(x, (pcm.astype(np.float64) - 128) / 128, atol=1e-7)
    assert abs(x.mean()) < 0.01


def test_mat_named_variable(tmp_path):
    p = tmp_path / "rec.mat"
    scipy.io.savemat(p, {"acc": SIGNAL[:, None], "rpm": np.array([[1797.0]])})
    x, _, _ = read_recording(p, fs=12_000, variable="acc")
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


def test_csv_cells_that_are_not_numbers_are_named_where_they_are(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("t,acc\n0,0.5\n1,oops\n")
    with pytest.raises(EdgesnnError, match="line 3, column acc: 'oops' is not a number"):
        read_recording(p, fs=12_000, variable="acc")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(EdgesnnError, match="empty"):
        read_recording(tmp_path / "empty.csv", fs=12_000)
    (tmp_path / "bin.csv").write_bytes(bytes(range(128, 256)))
    with pytest.raises(EdgesnnError, match="not UTF-8"):
        read_recording(tmp_path / "bin.csv", fs=12_000)
    (tmp_path / "nul.csv").write_bytes(b"acc\n0.5\0\n")  # decodable, but binary
    with pytest.raises(EdgesnnError, match="not UTF-8"):
        read_recording(tmp_path / "nul.csv", fs=12_000)
    scipy.io.savemat(tmp_path / "rpm.mat", {"rpm": np.array([[1797.0]]), "acc": SIGNAL[:, None]})
    with pytest.raises(EdgesnnError, match="'rpm' holds 1 number, not a signal"):
        read_recording(tmp_path / "rpm.mat", fs=12_000, variable="rpm")
    (tmp_path / "gap.csv").write_text("acc\n0.5\n0.4\n\n0.3\n\n")  # a trailing blank line is layout
    with pytest.raises(EdgesnnError, match="gap.csv line 4: an empty line between rows of samples"):
        read_recording(tmp_path / "gap.csv", fs=12_000)
    (tmp_path / "twice.csv").write_text("acc,rpm,acc\n0.5,1797,0.1\n")
    with pytest.raises(EdgesnnError, match="2 columns are named 'acc' \\(indexes 0, 2\\)"):
        read_recording(tmp_path / "twice.csv", fs=12_000, variable="acc")
    # a Windows-1252 export reads as well as UTF-8
    (tmp_path / "cp1252.csv").write_bytes(("acc_m/s²\n" + "".join(f"{v:.6f}\n" for v in SIGNAL[:50])).encode("cp1252"))
    x, _, _ = read_recording(tmp_path / "cp1252.csv", fs=12_000, variable="acc_m/s²")
    np.testing.assert_allclose(x, SIGNAL[:50], atol=1e-6)
    # semicolons separate, commas are decimal points (a European spreadsheet's export)
    (tmp_path / "eu.csv").write_text("acc;rpm\n" + "".join(f"{v:.6f};1797\n".replace(".", ",") for v in SIGNAL[:50]))
    x, _, _ = read_recording(tmp_path / "eu.csv", fs=12_000, variable="acc")
    np.testing.assert_allclose(x, SIGNAL[:50], atol=1e-6)


def test_csv_rows_are_read_whole_or_refused(tmp_path):
    # decimal commas between comma separators: the row has more cells than the header, refused
    # (it was read as its first cell, silently)
    (tmp_path / "a.csv").write_text("t,acc\n0,0,5\n1,0,7\n")
    with pytest.raises(EdgesnnError, match="line 2 has 3 columns, not 2 .decimal commas"):
        read_recording(tmp_path / "a.csv", fs=12_000, variable="acc")
    (tmp_path / "short.csv").write_text("t,acc\n0,0.5\n1\n")
    with pytest.raises(EdgesnnError, match="line 3 has 1 column, not 2$"):
        read_recording(tmp_path / "short.csv", fs=12_000, variable="acc")
    # quoted decimal commas, one column with decimal commas, spaces between columns: all read
    (tmp_path / "q.csv").write_text('t,acc\n"0,001","0,125"\n"0,002","-0,5"\n')
    np.testing.assert_allclose(read_recording(tmp_path / "q.csv", fs=12_000, variable="acc")[0], [0.125, -0.5])
    (tmp_path / "one.csv").write_text("acc\n0,125\n-0,5\n1,25\n")
    np.testing.assert_allclose(read_recording(tmp_path / "one.csv", fs=12_000)[0], [0.125, -0.5, 1.25])
    np.savetxt(tmp_path / "sp.csv", np.stack([SIGNAL[:20], -SIGNAL[:20]], 1))  # numpy's default: spaces
    np.testing.assert_allclose(read_recording(tmp_path / "sp.csv", fs=12_000, variable="1")[0], -SIGNAL[:20], atol=1e-6)


def test_several_channels_are_never_run_together(tmp_path):
    both = np.stack([SIGNAL, -SIGNAL], 1)
    scipy.io.savemat(tmp_path / "rec.mat", {"acc": both})
    with pytest.raises(EdgesnnError, match="acc: 2 channels .* --variable acc:INDEX"):
        read_recording(tmp_path / "rec.mat", fs=12_000)
    x, _, channel = read_recording(tmp_path / "rec.mat", fs=12_000, variable="acc:1")
    np.testing.assert_allclose(x, -SIGNAL)
    assert channel == "acc:1"  # what --variable reads it with
    np.save(tmp_path / "ch.npy", both.T)  # channels first
    with pytest.raises(EdgesnnError, match="2 channels"):
        read_recording(tmp_path / "ch.npy", fs=12_000)
    with pytest.raises(EdgesnnError, match="channel '2' is not one of 0..1"):
        read_recording(tmp_path / "ch.npy", fs=12_000, variable="2")
    x, _, channel = read_recording(tmp_path / "ch.npy", fs=12_000, variable="1")
    np.testing.assert_allclose(x, -SIGNAL)
    assert channel == "1"
    np.save(tmp_path / "cube.npy", np.zeros((2, 100, 2)))
    with pytest.raises(EdgesnnError, match="3-D array"):
        read_recording(tmp_path / "cube.npy", fs=12_000)
    wavfile.write(tmp_path / "st.wav", 12_000, (both / 5 * 32767).astype(np.int16))
    with pytest.raises(EdgesnnError, match="2 channels"):
        read_recording(tmp_path / "st.wav")
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(EdgesnnError, match="not numbers"):
        read_recording(tmp_path / "text.npy", fs=12_000)


def test_a_cwru_recording_brings_its_own_rate(cwru_dir, tmp_path):
    """The 48 kHz normal baseline read as 12 kHz would be diagnosed as a fault: refused."""
    with pytest.raises(EdgesnnError, match="--fs 12000 contradicts the 48000 Hz"):
        read_recording(cwru_dir / "normal_0_97.mat", fs=12_000)
    x, fs, _ = read_recording(cwru_dir / "normal_0_97.mat", target_fs=12_000)  # no --fs needed
    assert fs == 12_000 and abs(len(x) - 243_938 / 4) <= 1
    wavfile.write(tmp_path / "cut.wav", 12_000, (SIGNAL * 1000).astype(np.int16))
    data = (tmp_path / "cut.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgesnnError, match="not a readable WAV file"):
        read_recording(tmp_path / "cut.wav")


def test_infer_prints_its_title_on_one_line(tmp_path):
    """The title names the recording and its windows in one line, however narrow the table."""
    from conftest import run_cli

    np.save(tmp_path / "pump3_drive_end_2024-05-01.npy", SIGNAL)
    r = run_cli("infer", tmp_path / "pump3_drive_end_2024-05-01.npy", "--fs", "12000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].strip() == "pump3_drive_end_2024-05-01.npy: 11 windows of 2048 samples at 12000 Hz"


def test_the_channel_read_is_named(cwru_dir, tmp_path):
    """A CWRU file holds the drive-end, fan-end and base channels: infer says which it diagnosed,
    as the --variable that reads it; a file of one unnamed channel has nothing to name."""
    from conftest import run_cli

    ir = next(cwru_dir.glob("12k_Drive_End_IR021_*.mat"))
    number = ir.stem.rsplit("_", 1)[1]
    assert read_recording(ir).channel == f"X{int(number):03d}_DE_time"  # the file's own drive end
    assert read_recording(ir, variable=f"X{int(number):03d}_FE_time").channel == f"X{int(number):03d}_FE_time"
    r = run_cli("infer", ir, "--variable", f"X{int(number):03d}_FE_time", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["channel"] == f"X{int(number):03d}_FE_time"
    r = run_cli("infer", ir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(f"{ir.name} (X{int(number):03d}_DE_time): ")
    (tmp_path / "two.csv").write_text("t,acc\n0,0.5\n1,0.25\n")
    assert read_recording(tmp_path / "two.csv", fs=12_000, variable="acc").channel == "acc"
    (tmp_path / "dup.csv").write_text("acc,acc,\n0.5,0.25,1\n0.5,0.25,1\n")  # a repeated name, an empty one
    assert [read_recording(tmp_path / "dup.csv", fs=12_000, variable=v).channel for v in "012"] == ["0", "1", "2"]
    np.savetxt(tmp_path / "one.csv", SIGNAL[:20])
    assert read_recording(tmp_path / "one.csv", fs=12_000).channel is None
    np.save(tmp_path / "one.npy", SIGNAL)
    assert read_recording(tmp_path / "one.npy", fs=12_000).channel is None
