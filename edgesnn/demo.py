"""`edgesnn demo`: the product's main job on one machine, with nothing installed but the package.

    publishers (the shipped real CWRU clips, one sensor each, looped in real time)
      -> embedded MQTT broker on loopback
      -> monitor with the default model -> diagnoses and smoothed states
      -> a consumer subscribed the way a plant's SCADA or Node-RED would be, which scores them

The summary compares each sensor's verdict (its smoothed state) with the truth of its clip and
reports the detection latency seen by the consumer: arrival time minus the window's last sample.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np

from edgesnn.embedded_broker import EmbeddedBroker
from edgesnn.errors import EdgesnnError
from edgesnn.monitor import Monitor
from edgesnn.sensors.clips import FS_HZ, load_clips
from edgesnn.sensors.publisher import publish_streams


class Consumer:
    """Subscribes to every sensor's diagnoses and states under `root`, as a plant system would."""

    def __init__(self, broker_url: str, root: str):
        from edgesnn.broker import connect, mqtt_client, parse_broker

        self.root = root
        self.diagnoses: dict[str, list[tuple[str, float]]] = {}  # sensor -> [(label, latency s)]
        self.states: dict[str, str] = {}
        self._subscribed = threading.Event()
        broker = parse_broker(broker_url)
        self.client = mqtt_client(broker)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(f"{root}/#", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        connect(self.client, broker)
        if not self._subscribed.wait(10):
            raise EdgesnnError(f"{broker_url}: no subscription acknowledged within 10 s")

    def _on_message(self, client, userdata, msg):
        arrived = time.time()
        sensor, _, kind = msg.topic[len(self.root) + 1 :].rpartition("/")
        if kind == "diagnosis":
            d = json.loads(msg.payload)
            self.diagnoses.setdefault(sensor, []).append((d["label"], arrived - d["t_end"]))
        elif kind == "state":
            self.states[sensor] = json.loads(msg.payload)["state"]

    def close(self) -> None:
        from edgesnn.broker import disconnect

        disconnect(self.client)


def summarize(truth: dict[str, str], consumer: Consumer) -> list[dict]:
    rows = []
    for sensor, label in truth.items():
        got = consumer.diagnoses.get(sensor, [])
        latency = np.array([lat for _, lat in got]) * 1000
        rows.append({
            "sensor": sensor, "truth": label, "verdict": consumer.states.get(sensor), "windows": len(got),
            "windows_right": sum(l == label for l, _ in got),
            "latency_ms_p50": float(np.percentile(latency, 50)) if got else None,
            "latency_ms_max": float(latency.max()) if got else None,
        })
    return rows


def run_demo(seconds: float = 20.0, root: str = "edgesnn", on_step=None,
             stop: threading.Event | None = None) -> tuple[list[dict], dict]:
    """Run the whole chain for `seconds`; returns (per-sensor rows, the monitor's final status).
    `on_step(monitor)` is called after each monitor step (a dashboard)."""
    clips = load_clips()
    stop = stop or threading.Event()
    failed: list[Exception] = []

    def publish():
        try:
            publish_streams({c.sensor: (c.signal, FS_HZ) for c in clips}, url, root, seconds=seconds, loop=True,
                            stop=stop)
        except Exception as exc:  # noqa: BLE001  (reported by the demo, not lost with the thread)
            failed.append(exc)
            stop.set()

    def step(m):
        if stop.is_set() and (failed or not publisher.is_alive()):
            m.stop()
        if on_step:
            on_step(m)

    with EmbeddedBroker() as url:
        consumer = Consumer(url, root)
        monitor = Monitor(url, root, journal=":memory:")
        try:
            monitor.start()
            if not monitor.subscribed.wait(10):
                raise EdgesnnError(f"{url}: the monitor's subscription was not acknowledged")
            publisher = threading.Thread(target=publish, name="publishers")
            publisher.start()
            final = monitor.run(duration_s=seconds + 1.0, on_step=step)  # +1 s: the last frames' windows
            stop.set()
            publisher.join(10)
            time.sleep(0.2)  # the last diagnoses reach the consumer
        finally:
            if not monitor.stop_event.is_set():
                monitor.close()
            consumer.close()
    if failed:
        raise EdgesnnError(f"demo publishers failed: {failed[0]}")
    return summarize({c.sensor: c.label for c in clips}, consumer), final
