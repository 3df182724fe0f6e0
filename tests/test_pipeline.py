"""train -> eval -> export -> infer through the real `edgesnn` command on real CWRU data (tiny run)."""

import json

import numpy as np
import pytest

from conftest import run_cli, train_tiny, untrained_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cwru_dir):
    out = tmp_path_factory.mktemp("run")
    train_tiny(out / "train", cwru_dir)
    return out


def test_train_writes_checkpoint_history_and_curve(trained):
    history = json.loads((trained / "train" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert (trained / "train" / "checkpoint.pt").stat().st_size > 10_000
    assert (trained / "train" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_reports_test_region_and_snr_sweep(trained, cwru_dir):
    r = run_cli("eval", trained / "train" / "checkpoint.pt", "--data", cwru_dir, "--json", "--out", trained / "eval")
    assert r.returncode == 0, r.stderr
    result = next(iter(json.loads(r.stdout).values()))
    assert result["n_windows"] == 621
    assert list(result["snr_accuracy"]) == ["-10", "-8", "-6", "-4", "-2", "0", "2", "4"]
    assert set(result["per_load_accuracy"]) == {"0", "1", "2", "3"}
    assert np.array(result["confusion"]).sum() == 621
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert (trained / "eval" / "snr.png").is_file() and (trained / "eval" / "confusion_1.png").is_file()


def test_export_matches_pytorch_and_infer_runs_it(trained, cwru_dir):
    r = run_cli("export", trained / "train" / "checkpoint.pt", "--out", trained / "model", "--name", "tiny",
                "--data", cwru_dir)
    assert r.returncode == 0, r.stderr
    card = json.loads((trained / "model" / "tiny.json").read_text())
    assert card["format"] == "edgesnn-model-card/1" and card["pack"] == "mra_snn"
    assert card["window"] == 2048 and card["sample_rate_hz"] == 12000 and card["timesteps"] == 1
    check = card["onnx_check"]
    assert check["windows"] == 64 and check["argmax_agreement"] == 1.0
    assert check["windows_over_tolerance"] <= 3 and check["median_deviation"] <= 1e-4
    assert 0.0 <= card["metrics"]["test_accuracy"] <= 1.0 and "snr_-4db_accuracy" in card["metrics"]

    # ONNX equals PyTorch on real windows too, not only on the random ones export checks.
    from edgesnn.dataset import load_task
    from edgesnn.export import compare_with_pytorch
    from edgesnn.training import load_checkpoint

    model, _ = load_checkpoint(trained / "train" / "checkpoint.pt")
    windows = load_task(cwru_dir).windows("test").x[::40, None, :]
    real = compare_with_pytorch(model, trained / "model" / "tiny.onnx", windows)
    assert real["argmax_agreement"] == 1.0 and real["median_deviation"] <= 1e-4
    assert real["windows_over_tolerance"] <= 0.05 * real["windows"]

    rec = cwru_dir / "12k_Drive_End_IR021_0_209.mat"
    r = run_cli("infer", rec, "--fs", "12000", "--model", trained / "model" / "tiny.json", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["summary"]["windows"] == len(out["windows"]) == 122136 // 2048
    assert out["summary"]["model"] == f"tiny@{card['onnx_sha256'][:8]}"


def test_infer_refuses_a_model_whose_sha256_differs(trained, cwru_dir, tmp_path):
    import shutil

    for suffix in (".onnx", ".json"):
        shutil.copy(trained / "model" / f"tiny{suffix}", tmp_path / f"tiny{suffix}")
    with open(tmp_path / "tiny.onnx", "ab") as f:
        f.write(b"\x00")
    r = run_cli("infer", cwru_dir / "12k_Drive_End_IR021_0_209.mat", "--fs", "12000", "--model", tmp_path / "tiny.json")
    assert r.returncode == 2
    assert "sha256 differs" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("option,bad,good", [("speed-jitter", "0.9", 0.05), ("path-share", "1.5", 0.5)])
def test_train_augmentation_options_from_the_command_line(tmp_path, cwru_dir, option, bad, good):
    """Time-stretch and structural-path augmentation (README, beyond the training distribution)
    are train options; an impossible value is refused, and the card says how the model was trained."""
    import torch

    key = option.replace("-", "_")
    r = run_cli("train", f"--{option}", bad, "--data", cwru_dir, "--out", tmp_path)
    assert r.returncode != 0 and option in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", f"--{option}", str(good), "--data", cwru_dir, "--epochs", "1", "--steps", "2",
                "--batch-size", "8", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["config"][key] == good
    r = run_cli("export", tmp_path / "checkpoint.pt", "--out", tmp_path / "model", "--name", "augmented")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "model" / "augmented.json").read_text())["training"][key] == good


def test_path_until_stops_the_paths_for_the_last_steps(tmp_path, cwru_dir):
    """--path-until F: the first F of the steps are re-pathed as with --path-share alone, the rest
    are not; the card says so. Without --path-share it is refused."""
    import torch

    from edgesnn.dataset import load_task
    from edgesnn.training import TrainConfig, train

    data = load_task(cwru_dir)
    losses = {}
    for until in (1.0, 0.5):
        cfg = TrainConfig(data=str(cwru_dir), epochs=2, steps_per_epoch=2, batch_size=8, path_share=1.0,
                          path_until=until, extra={"channels": 8})
        losses[until] = [row["loss"] for row in train(cfg, data=data)["history"]]
    assert losses[0.5][0] == losses[1.0][0] and losses[0.5][1] != losses[1.0][1]
    r = run_cli("train", "--path-until", "0.7", "--data", cwru_dir, "--out", tmp_path)
    assert r.returncode == 2 and "give --path-share too" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--path-share", "0.5", "--path-until", "0.5", "--data", cwru_dir, "--epochs", "2",
                "--steps", "1", "--batch-size", "8", "--option", "channels=8", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["config"]["path_until"] == 0.5
    r = run_cli("export", tmp_path / "checkpoint.pt", "--out", tmp_path / "model", "--name", "until")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "model" / "until.json").read_text())["training"]["path_until"] == 0.5


