"""The esvae pack: a spiking VAE trained on normal data as an anomaly detector, from its network
to the monitor's diagnoses on a real broker."""

import json
import time
import uuid

import numpy as np
import pytest
import torch

from conftest import mqtt_listener, run_cli, running_monitor, wait_for
from edgesnn.anomaly import AnomalyScorer, auroc
from edgesnn.errors import EdgesnnError
from edgesnn.models import shipped_cards
from edgesnn.registry import create_model

TINY = dict(n_classes=10, window=2048, timesteps=2, bits=1, hidden=16, latent=4)


def shipped_esvae(quantized: bool = False):
    """The shipped detector: the float export, or its integer network."""
    return next(p for p in shipped_cards() if p.parent.name == "esvae" and p.stem.endswith("-int8") == quantized)


def test_forward_is_a_deterministic_score_and_training_samples_spikes():
    torch.manual_seed(0)
    model = create_model("esvae", **TINY)
    x = torch.randn(3, 1, 2048)
    loss, logits = model.training_loss(x, torch.zeros(3, dtype=torch.long), None, 0.5)
    assert logits is None and loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.enc_in.weight.grad.abs().sum() > 0  # gradients reach the encoder through the sampled latent
    rate = model.encode(model.target(x))
    assert rate.min() >= 0 and rate.max() <= 1
    spikes = model.sample_latent(rate)
    assert spikes.shape == (2 * 3, 4) and set(spikes.detach().unique().tolist()) <= {0.0, 1.0}
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert a.shape == (3, 1) and torch.equal(a, b)
    with pytest.raises(ValueError, match="timesteps"):
        create_model("esvae", n_classes=10, window=2048, timesteps=1, bits=1)


def test_auroc_against_a_hand_computed_case():
    # anomalous 0.4: above 0.1 and 0.35, tied with 0.4 (one half), below 0.8 -> 2.5 of 4; 0.9: 4 of 4
    assert auroc([0.1, 0.4, 0.35, 0.8], [0.4, 0.9]) == pytest.approx(6.5 / 8)
    assert auroc([1, 2], [3, 4]) == 1.0 and auroc([3, 4], [1, 2]) == 0.0 and auroc([1, 1], [1]) == 0.5
    with pytest.raises(ValueError):
        auroc([], [1.0])


def test_train_on_normal_only_export_and_onnx_equals_pytorch(cwru_dir, tmp_path):
    from edgesnn.dataset import load_task
    from edgesnn.export import export_measured
    from edgesnn.plots import learning_curve
    from edgesnn.training import TrainConfig, train

    torch.set_num_threads(1)
    data = load_task(cwru_dir)
    seen = []
    sample = data.sample_train

    def spy(*args, **kwargs):
        x, y = sample(*args, **kwargs)
        seen.append(y)
        return x, y

    data.sample_train = spy
    cfg = TrainConfig(pack="esvae", epochs=2, steps_per_epoch=2, batch_size=8, timesteps=2, bits=1,
                      extra={"hidden": 16, "latent": 4})
    ckpt = train(cfg, data=data)
    assert np.concatenate(seen).tolist() == [0] * 32  # normal windows only
    assert all("selection_score" in h and "val_accuracy" not in h for h in ckpt["history"])
    learning_curve(ckpt["history"], tmp_path / "curve.png", "esvae")  # a history without accuracy plots
    assert (tmp_path / "curve.png").stat().st_size > 0

    from edgesnn.training import model_from_checkpoint

    model = model_from_checkpoint(ckpt)
    data.sample_train = sample
    card_path = export_measured(model, ckpt, tmp_path, "tiny-esvae", data)
    card = json.loads(card_path.read_text())
    assert card["kind"] == "anomaly" and card["classes"] == ["normal"] and card["pack"] == "esvae"
    assert card["threshold"] > 0 and "training and validation" in card["threshold_rule"]
    assert set(card["metrics"]["test_auroc_per_class"]) == set(data.classes[1:])
    assert {"test_auroc", "snr_-4db_auroc", "test_false_alarm_rate"} <= set(card["metrics"])

    test = data.windows("test")
    x = test.x[:: len(test.x) // 40]
    ours = AnomalyScorer(card_path).scores(x)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)[:, None, :])[:, 0].numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)

    # the integer network: onnxruntime and the simulator agree bit for bit, firmware-sim says so
    from edgesnn.firmware_sim.esvae import IntESVAE

    card_path = export_measured(model, ckpt, tmp_path, "tiny-esvae-int8", data, quantize=True)
    card = json.loads(card_path.read_text())
    assert card["kind"] == "anomaly" and card["onnx_check"]["bit_exact_windows"] == card["onnx_check"]["windows"]
    assert "test_auroc" in card["quantization"]["float_metrics"] and card["threshold"] > 0
    net = IntESVAE.from_card(card_path, card)
    assert np.array_equal(net.scores(x), AnomalyScorer(card_path).scores(x))
    r = run_cli("firmware-sim", "--model", card_path, "--data", cwru_dir, "--json")  # every test window
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["onnxruntime_bit_exact_windows"] == report["windows"] == len(test.x)
    assert report["auroc"] == pytest.approx(card["metrics"]["test_auroc"], abs=1e-9)
    assert report["operations"]["snn_mac"] > 0 and report["flash_bytes"]["total"] > 0


