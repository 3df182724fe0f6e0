"""The monitor against a real MQTT broker, on real CWRU clips (CONTRACTS section 3)."""

import json
import time
import uuid

import numpy as np

from conftest import free_port, mqtt_listener, run_cli, running_monitor, wait_for
from edgesnn.monitor import Monitor
from edgesnn.payloads import encode_waveform
from edgesnn.sensors import cwru
from edgesnn.split import region


def test_monitor_diagnoses_real_clips_and_counts_bad_frames(broker, cwru_dir):
    root = f"edgesnn-test-{uuid.uuid4().hex[:8]}"
    clips = {}
    for rec in cwru.load(cwru_dir, loads=[1]):
        if rec.entry.file.startswith(("12k_Drive_End_OR014", "12k_Drive_End_IR021", "normal")):
            clips[rec.entry.label()] = region(rec.signal, "test")[: 6 * 2048]
    assert set(clips) == {"normal", "outer_race_014", "inner_race_021"}
    diagnosed = list(clips)
    clips["dead"] = np.full(6 * 2048, 0.012, dtype=np.float32)  # a disconnected sensor: a constant

    received, states, status = [], {}, {}

    def on_message(client, userdata, msg):
        if msg.topic.endswith("/diagnosis"):
            received.append((msg.topic.split("/")[1], json.loads(msg.payload)))
        elif msg.topic.endswith("/state"):
            states[msg.topic.split("/")[1]] = json.loads(msg.payload)
        elif msg.topic.endswith("/_monitor/status"):
            status.update(json.loads(msg.payload))

    listener = mqtt_listener(broker, f"{root}/#", on_message)

    mon = Monitor(broker, root)
    with running_monitor(broker, mon) as pub:
        t0 = 1_763_800_000.0
        # frames of 1000 samples: windows span frames; one bad frame per sensor between good ones
        for seq in range(12):
            for label, x in clips.items():
                chunk = x[seq * 1000 : (seq + 1) * 1000]
                pub.publish(f"{root}/{label}/waveform", encode_waveform(seq, t0 + seq * 1000 / 12000, 12000, chunk), qos=1)
            if seq == 5:
                pub.publish(f"{root}/normal/waveform", b"{not json", qos=1)
                pub.publish(f"{root}/outer_race_014/waveform", json.dumps({"v": 1}), qos=1)
                # each refused with its reason, the stream of the others going on
                pub.publish(f"{root}/_x/waveform", encode_waveform(0, t0, 12000, chunk), qos=1)
                pub.publish(f"{root}/a//waveform", encode_waveform(0, t0, 12000, chunk), qos=1)
                pub.publish(f"{root}/big/waveform", b" " * (5 << 20), qos=1)  # beyond the inbox's share
                pub.publish(f"{root}/slow/waveform", encode_waveform(0, t0, 1000, np.ones(11_000, np.float32)), qos=1)
                pub.publish(f"{root}/late/waveform", b'{"v": 1, "seq": 0, "t0": 1' + b"0" * 400
                            + b', "fs": 12000, "dtype": "float32", "data": ""}', qos=1)
        wait_for(lambda: len(received) >= 3 * 5, 30)
    time.sleep(0.5)
    listener.loop_stop()
    listener.disconnect()

    by_sensor = {}
    for sensor, msg in received:
        by_sensor.setdefault(sensor, []).append(msg)
        assert msg["model"] == mon.diagnoser.model_id and "t_end" in msg
    # 12000 samples per sensor in 1000-sample frames: 5 windows of 2048 each
    assert {s: len(m) for s, m in by_sensor.items()} == {label: 5 for label in diagnosed}
    for label, msgs in by_sensor.items():
        assert sum(m["label"] == label for m in msgs) >= 4, (label, [m["label"] for m in msgs])
        assert states[label]["state"] == label
    # the dead sensor gets no diagnosis, and its state says why
    assert states["dead"]["state"] == "no_signal" and status["no_signal_windows"] == 5
    assert status["rejected"] == {"not_json": 1, "missing_key": 1, "bad_topic": 2, "oversized": 2, "bad_t0": 1}
    assert status["windows"] == 20 and status["dropped"] == 0 and status["online"] is False


