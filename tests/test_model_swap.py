"""A running monitor picks up a newer model from a watched folder, verified before the swap."""

import hashlib
import json
import shutil
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from conftest import mqtt_listener, wait_for
from edgesnn.broker import parse_broker
from edgesnn.card import default_card_path
from edgesnn.errors import EdgesnnError
from edgesnn.model_watch import ModelWatcher
from edgesnn.monitor import Monitor
from edgesnn.payloads import encode_waveform
from edgesnn.runtime import Diagnoser
from edgesnn.sensors import cwru
from edgesnn.split import region


def drop_model(folder, name, corrupt=False, classes=None):
    """Publish a copy of the shipped default model into `folder` as `name` (ONNX first, card last)."""
    src = default_card_path()
    card = json.loads(src.read_text())
    onnx = folder / f"{name}.onnx"
    shutil.copy(src.parent / card["onnx"], onnx)
    if corrupt:
        with open(onnx, "r+b") as f:
            f.seek(100)
            f.write(b"\x00\x01\x02\x03")
    card.update(name=name, onnx=onnx.name, default=False)
    if classes:
        card["classes"] = classes
    time.sleep(0.02)  # distinct modification times
    (folder / f"{name}.json").write_text(json.dumps(card))
    return folder / f"{name}.json"


def test_watcher_takes_the_newest_verified_model_and_counts_refusals(tmp_path):
    current = Diagnoser()
    watcher = ModelWatcher(tmp_path, current)
    assert watcher.poll() is None  # nothing new
    (tmp_path / "history.json").write_text("{}")  # not a model card: ignored, not a refusal
    drop_model(tmp_path, "fleet-r1")
    drop_model(tmp_path, "fleet-r2-corrupt", corrupt=True)  # newest, but its sha256 fails
    new = watcher.poll()
    assert new is not None and new.model_id.startswith("fleet-r1@")
    assert watcher.rejected == 1 and watcher.swaps == 1
    assert watcher.poll() is None  # nothing tried twice
    card = json.loads((tmp_path / "fleet-r1.json").read_text())
    card["metrics"] = {"test_accuracy": 1.0}  # the exporter rewrites a card once it has measured
    time.sleep(0.02)
    (tmp_path / "fleet-r1.json").write_text(json.dumps(card))
    assert watcher.poll() is None and watcher.swaps == 1  # same model: not a swap
    renamed = list(reversed(current.classes))
    drop_model(tmp_path, "fleet-r3-other-classes", classes=renamed)
    assert watcher.poll() is None and watcher.rejected == 2
    drop_model(tmp_path, "fleet-r4-five-classes", classes=current.classes[:5])  # graph has 10 outputs
    time.sleep(0.02)
    (tmp_path / "fleet-r5-junk.json").write_text(json.dumps({"format": "edgesnn-model-card/1", "onnx": None}))
    assert watcher.poll() is None and watcher.rejected == 4  # refused, counted, and no exception
    time.sleep(0.02)
    (tmp_path / "fleet-r6-cut-short.json").write_text(json.dumps(card)[:40])  # not JSON: counted too
    assert watcher.poll() is None and watcher.rejected == 5
    assert watcher.poll() is None and watcher.rejected == 5  # and not tried again until it changes


def test_a_model_that_takes_one_window_at_a_time_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    card_path = drop_model(tmp_path, "fixed-batch")
    graph = onnx.load(tmp_path / "fixed-batch.onnx")
    graph.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # the monitor batches sensors
    onnx.save(graph, tmp_path / "fixed-batch.onnx")
    card = json.loads(card_path.read_text())
    card["onnx_sha256"] = hashlib.sha256((tmp_path / "fixed-batch.onnx").read_bytes()).hexdigest()
    card_path.write_text(json.dumps(card))
    with pytest.raises(EdgesnnError, match="fixed batch of 1"):
        Diagnoser(card_path)
    watcher = ModelWatcher(tmp_path, Diagnoser())
    assert watcher.poll() is None and watcher.rejected == 1


def test_running_monitor_swaps_models_between_batches(broker, cwru_dir, tmp_path):
    root = f"edgesnn-test-{uuid.uuid4().hex[:8]}"
    rec = next(r for r in cwru.load(cwru_dir, loads=[1]) if r.entry.file.startswith("12k_Drive_End_OR014"))
    clip = region(rec.signal, "test")
    received, status = [], {}

    def on_message(client, userdata, msg):
        if msg.topic.endswith("/diagnosis"):
            received.append(json.loads(msg.payload))
        elif msg.topic.endswith("/_monitor/status"):
            status.update(json.loads(msg.payload))

    listener = mqtt_listener(broker, f"{root}/#", on_message)
    models = tmp_path / "models"
    models.mkdir()
    mon = Monitor(broker, root, model_dir=models)
    first = mon.diagnoser.model_id
    worker = threading.Thread(target=mon.run, kwargs={"duration_s": 60})
    worker.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    try:
        assert mon.subscribed.wait(10)
        pub.connect(parse_broker(broker).host, parse_broker(broker).port)
        pub.loop_start()
        t0, seq = 1_763_800_000.0, 0

        def send(windows):
            nonlocal seq
            for _ in range(windows):
                x = clip[seq * 2048 : (seq + 1) * 2048]
                pub.publish(f"{root}/pump1/waveform", encode_waveform(seq, t0 + seq * 2048 / 12000, 12000, x), qos=1)
                seq += 1

        send(3)
        assert wait_for(lambda: len(received) >= 3, 20)
        drop_model(models, "mra-snn-fleet-r7")
        assert wait_for(lambda: mon.diagnoser.model_id.startswith("mra-snn-fleet-r7@"), 20)
        send(3)
        assert wait_for(lambda: len(received) >= 6, 20)
    finally:
        pub.loop_stop()
        pub.disconnect()
        mon.stop()
        worker.join(30)
    assert wait_for(lambda: status.get("online") is False, 10)
    listener.loop_stop()
    listener.disconnect()
    models_seen = [m["model"] for m in received]
    assert models_seen[:3] == [first] * 3
    assert all(m.startswith("mra-snn-fleet-r7@") for m in models_seen[3:])
    assert [m["label"] for m in received].count("outer_race_014") >= 5
    assert status["model"].startswith("mra-snn-fleet-r7@") and status["model_swaps"] == 1
    assert status["models_rejected"] == 0