def test_train_command_reports_the_validation_scores(cwru_dir, tmp_path):
    r = run_cli("train", "--pack", "esvae", "--data", cwru_dir, "--epochs", "1", "--steps", "2", "--batch-size", "8",
                "--threads", "1", "-o", "hidden=16", "-o", "latent=4", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "val_normal_score" in r.stdout and (tmp_path / "learning_curve.png").is_file()
    # structural paths re-path fault windows, which this pack never trains on: refused, not recorded
    r = run_cli("train", "--pack", "esvae", "--data", cwru_dir, "--path-share", "0.25", "--out", tmp_path / "paths")
    assert r.returncode == 2 and r.stderr.strip() == ("error: pack esvae trains on normal windows only, and "
                                                      "--path-share re-paths fault windows: it would change nothing")
    assert not (tmp_path / "paths").exists()


@pytest.mark.parametrize("quantized", [False, True], ids=["float", "int8"])
def test_shipped_model_detects_every_fault_as_its_card_says(cwru_dir, quantized):
    from edgesnn.anomaly import detector_metrics
    from edgesnn.dataset import load_task

    path = shipped_esvae(quantized)
    scorer = AnomalyScorer(path)
    card = scorer.card
    assert card["default"] is False and card["command"].startswith("edgesnn train --pack esvae")
    data = load_task(cwru_dir)
    m = detector_metrics(scorer.scores, data.windows("test"), data.classes, scorer.threshold)
    assert m["test_auroc_per_class"] == pytest.approx(card["metrics"]["test_auroc_per_class"], abs=1e-9)
    assert m["snr_-4db_auroc"] == pytest.approx(card["metrics"]["snr_-4db_auroc"], abs=1e-9)
    assert min(m["test_auroc_per_class"].values()) >= 0.99 and m["test_auroc"] >= 0.99
    assert m["test_false_alarm_rate"] == 0.0 and m["test_detection_rate"] == 1.0


def test_an_anomaly_card_is_no_classifier_and_a_classifier_no_anomaly_model(tmp_path):
    from edgesnn.card import default_card_path
    from edgesnn.runtime import Diagnoser

    with pytest.raises(EdgesnnError, match="an anomaly model, not a classifier"):
        Diagnoser(shipped_esvae())
    with pytest.raises(EdgesnnError, match="not an anomaly model"):
        AnomalyScorer(default_card_path())
    assert default_card_path().parent.name != "esvae"
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal(4096).astype(np.float32))
    r = run_cli("infer", tmp_path / "x.npy", "--fs", "12000", "--model", shipped_esvae())
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "an anomaly model, not a classifier" in r.stderr