def test_a_root_with_a_leading_slash_is_the_topic_it_names(broker):
    """In MQTT /plant and plant are different topics: with --root /plant a sensor publishing
    under /plant is heard and diagnosed under /plant, as the monitor's banner says."""
    root = f"/edgesnn-test-{uuid.uuid4().hex[:8]}"
    received = []
    listener = mqtt_listener(broker, f"{root}/#", lambda c, u, msg: received.append(msg.topic))
    mon = Monitor(broker, root)
    assert mon.root == root
    x = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    with running_monitor(broker, mon) as pub:
        pub.publish(f"{root}/pump1/waveform", encode_waveform(0, time.time(), 12000, x), qos=1)
        wait_for(lambda: f"{root}/pump1/diagnosis" in received, 20)
    listener.loop_stop()
    listener.disconnect()
    assert received.count(f"{root}/pump1/diagnosis") == 2, received


def rejected_beside_a_diagnosed_sensor(broker, reason: str, bad: tuple[float, float, np.ndarray],
                                       good: tuple[float, float, np.ndarray]) -> None:
    """Two sensors, one frame each, (t0, fs, samples): the bad one is rejected for `reason` and
    counted, and never diagnosed; the good one is diagnosed."""
    root = f"edgesnn-test-{uuid.uuid4().hex[:8]}"
    received = []
    listener = mqtt_listener(broker, f"{root}/#", lambda c, u, msg: received.append(msg.topic))
    mon = Monitor(broker, root, journal=":memory:")
    with running_monitor(broker, mon) as pub:
        pub.publish(f"{root}/bad/waveform", encode_waveform(0, *bad), qos=1)
        pub.publish(f"{root}/good/waveform", encode_waveform(0, *good), qos=1)
        wait_for(lambda: f"{root}/good/diagnosis" in received and mon.rejected[reason], 20)
    listener.loop_stop()
    listener.disconnect()
    assert dict(mon.rejected) == {reason: 1}
    assert f"{root}/good/diagnosis" in received and f"{root}/bad/diagnosis" not in received


def test_a_t0_that_is_no_unix_time_is_rejected_and_counted(broker):
    """t0 = -1e300 is finite but no time of a sample: rejected as bad_t0, while a sensor whose
    clock counts from 0 at boot is diagnosed."""
    x = np.random.default_rng(0).standard_normal(2048).astype(np.float32)
    rejected_beside_a_diagnosed_sensor(broker, "bad_t0", (-1e300, 12000, x), (0.0, 12000, x))


def test_a_sensor_sampled_below_the_models_rate_is_rejected_and_counted(broker):
    """Upsampling cannot restore the band above a slow sensor's Nyquist frequency, which the model
    diagnoses from: its frames are refused (fs_below_model), while a faster sensor is resampled
    down and diagnosed."""
    rng = np.random.default_rng(0)
    rejected_beside_a_diagnosed_sensor(broker, "fs_below_model",
                                       (time.time(), 8000, rng.standard_normal(4096).astype(np.float32)),
                                       (time.time(), 48000, rng.standard_normal(8192).astype(np.float32)))


def test_a_batch_that_inference_fails_on_is_counted_and_the_monitor_goes_on(broker):
    root = f"edgesnn-test-{uuid.uuid4().hex[:8]}"
    received = []
    listener = mqtt_listener(broker, f"{root}/#", lambda c, u, msg: received.append(msg.topic))
    mon = Monitor(broker, root, journal=":memory:")
    working = mon.diagnoser.probabilities
    failures = [RuntimeError("onnxruntime: out of memory")]  # the first batch fails, as a runtime error would

    def flaky(windows):
        if failures:
            raise failures.pop()
        return working(windows)

    mon.diagnoser.probabilities = flaky
    x = np.random.default_rng(0).standard_normal(2048).astype(np.float32)
    with running_monitor(broker, mon) as pub:
        pub.publish(f"{root}/first/waveform", encode_waveform(0, time.time(), 12000, x), qos=1)
        wait_for(lambda: mon.counters["failed_windows"] == 1, 20)
        pub.publish(f"{root}/second/waveform", encode_waveform(0, time.time(), 12000, x), qos=1)
        wait_for(lambda: f"{root}/second/diagnosis" in received, 20)
    listener.loop_stop()
    listener.disconnect()
    assert mon.last_status["failed_windows"] == 1 and f"{root}/first/diagnosis" not in received
    assert f"{root}/second/diagnosis" in received


