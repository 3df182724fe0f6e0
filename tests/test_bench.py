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


def test_bench_inference_times_every_window_it_names(cwru_dir, monkeypatch):
    """The table says 64 real test-region windows: batch 1 and batch 32 both time all of them
    (they had timed the first 16 and the first 32)."""
    from edgesnn import bench
    from edgesnn.runtime import Diagnoser

    seen: dict[int, set] = {1: set(), bench.BATCH: set()}
    logits = Diagnoser.logits

    def counting(self, x):
        seen.setdefault(len(x), set()).update(w[:8].tobytes() for w in x)
        return logits(self, x)

    monkeypatch.setattr(Diagnoser, "logits", counting)
    result = bench.run(cwru_dir, repeats=3)
    assert result["windows"] == 64
    assert len(seen[1]) == 64 and len(seen[bench.BATCH]) == 64


def test_bench_packs_scores_every_shipped_classifier_on_the_same_windows(cwru_dir, tmp_path):
    from edgesnn.card import read_card
    from edgesnn.models import shipped_cards

    # an extra card whose file name is a pack's gets a row of its own, not the pack's
    import shutil

    shipped_wdcnn = next(p for p in shipped_cards() if read_card(p)["pack"] == "wdcnn")
    extra = tmp_path / "mine" / "wdcnn.json"
    extra.parent.mkdir()
    shutil.copy(shipped_wdcnn, extra)
    shutil.copy(shipped_wdcnn.with_suffix(".onnx"), extra.parent)
    r = run_cli("bench", "packs", "--data", cwru_dir, "--repeats", "1", "--out", tmp_path, "--json",
                "--card", extra, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    rows = result["packs"]
    assert rows.pop(str(extra))["card"].endswith("mine/wdcnn.json")
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


def test_bench_packs_table_shows_timesteps_as_edgesnn_packs_does():
    """ssnn's T read 4, its first stage's count, where `edgesnn packs` and README show 4,2,1."""
    from edgesnn import bench_packs
    from edgesnn.card import read_card
    from edgesnn.models import shipped_cards
    from edgesnn.registry import pack_defaults, timesteps_text

    measured = {"quantized": True, "test_accuracy": 1.0, "snr_accuracy": {"-4": 0.99}, "ms_per_window_batch1": 0.5,
                "energy_pj": 2e6, "energy_basis": "int8 simulator", "train_seconds": None, "epochs": None,
                "epochs_to_val_99": None, "claim": ""}
    for pack in ("ssnn", "mra_snn"):
        card = read_card(next(p for p in shipped_cards() if read_card(p)["pack"] == pack))
        row = {**measured, "timesteps": card["timesteps"], "stage_timesteps": card.get("stage_timesteps"),
               "spike_bits": card["spike_bits"]}  # as bench_packs.run() keeps them
        defaults = pack_defaults(pack)
        shown = timesteps_text(defaults["timesteps"], defaults.get("stage_timesteps"))  # `edgesnn packs`' T
        assert bench_packs.table_row(pack, row)[1] == shown == {"ssnn": "4,2,1", "mra_snn": "1"}[pack]


def test_bench_packs_trains_exports_and_scores_packs_itself(cwru_dir, tmp_path):
    """The `--train` path, tiny: an integer pack and ssnn (float, with its early exit) trained,
    exported with measured cards, and scored with the early exit in both runtimes."""
    from edgesnn import bench_packs
    from edgesnn.card import read_card

    cards = bench_packs.train_all(cwru_dir, tmp_path, ["realspike", "ssnn"], epochs={"realspike": 1, "ssnn": 1},
                                  steps=3)
    assert "quantization" in read_card(cards["realspike"]) and read_card(cards["realspike"])["spike_bits"] == 1
    assert read_card(cards["ssnn"])["early_exit"]["threshold"] == 0.9
    result = bench_packs.run(cwru_dir, cards, repeats=1, ssnn_checkpoint=tmp_path / "ssnn" / "checkpoint.pt")
    assert set(result["packs"]) == {"realspike", "ssnn"}
    exit_ = result["ssnn_early_exit"]
    assert abs(sum(exit_["exit_at_0.9"]["stage_share"]) - 1.0) < 1e-9 and exit_["all_stages"]["ms_per_window"] > 0
    assert result["onnx_early_exit"]["ssnn"]["ms_per_window_every_stage"] > 0


def test_bench_packs_refuses_a_card_of_another_task_by_name(cwru_dir, tmp_path):
    """A 4-class card in the 10-class table had failed as 'a bug in edgesnn' (IndexError)."""
    from dataclasses import asdict

    from edgesnn.export import export_measured
    from edgesnn.labels import TASKS
    from edgesnn.registry import create_model
    from edgesnn.training import TrainConfig

    model = create_model("wdcnn", n_classes=4, window=2048).eval()
    ckpt = {"config": asdict(TrainConfig(pack="wdcnn", task="fault_type", timesteps=1, bits=0)),
            "classes": list(TASKS["fault_type"]), "history": []}
    card = export_measured(model, ckpt, tmp_path, "four")
    r = run_cli("bench", "packs", "--data", cwru_dir, "--card", card, "--repeats", "1", "--out", tmp_path / "b")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {card}: a model of the classes normal, ball, inner_race, outer_race"), r.stderr
    assert "(cwru10): score it apart" in lines[0]
    assert not (tmp_path / "b").exists()  # a refused run leaves no empty --out behind


def test_packs_rows_say_default_only_for_the_default_and_mark_exact_graphs():
    from edgesnn.bench_packs import _claim, table_row

    assert _claim({"pack": "mra_snn", "default": True}).startswith("default: ")
    assert not _claim({"pack": "mra_snn"}).startswith("default")  # a user's own mra_snn card
    row = {"timesteps": 4, "stage_timesteps": [4, 2, 1], "spike_bits": 2, "quantized": True, "test_accuracy": 1.0,
           "snr_accuracy": {"-4": 0.99}, "ms_per_window_batch1": 0.4, "energy_pj": 2e5,
           "energy_basis": "int8 simulator", "train_seconds": 630, "epochs": 40, "epochs_to_val_99": 7,
           "claim": "", "graph": "exact"}
    assert table_row("ssnn", row)[0] == "ssnn (exact graph)"
    assert table_row("tssd", row | {"graph": "gateway"})[0] == "tssd"


def test_benchmarks_compare_the_default_not_a_variant_shipped_beside_it():
    """mra_snn ships its default and, beside it, the network with both views (float and integer):
    `bench inference` and `bench packs` time the default's own network."""
    from edgesnn.bench import compared_cards
    from edgesnn.bench_packs import shipped_classifier_cards
    from edgesnn.card import default_card_path, read_card
    from edgesnn.models import shipped_cards

    cards = {p: read_card(p) for p in shipped_cards()}
    assert any(c.get("pack_options") for c in cards.values() if c["pack"] == "mra_snn")  # the variant is shipped
    float_card, int_card, wdcnn_card = compared_cards(cards, default_card_path())
    assert int_card == default_card_path() and float_card.name == "mra-snn-cwru10.json"
    assert wdcnn_card.name == "wdcnn-cwru10.json"
    assert shipped_classifier_cards()["mra_snn"] == default_card_path()
