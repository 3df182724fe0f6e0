"""The decide stage's normal margin (`--normal-margin`, runtime.Diagnoser): a window is called
normal only when the normal class leads every fault by more than the margin. On real CWRU
recordings from the fan-end accelerometer, which no model was trained on."""

import json

import numpy as np
import pytest

from conftest import run_cli
from edgesnn.errors import EdgesnnError
from edgesnn.runtime import Diagnoser

MODEL = "mra-snn-cwru10-light-views-int8"


def test_the_margin_lowers_the_normal_logit_only():
    x = np.random.default_rng(0).standard_normal((4, 2048)).astype(np.float32) * 0.1
    plain, shifted = Diagnoser(MODEL), Diagnoser(MODEL, normal_margin=2.5)
    normal = plain.classes.index("normal")
    difference = plain.logits(x) - shifted.logits(x)
    assert np.allclose(difference[:, normal], 2.5) and np.allclose(np.delete(difference, normal, axis=1), 0)
    assert np.allclose(shifted.probabilities(x).sum(axis=1), 1)


def test_a_bad_margin_or_a_model_without_normal_is_refused(tmp_path):
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(EdgesnnError, match="normal margin .*: give a finite number >= 0"):
            Diagnoser(MODEL, normal_margin=bad)
    card = json.loads(Diagnoser(MODEL).card_path.read_text())
    src = Diagnoser(MODEL).card_path.parent
    (tmp_path / card["onnx"]).write_bytes((src / card["onnx"]).read_bytes())
    classes = ["ball_000" if c == "normal" else c for c in card["classes"]]
    (tmp_path / "renamed.json").write_text(json.dumps(card | {"classes": classes}))
    assert "normal" not in Diagnoser(tmp_path / "renamed.json").classes  # without a margin it runs
    with pytest.raises(EdgesnnError, match="no normal class for a normal margin"):
        Diagnoser(tmp_path / "renamed.json", normal_margin=1)
    r = run_cli("infer", "x.npy", "--fs", "12000", "--normal-margin", "-1")
    assert r.returncode == 2 and "--normal-margin" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_infer_with_a_margin_misses_fewer_faults_on_another_sensor_and_keeps_healthy_normal(cwru_dir):
    """The fan-end channel of an inner-race recording: called normal in most windows without a
    margin, a fault with margin 2. The healthy recording stays normal on both sensors."""
    def summary(*args):
        r = run_cli("infer", *args, "--model", MODEL, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["summary"]

    fault = [cwru_dir / "12k_Drive_End_IR021_0_209.mat", "--variable", "X209_FE_time", "--fs", "12000"]
    plain, margin = summary(*fault), summary(*fault, "--normal-margin", "2")
    assert plain["fault_type"] == "normal" and "normal_margin" not in plain
    assert margin["fault_type"] != "normal" and margin["normal_margin"] == 2.0
    assert margin["labels"].get("normal", 0) < plain["labels"]["normal"] / 4
    for variable in ("X097_DE_time", "X097_FE_time"):
        healthy = summary(cwru_dir / "normal_0_97.mat", "--variable", variable, "--fs", "48000", "--normal-margin", "2")
        assert healthy["label"] == "normal" and healthy["share"] == 1.0, (variable, healthy)


def test_the_monitor_reports_its_margin_and_swaps_models_with_it(broker, tmp_path):
    """The status payload names the margin in use; a model taken from --model-dir keeps it."""
    import shutil

    from edgesnn.model_watch import ModelWatcher
    from edgesnn.monitor import Monitor

    assert Monitor(broker, "edgesnn-margin-test", Diagnoser(MODEL, normal_margin=1.5)).status()["normal_margin"] == 1.5
    assert "normal_margin" not in Monitor(broker, "edgesnn-margin-test").status()
    watcher = ModelWatcher(tmp_path, Diagnoser(MODEL, normal_margin=1.5))
    card = Diagnoser("mra-snn-cwru10-int8").card_path
    for f in (card, card.with_suffix(".onnx")):
        shutil.copy(f, tmp_path / f.name)
    new = watcher.poll()
    assert new.model_id.startswith("mra-snn-cwru10-int8@") and new.normal_margin == 1.5
