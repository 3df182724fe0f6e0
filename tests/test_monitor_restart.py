"""Store and forward across a broker restart: no diagnosis or state change is lost.

The test runs its own Mosquitto on a free loopback port so it can stop and start it.
"""

import json
import time
import uuid
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from conftest import MOSQUITTO, free_port, start_mosquitto, wait_for
from edgesnn.monitor import Monitor
from edgesnn.payloads import encode_waveform
from edgesnn.sensors import cwru
from edgesnn.split import region

@pytest.fixture
def clips(cwru_dir):
    recs = {r.entry.label(): r.signal for r in cwru.load(cwru_dir, loads=[0], sizes=[0.014])}
    return {k: region(v, "test")[: 8 * 2048] for k, v in recs.items() if k in ("normal", "outer_race_014")}


def frames(x, seq0=0, t0=1_763_800_000.0, n=2048):
    return [encode_waveform(seq0 + i, t0 + i * n / 12000, 12000, x[i * n : (i + 1) * n]) for i in range(len(x) // n)]


@pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="no mosquitto binary to run a private broker")
def test_nothing_is_lost_across_a_broker_restart(tmp_path, clips):
    port = free_port()
    broker = start_mosquitto(port, tmp_path)
    root = f"edgesnn-restart-{uuid.uuid4().hex[:8]}"
    mon = Monitor(f"mqtt://127.0.0.1:{port}", root, journal=tmp_path / "journal.sqlite")
    mon.client.reconnect_delay_set(min_delay=1, max_delay=2)
    try:
        mon.start()
        assert wait_for(mon.client.is_connected, 10)
        # A machine runs normally, with the broker up: diagnoses go out at once.
        mon.process([(f"{root}/m1/waveform", p) for p in frames(clips["normal"])])
        assert wait_for(lambda: (mon.forward(), mon.journal.count_unsent())[1] == 0, 10)

        # The broker goes away; meanwhile the machine develops a fault and the monitor diagnoses
        # frames it already holds. Nothing can be published: it must wait in the journal.
        broker.terminate()
        broker.wait(10)
        assert wait_for(lambda: not mon.client.is_connected(), 10)
        t0 = 1_763_800_000.0 + 8 * 2048 / 12000
        mon.process([(f"{root}/m1/waveform", p) for p in frames(clips["outer_race_014"], seq0=8, t0=t0)])
        offline = mon.journal.count_unsent()
        assert offline == 8 + 1  # 8 diagnoses and the state change to outer_race_014
        assert mon.health["m1"].label == "outer_race_014"

        # The broker comes back; a listener subscribes; the monitor reconnects and forwards.
        broker = start_mosquitto(port, tmp_path)
        got, state = [], {}
        listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

        def on_message(c, u, msg):
            if msg.topic.endswith("/diagnosis"):
                got.append(json.loads(msg.payload))
            elif msg.topic.endswith("/state"):
                state.update(json.loads(msg.payload))

        listener.on_message = on_message
        listener.connect("127.0.0.1", port)
        listener.subscribe(f"{root}/#", qos=1)
        listener.loop_start()
        time.sleep(0.3)
        assert wait_for(lambda: mon.journal.count_unsent() == 0 and len(got) >= 8, 30, step=lambda: mon.step(0.1))
        time.sleep(0.5)
        listener.loop_stop()
        listener.disconnect()
        outage = [d for d in got if d["t_end"] > t0]
        assert len(outage) == 8 and sum(d["label"] == "outer_race_014" for d in outage) >= 7
        assert sorted(d["t_end"] for d in outage) == [d["t_end"] for d in outage]  # in order
        assert state["state"] == "outer_race_014"
        assert mon.status()["reconnects"] >= 1 and mon.counters["forwarded"] >= offline
    finally:
        mon.close()
        broker.terminate()
        broker.wait(10)


@pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="no mosquitto binary to run a private broker")
def test_replay_says_so_when_the_broker_never_acknowledges_its_last_frames(tmp_path, monkeypatch):
    import signal
    import threading

    from edgesnn.errors import EdgesnnError
    from edgesnn.sensors import publisher

    port = free_port()
    broker = start_mosquitto(port, tmp_path)
    monkeypatch.setattr(publisher, "ACK_TIMEOUT_S", 1.0)
    # the broker freezes (SIGSTOP) while frames are on their way: exit with an error, not "sent"
    threading.Timer(0.3, lambda: broker.send_signal(signal.SIGSTOP)).start()
    try:
        with pytest.raises(EdgesnnError, match="did not acknowledge"):
            publisher.publish_streams({"s": (np.ones(12_000, np.float32), 12_000.0)}, f"mqtt://127.0.0.1:{port}",
                                      "edgesnn-ack", frame_ms=100, speed=1.0)
    finally:
        broker.send_signal(signal.SIGCONT)
        broker.terminate()
        broker.wait(10)


def test_replay_refuses_frames_no_monitor_would_take():
    from edgesnn.errors import EdgesnnError
    from edgesnn.sensors.publisher import publish_streams

    signal_ = {"s": (np.ones(600_000, np.float32), 12_000.0)}
    with pytest.raises(EdgesnnError, match="larger than a monitor takes"):
        publish_streams(signal_, "mqtt://127.0.0.1:1", frame_ms=30_000)  # refused before any connection
    with pytest.raises(EdgesnnError, match="positive duration"):
        publish_streams(signal_, "mqtt://127.0.0.1:1", seconds=0)