def test_repath_changes_fault_windows_only_and_keeps_the_impacts_timing():
    """edgesnn.paths.repath: normal windows keep their path; a re-pathed impact train still rings
    at its impacts (the path is causal and starts at once), so its repetition rate is kept."""
    from edgesnn.paths import repath

    period, n = 100, 2048
    x = np.zeros((64, n), np.float32)
    x[:, ::period] = 1.0  # impacts every 100 samples (120 Hz at 12 kHz)
    y = np.arange(64) % 2  # class 0 normal, class 1 a fault
    out = repath(x.copy(), y, 1.0, np.random.default_rng(0), normal=0)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert np.array_equal(out[y == 0], x[y == 0]) and not np.allclose(out[y == 1], x[y == 1])
    for w in out[y == 1]:  # the envelope repeats at the impacts' period
        env = np.abs(w[period : n - period])
        assert np.corrcoef(env[:-period], env[period:])[0, 1] > 0.9
    again = repath(x.copy(), y, 1.0, np.random.default_rng(0), normal=0)
    assert np.array_equal(out, again)  # the seed decides the paths
    assert np.array_equal(repath(x.copy(), y, 0.0, np.random.default_rng(0), normal=0), x)


def test_train_distills_from_a_teacher_checkpoint(trained, cwru_dir, tmp_path):
    """--teacher: the network also learns the teacher's softened outputs. Same seed, same initial
    weights and batches: the first epoch's loss is the plain one plus a distillation term."""
    import torch

    teacher = trained / "train" / "checkpoint.pt"
    common = ["--data", cwru_dir, "--epochs", "1", "--steps", "2", "--batch-size", "8", "--threads", "1"]
    plain = run_cli("train", *common, "--out", tmp_path / "plain")
    taught = run_cli("train", *common, "--teacher", teacher, "--out", tmp_path / "taught")
    assert plain.returncode == 0 and taught.returncode == 0, plain.stderr + taught.stderr
    ckpt = torch.load(tmp_path / "taught" / "checkpoint.pt", weights_only=False)
    assert ckpt["config"]["teacher"] == str(teacher)
    loss = {k: json.loads((tmp_path / k / "history.json").read_text())[0]["loss"] for k in ("plain", "taught")}
    assert loss["taught"] > loss["plain"]

    # a teacher of another task, a detector, a pack with its own objective, no such file: one line each
    untrained_checkpoint(tmp_path / "four.pt", task="fault_type")
    untrained_checkpoint(tmp_path / "detector.pt", pack="esvae")
    for args, says in ((["--teacher", tmp_path / "four.pt"], "a teacher for task fault_type"),
                       (["--teacher", tmp_path / "detector.pt"], "a teacher must classify them"),
                       (["--pack", "tssd", "--teacher", teacher], "trains with its own objective"),
                       (["--teacher", tmp_path / "nope.pt"], "checkpoint not found")):
        r = run_cli("train", *common, *args, "--out", tmp_path / "x")
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and says in lines[0], r.stderr


def test_learning_curve_of_one_epoch_shows_its_points(tmp_path, monkeypatch):
    """A one-epoch run drew lines of one point each: two empty panels."""
    pytest.importorskip("matplotlib")
    from edgesnn import plots

    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    row = {"epoch": 1, "loss": 1.2, "train_accuracy": 0.3, "val_accuracy": 0.5, "val_snr_-6db_accuracy": 0.4}
    plots.learning_curve([row], tmp_path / "curve.png", "one epoch")
    lines = [line for ax in figures[0].axes for line in ax.get_lines()]
    assert len(lines) == 4 and all(line.get_marker() not in ("None", None, "") for line in lines)
    ax = figures[0].axes[0]
    lo, hi = ax.get_xlim()
    assert [t for t in ax.get_xticks() if lo <= t <= hi] == [1.0]  # whole epochs only


def test_confusion_matrix_counts_are_readable_on_dark_cells(tmp_path, monkeypatch):
    """The diagonal of a good model is the darkest blue: its counts were black on it."""
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_rgb

    from edgesnn import plots

    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    plots.confusion_matrix([[60, 2], [0, 59]], ["normal", "ball_007"], tmp_path / "c.png", "two classes")
    colors = {t.get_text(): to_rgb(t.get_color()) for t in figures[0].axes[0].texts}
    assert colors == {"60": (1, 1, 1), "59": (1, 1, 1), "2": (0, 0, 0)}
