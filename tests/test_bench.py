"""`edgesnn bench inference` runs every runtime on real windows and writes its table, JSON and PNG
(a smoke test: the numbers are benchmarks, never asserted as timings here)."""

import json

from conftest import run_cli


def test_bench_inference_writes_every_row(cwru_dir, tmp_path):
    r = run_cli("bench", "inference", "--data", cwru_dir, "--repeats", "3", "--out", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert len(result["runtimes"]) == 4 and result["windows"] == 64
    for row in result["runtimes"].values():
        assert row["ms_per_window_batch1"] > 0 and row["ms_per_window_batch32"] > 0
    assert result["operations"]["wdcnn_mac"] > 100_000 and result["energy_pj"]
    assert json.loads((tmp_path / "inference.json").read_text()) == result
    assert (tmp_path / "inference.png").read_bytes()[:4] == b"\x89PNG"
