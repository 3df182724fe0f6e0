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


def test_bench_packs_scores_every_shipped_classifier_on_the_same_windows(cwru_dir, tmp_path):
    from edgesnn.card import read_card
    from edgesnn.models import shipped_cards

    r = run_cli("bench", "packs", "--data", cwru_dir, "--repeats", "1", "--out", tmp_path, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    rows = result["packs"]
    assert list(rows)[:2] == ["mra_snn", "wdcnn"] and "esvae" not in rows
    assert set(rows) == {read_card(p)["pack"] for p in shipped_cards()} - {"esvae"}
    for pack, row in rows.items():
        card = read_card(next(p for p in shipped_cards() if p.name == row["card"].split("/")[-1]))
        # measured here, the same as the card's own measurement on the same windows
        assert row["test_accuracy"] == card["metrics"]["test_accuracy"] >= 0.995
        assert row["snr_accuracy"]["-4"] == card["metrics"]["snr_-4db_accuracy"]
        assert row["ms_per_window_batch1"] > 0 and row["energy_pj"] > 0
        assert row["energy_basis"] == ("int8 simulator" if "quantization" in card else "dense int8 MACs")
    assert "ssnn_early_exit" not in result  # no ssnn checkpoint in a fresh folder
    assert (tmp_path / "packs.png").read_bytes()[:4] == b"\x89PNG"
