"""The models shipped inside the package: cards valid, one default, accuracy as claimed, no torch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli
from edgesnn.card import default_card_path, read_card
from edgesnn.models import shipped_cards


def test_exactly_one_default_and_every_card_verifies():
    cards = shipped_cards()
    assert {p.parent.name for p in cards} >= {"mra_snn", "wdcnn"}
    defaults = [p for p in cards if json.loads(p.read_text()).get("default")]
    assert len(defaults) == 1 and defaults[0] == default_card_path()
    assert read_card(defaults[0])["pack"] == "mra_snn"
    for p in cards:
        card = read_card(p)  # sha256 of the ONNX file checked here
        assert card["sample_rate_hz"] == 12000 and card["window"] == 2048
        assert card["command"].startswith("edgesnn train")


@pytest.mark.parametrize("change,message", [
    ({"window": 0}, "card field window is 0"),
    ({"sample_rate_hz": -12000}, "card field sample_rate_hz is -12000"),
    ({"classes": []}, "card field classes must be a non-empty list"),
    ({"classes": ["normal", "ball_007"]}, "the card lists 2 classes, its ONNX graph gives 10 outputs"),
    ({"window": 1024}, "the card says window 1024, its ONNX graph takes 2048"),
    ({"onnx": "../wdcnn/wdcnn-cwru10.onnx"}, "card field onnx must name a file beside the card"),
    ({"name": None}, "card field name is None, not a model name"),
    ({"name": ""}, "card field name is '', not a model name"),
], ids=["window-0", "negative-rate", "no-classes", "classes-vs-outputs", "window-vs-graph", "onnx-elsewhere",
        "null-name", "empty-name"])
def test_an_inconsistent_card_is_refused_in_one_line_before_any_window(tmp_path, change, message):
    card = json.loads(default_card_path().read_text())
    (tmp_path / card["onnx"]).write_bytes((default_card_path().parent / card["onnx"]).read_bytes())
    (tmp_path / "card.json").write_text(json.dumps(card | change))
    r = run_cli("infer", "--model", tmp_path / "card.json", "missing.npy", "--fs", "12000")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


CLASSIFIERS = sorted(p.stem for p in shipped_cards() if json.loads(p.read_text()).get("kind", "classifier") == "classifier")


def test_every_classifier_pack_ships_a_model():
    from edgesnn.registry import list_packs

    packs = {read_card(p)["pack"] for p in shipped_cards() if p.stem in CLASSIFIERS}
    assert packs >= set(list_packs()) - {"esvae"}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shipped_accuracy_is_what_the_card_says(name, cwru_dir):
    """Re-measured here with onnxruntime on the test region: the card's numbers are real."""
    from edgesnn.dataset import load_task
    from edgesnn.evaluation import evaluate
    from edgesnn.runtime import Diagnoser

    path = next(p for p in shipped_cards() if p.stem == name)
    pack = read_card(path)["pack"]
    diagnoser = Diagnoser(path, threads=2)
    data = load_task(cwru_dir)
    r = evaluate(diagnoser.logits, data.windows("test"), data.classes, snrs=(-4,))
    assert r["test_accuracy"] == pytest.approx(diagnoser.card["metrics"]["test_accuracy"], abs=1e-9)
    assert r["snr_accuracy"]["-4"] == pytest.approx(diagnoser.card["metrics"]["snr_-4db_accuracy"], abs=1e-9)
    if pack == "mra_snn":
        assert r["test_accuracy"] >= 0.998
    assert r["test_accuracy"] >= 0.995  # every classifier pack's target (issue: model packs)


def test_infer_on_the_default_model_imports_no_torch(cwru_dir, tmp_path):
    code = (
        "import sys, runpy\n"
        "sys.argv = ['edgesnn', 'infer', sys.argv[1], '--fs', '12000', '--json']\n"
        "from edgesnn.cli.main import app\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'the edge path imported torch'\n"
    )
    rec = cwru_dir / "12k_Drive_End_OR007@6_2_132.mat"
    # Run outside the source tree, so `python -c` imports the installed package, as a user's would.
    r = subprocess.run([sys.executable, "-c", code, str(rec)], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["summary"]["label"] == "outer_race_007"
    assert np.mean([w["label"] == "outer_race_007" for w in out["windows"]]) > 0.9


def test_infer_says_the_rate_it_read_a_recording_at(cwru_dir, tmp_path):
    """The 48 kHz normal recording is resampled to the model's 12 kHz; the first line and the JSON
    say the rate it was read at, which a user who gave the wrong --fs can check."""
    rec = cwru_dir / "normal_0_97.mat"
    r = run_cli("infer", rec, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "windows of 2048 samples at 12000 Hz, resampled from 48000 Hz" in r.stdout.splitlines()[0], r.stdout
    summary = json.loads(run_cli("infer", rec, "--json", cwd=tmp_path).stdout)["summary"]
    assert summary["sample_rate_hz"] == 48000 and summary["label"] == "normal"


def test_a_shipped_model_is_chosen_by_name(cwru_dir, tmp_path):
    """`--model NAME` finds a shipped card by its name, as a wheel install needs (no path to type):
    the float export of the default here, and the esvae anomaly model beside it."""
    rec = cwru_dir / "12k_Drive_End_OR007@6_2_132.mat"
    r = run_cli("infer", rec, "--fs", "12000", "--model", "mra-snn-cwru10", "--anomaly-model", "esvae-cwru-normal",
                "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)["summary"]
    assert summary["model"].startswith("mra-snn-cwru10@") and summary["anomaly_model"].startswith("esvae-cwru-normal@")
    assert summary["label"] == "outer_race_007"