def test_replay_stopped_by_ctrl_c_says_what_it_sent_and_a_short_recording_says_it_ended(broker, tmp_path):
    """Ctrl-C used to end `sensors replay` with no word of what had gone out, and --seconds past
    the end of a recording sent less than asked without saying so."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = f"edgesnn-test-{uuid.uuid4().hex[:8]}"
    np.save(tmp_path / "short.npy", np.random.default_rng(0).standard_normal(12_000 * 2).astype(np.float32))
    frames = []
    listener = mqtt_listener(broker, f"{root}/#", lambda c, u, msg: frames.append(msg.topic))
    exe = Path(sys.executable).with_name("edgesnn")
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        frames.clear()
        # a frame every second (0.1 x real time): the stop must cut the wait short and send nothing more
        proc = subprocess.Popen([str(exe), "sensors", "replay", str(tmp_path / "short.npy"), "--fs", "12000",
                                 "--broker", broker, "--root", root, "--speed", "0.1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: len(frames) >= 2, 60)
        proc.send_signal(sig)
        seen = len(frames)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == code and stdout.startswith("stopped: sent ") and not stderr, (proc.returncode, stdout, stderr)
        sent = int(stdout.split()[2])
        time.sleep(0.5)  # anything sent after the signal would have arrived by now
        assert sent == seen == len(frames), (sent, seen, len(frames))  # none lost, none after the stop
    r = run_cli("sensors", "replay", tmp_path / "short.npy", "--fs", "12000", "--broker", broker, "--root", root,
                "--speed", "0", "--seconds", "5")
    assert r.returncode == 0 and "sent 20 frames" in r.stdout, r.stdout + r.stderr
    assert "--seconds 5: the longest recording holds 2.0 s, all of it sent" in r.stdout
    listener.loop_stop()
    listener.disconnect()


def test_replay_streams_a_recording_frame_by_frame(broker, cwru_dir):
    from edgesnn.payloads import decode_waveform
    from edgesnn.sensors.publisher import publish_streams, recording_streams, sensor_id

    root = f"edgesnn-test-{uuid.uuid4().hex[:8]}"
    path = cwru_dir / "12k_Drive_End_B007_0_118.mat"
    frames = []
    listener = mqtt_listener(broker, f"{root}/#", lambda c, u, msg: frames.append((msg.topic, decode_waveform(msg.payload))))
    assert publish_streams(recording_streams([path], 12000), broker, root, frame_ms=100, speed=0, seconds=1.0) == 10
    deadline = time.time() + 10
    while len(frames) < 10 and time.time() < deadline:
        time.sleep(0.05)
    listener.loop_stop()
    listener.disconnect()
    assert {t for t, _ in frames} == {f"{root}/{sensor_id(path)}/waveform"}
    assert [f.seq for _, f in frames] == list(range(10))
    x = cwru.read_entry(cwru_dir, next(e for e in cwru.read_manifest(cwru_dir) if e.file == path.name)).signal
    np.testing.assert_array_equal(np.concatenate([f.samples for _, f in frames]), x[:12000])
    assert all(abs(b.t0 - a.t0 - 0.1) < 1e-6 for (_, a), (_, b) in zip(frames, frames[1:]))


def test_prometheus_metrics_of_a_live_monitor(broker):
    import urllib.request

    from edgesnn import metrics

    port = free_port()
    mon = Monitor(broker, f"edgesnn-test-{uuid.uuid4().hex[:8]}", journal=":memory:")
    mon.start()
    server = metrics.serve(port, lambda: mon.last_status)
    try:
        x = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
        mon.process([(f"{mon.root}/pump1/waveform", encode_waveform(0, 1.0e9, 12000, x)),
                     (f"{mon.root}/pump1/waveform", b"nonsense")])
        mon.step(0.01)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        mon.close()
    assert "edgesnn_frames_total 2" in text and "edgesnn_windows_total 2" in text
    assert 'edgesnn_rejected_total{reason="not_json"} 1' in text
    assert f'edgesnn_model_info{{model="{mon.diagnoser.model_id}"}} 1' in text