def test_monitor_refuses_an_anomaly_model_of_another_window(tmp_path):
    card = json.loads(shipped_esvae().read_text())
    (tmp_path / card["onnx"]).write_bytes((shipped_esvae().parent / card["onnx"]).read_bytes())
    (tmp_path / "bad.json").write_text(json.dumps(card | {"window": 1024}))
    r = run_cli("monitor", "--anomaly-model", tmp_path / "bad.json", "--journal", tmp_path / "j.sqlite",
                "--broker", "mqtt://127.0.0.1:1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "the card says window 1024, its ONNX graph takes 2048" in lines[0], r.stderr
    # a consistent detector of another window than the classifier's is refused beside it
    with pytest.raises(EdgesnnError, match="takes 2048-sample windows at 12000 Hz, the classifier x 1024 at 12000"):
        AnomalyScorer(shipped_esvae()).check_matches(1024, 12000, "the classifier x")


def test_monitor_refuses_a_negative_anomaly_threshold(tmp_path):
    """Scores are mean squared errors: below 0 every window would alarm. One line, exit 2."""
    r = run_cli("monitor", "--anomaly-model", shipped_esvae(), "--anomaly-threshold", "-1",
                "--journal", tmp_path / "j.sqlite", "--broker", "mqtt://127.0.0.1:1")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "anomaly threshold -1: below 0" in lines[0], r.stderr
    assert AnomalyScorer(shipped_esvae(), threshold=0.0).threshold == 0.0


@pytest.mark.parametrize("classifier,quantized", [(None, False), ("ssnn-cwru10-int8", True)],
                         ids=["default-and-float-detector", "integer-ssnn-and-integer-detector"])
def test_monitor_adds_the_anomaly_score_to_every_diagnosis(broker, cwru_dir, classifier, quantized):
    """Also the integer packs off the default path: ssnn's early-exit network as the classifier,
    the integer detector beside it."""
    from edgesnn.monitor import Monitor
    from edgesnn.runtime import Diagnoser
    from edgesnn.payloads import encode_waveform
    from edgesnn.sensors import cwru
    from edgesnn.split import region

    root = f"edgesnn-test-{uuid.uuid4().hex[:8]}"
    clips = {}
    for rec in cwru.load(cwru_dir, loads=[0]):
        if rec.entry.file.startswith(("12k_Drive_End_B007", "normal")):
            clips[rec.entry.label()] = region(rec.signal, "test")[: 3 * 2048]
    assert set(clips) == {"normal", "ball_007"}
    received, status = [], {}

    def on_message(client, userdata, msg):
        if msg.topic.endswith("/diagnosis"):
            received.append((msg.topic.split("/")[1], json.loads(msg.payload)))
        elif msg.topic.endswith("/_monitor/status"):
            status.update(json.loads(msg.payload))

    listener = mqtt_listener(broker, f"{root}/#", on_message)
    scorer = AnomalyScorer(shipped_esvae(quantized))
    mon = Monitor(broker, root, diagnoser=Diagnoser(classifier) if classifier else None, anomaly=scorer)
    with running_monitor(broker, mon) as pub:
        for label, x in clips.items():
            pub.publish(f"{root}/{label}/waveform", encode_waveform(0, 1_763_800_000.0, 12000, x), qos=1)
        wait_for(lambda: len(received) >= 6, 30)
    time.sleep(0.5)
    listener.loop_stop()
    listener.disconnect()

    assert len(received) == 6
    for sensor, msg in received:
        assert msg["anomaly_model"] == scorer.model_id and msg["model"] == mon.diagnoser.model_id
        assert isinstance(msg["anomaly_score"], float) and msg["anomaly"] is (sensor == "ball_007"), msg
        assert msg["label"] == sensor, msg
    assert status["anomaly_model"] == scorer.model_id and status["anomalies"] == 3


def test_infer_scores_a_recording_beside_the_diagnosis(cwru_dir):
    """`edgesnn infer --anomaly-model`: the healthy recording (48 kHz, resampled) raises no alarm
    in any window, a fault recording alarms in every one."""
    for name, fs, share in (("normal_0_97.mat", "48000", 0.0), ("12k_Drive_End_IR014_0_169.mat", "12000", 1.0)):
        r = run_cli("infer", cwru_dir / name, "--fs", fs, "--anomaly-model", shipped_esvae(), "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["summary"]["anomalous_share"] == share and out["summary"]["anomaly_model"].startswith("esvae")
        assert all(w["anomaly"] == (w["anomaly_score"] > out["summary"]["anomaly_threshold"]) for w in out["windows"])
