"""The MQTT streaming monitor: waveforms of many sensors in, diagnoses and health states out.

acquire (MQTT callback -> bounded inbox) -> prepare (decode, per-sensor windows) -> infer
(onnxruntime batches over every sensor's ready windows) -> assess health -> publish. Topics and
payloads are those of CONTRACTS section 3. Bad payloads are counted by reason and never stop
the loop or touch other sensors.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edgesnn.anomaly import AnomalyScorer
from edgesnn.broker import check_root, connect, disconnect, mqtt_client, parse_broker
from edgesnn.errors import EdgesnnError
from edgesnn.health import HealthState
from edgesnn.inbox import Inbox
from edgesnn.journal import Journal
from edgesnn.model_watch import ModelWatcher
from edgesnn.payloads import MAX_FRAME_S, MAX_PAYLOAD_BYTES, Rejected, decode_waveform, encode_diagnosis
from edgesnn.runtime import MAX_BATCH, Diagnoser
from edgesnn.signal import MAX_WINDOWS_PER_WINDOW, NO_SIGNAL, flat, too_slow
from edgesnn.windowing import MAX_JITTER_S, SensorWindower

log = logging.getLogger("edgesnn.monitor")
STATUS_EVERY_S = 2.0
# Diagnoses and states paho may hold beyond those in flight; past it publish() refuses and the
# row waits in the journal (on disk) instead of in memory.
OUTGOING_LIMIT = 10_000
IDLE_SWEEP_S = 10.0
MODEL_CHECK_S = 2.0  # how often a watched model folder is looked at


class Monitor:
    def __init__(self, broker: str, root: str = "edgesnn", diagnoser: Diagnoser | None = None,
                 hop: int | None = None, client_id: str | None = None, journal: str | Path = ":memory:",
                 inbox: Inbox | None = None, max_sensors: int = 2000, idle_s: float = 600.0,
                 model_dir: str | Path | None = None, anomaly: AnomalyScorer | None = None,
                 max_jitter_s: float = MAX_JITTER_S, **tls_and_auth):
        """`inbox` bounds the frames waiting for the worker (see Inbox); at most `max_sensors`
        sensors are tracked, and one silent for `idle_s` is forgotten (its windows, its state).
        `model_dir`: a folder watched for newer models (ModelWatcher), swapped in between batches.
        `anomaly`: an anomaly model run on the same windows; its score and alarm join each diagnosis.
        `max_jitter_s`: how far a frame's t0 may be off where its sensor's last frame ended before
        it counts as a gap in time (SensorWindower).
        `tls_and_auth`: ca_file, cert_file, key_file, username, password (see mqtt_client)."""
        self.broker = parse_broker(broker)
        self.root = check_root(root)
        self.diagnoser = diagnoser or Diagnoser()
        self.hop = hop or self.diagnoser.window
        self.max_jitter_s = max_jitter_s
        self.anomaly = anomaly
        if anomaly:
            anomaly.check_matches(self.diagnoser.window, self.diagnoser.sample_rate_hz,
                                  f"the classifier {self.diagnoser.model_id}")
        if self.hop < self.diagnoser.window // MAX_WINDOWS_PER_WINDOW:
            # bounds the windows (and memory) one frame can produce: a 1 MiB frame at most ~2000
            raise EdgesnnError(f"hop {self.hop} is below {self.diagnoser.window // MAX_WINDOWS_PER_WINDOW} "
                               f"samples: at most {MAX_WINDOWS_PER_WINDOW} diagnoses per window length")
        self.watcher = ModelWatcher(Path(model_dir), self.diagnoser) if model_dir else None
        self._next_model_check = 0.0
        self.windowers: dict[str, SensorWindower] = {}
        self.health: dict[str, HealthState] = {}
        self.counters = Counter()
        self.rejected = Counter()
        self.inbox = inbox or Inbox()
        self.max_sensors, self.idle_s = max_sensors, idle_s
        self._heard: dict[str, float] = {}  # sensor -> monotonic time of its last frame
        self._next_sweep = time.monotonic() + IDLE_SWEEP_S
        self.stop_event = threading.Event()
        self.journal = Journal(journal)
        self._inflight: dict[int, int] = {}  # MQTT message id -> journal row, awaiting PUBACK
        self._acked: queue.SimpleQueue = queue.SimpleQueue()  # journal rows the broker acknowledged
        self._lock = threading.Lock()
        self._early: set[int] = set()  # message ids paho reported before _register saw them
        self._unjournaled: set[int] = set()  # message ids of status publishes
        self._next_status = 0.0
        self._started = False
        self._last_log: dict[str, float] = {}  # rejection reason -> time of its last log line
        self._oversized = 0  # payloads over MAX_PAYLOAD_BYTES, refused by _on_message
        self.latest: dict[str, dict] = {}  # sensor -> its last diagnosis, for dashboards
        self.last_status: dict = {}
        self.client = mqtt_client(self.broker, client_id or "", **tls_and_auth)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.subscribed = threading.Event()  # set once the broker has granted the subscription
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_queued_messages_set(OUTGOING_LIMIT)
        self.client.will_set(f"{self.root}/_monitor/status", json.dumps({"v": 1, "online": False}), retain=True)

    # acquire ---------------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self.counters["connects"] += 1
        log.info("connected to %s", self.broker)
        client.subscribe(f"{self.root}/#", qos=0)  # resubscribes after every reconnect

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            if mid in self._unjournaled:  # a status message: nothing to mark
                self._unjournaled.discard(mid)
                return
            row = self._inflight.pop(mid, None)
            if row is None:
                self._early.add(mid)  # reported before _register saw its id
        if row is not None:
            self._acked.put(row)

    def _register(self, mid: int, row: int | None) -> None:
        """Pair a publish's message id with its journal row (None: a status, not journaled).

        Never call into paho while holding our lock: paho holds its own lock when it calls
        on_publish, which takes ours (lock-order inversion = deadlock). So a publish that paho
        reports before we get here is parked in _early and settled here. Every id is registered,
        status ones included, so that a parked id cannot be mistaken for a later publish that
        reuses it after paho's ids wrap around."""
        with self._lock:
            if mid in self._early:
                self._early.discard(mid)
                if row is not None:
                    self._acked.put(row)
            elif row is None:
                self._unjournaled.add(mid)
            else:
                self._unjournaled.discard(mid)  # a stale status id (its publish was lost)
                self._inflight[mid] = row

    def _on_message(self, client, userdata, msg):
        if not msg.topic.endswith("/waveform"):
            return  # our own diagnoses, states and status come back on the same wildcard
        if len(msg.payload) > MAX_PAYLOAD_BYTES:  # refused here, before it takes room in the inbox
            with self._lock:
                self._oversized += 1
            self._warn("oversized", f"rejected frame on {msg.topic}: oversized: {len(msg.payload)} bytes > "
                                    f"{MAX_PAYLOAD_BYTES}")
            return
        self.inbox.put(msg.topic, msg.payload)  # refusals are counted by the inbox

    def _may_log(self, reason: str) -> bool:
        """At most one log line per rejection reason and second: a flood of bad frames must not
        flood the log."""
        now = time.monotonic()
        if now - self._last_log.get(reason, -1.0) < 1.0:
            return False
        self._last_log[reason] = now
        return True

    def _warn(self, reason: str, message: str) -> None:
        if self._may_log(reason):
            log.warning("%s", message)

    # prepare, infer, assess, publish -----------------------------------------------------------
    def _sensor_of(self, topic: str) -> str | None:
        sensor = topic[len(self.root) + 1 : -len("/waveform")]
        levels = sensor.split("/")  # one or more topic levels, none empty (a//b), none ours (_monitor)
        return sensor if topic.startswith(self.root + "/") and all(levels) and not sensor.startswith("_") else None

    def process(self, items: list[tuple[str, bytes]]) -> int:
        """Decode and window frames; diagnose the ready windows of all sensors in batches of at
        most MAX_BATCH (memory stays bounded however many frames a step takes: the inbox bounds
        each frame and the smallest hop bounds the windows one frame makes); publish."""
        ready: list[tuple[str, np.ndarray, float]] = []
        done = 0
        for topic, payload in items:
            try:
                ready += self._windows_of(topic, payload)
            except Exception as exc:  # a frame no check foresaw: counted, and the others go on
                self.rejected["unreadable"] += 1
                if self._may_log("unreadable"):
                    log.exception("frame on %s could not be read (%s); counted as unreadable", topic, exc)
            if len(ready) >= MAX_BATCH:
                done += self._diagnose(ready)
                ready = []
        done += self._diagnose(ready)
        self.journal.commit()
        return done

    def _windows_of(self, topic: str, payload: bytes) -> list[tuple[str, np.ndarray, float]]:
        """One frame -> the windows of its sensor that it completes ([] if rejected)."""
        self.counters["frames"] += 1
        sensor = self._sensor_of(topic)
        if sensor is None:
            return self._reject(topic, "bad_topic", "not <root>/<sensor>/waveform with a sensor id")
        try:
            frame = decode_waveform(payload)
        except Rejected as exc:
            return self._reject(topic, exc.reason, str(exc).split(": ", 1)[1])
        if len(frame.samples) / frame.fs > MAX_FRAME_S:
            return self._reject(topic, "oversized", f"{len(frame.samples) / frame.fs:.1f} s of signal in one "
                                                    f"frame; at most {MAX_FRAME_S:g} s")
        if why := too_slow(frame.fs, self.diagnoser.sample_rate_hz):
            return self._reject(topic, "fs_below_model", why)
        windower = self.windowers.get(sensor)
        if windower is None:
            if len(self.windowers) >= self.max_sensors:
                return self._reject(topic, "too_many_sensors", f"{self.max_sensors} sensors tracked already "
                                                               "(--max-sensors)")
            windower = self.windowers[sensor] = SensorWindower(
                self.diagnoser.sample_rate_hz, self.diagnoser.window, self.hop, self.max_jitter_s)
        self._heard[sensor] = time.monotonic()
        time_gaps = windower.time_gaps
        windows = windower.push(frame)
        # A gap in time drops the samples waiting for the window while seq says nothing is
        # missing: say so. (A gap in seq the sender made itself, as replay --loop does at each lap,
        # and the monitor's own drops are counted in dropped_by_reason.)
        if windower.time_gaps > time_gaps:
            self._warn("time_gap", f"{sensor}: {windower.restart_reason}; its window restarts "
                                   f"({windower.time_gaps} gaps in time of this sensor so far)")
        return [(sensor, w, t_end) for w, t_end in windows]

    def _reject(self, topic: str, reason: str, detail: str) -> list:
        self.rejected[reason] += 1
        self._warn(reason, f"rejected frame on {topic}: {reason}: {detail} ({self.rejected[reason]} so far)")
        return []

    def _diagnose(self, ready: list[tuple[str, np.ndarray, float]]) -> int:
        """One onnxruntime batch; a diagnosis per window, a state when a sensor's health changes."""
        if not ready:
            return 0
        windows = np.stack([w for _, w, _ in ready])
        quiet = flat(windows)
        self.counters["windows"] += len(ready)
        for (sensor, _, t_end), q in zip(ready, quiet):
            if q:
                self._no_signal(sensor, t_end)
        ready, windows = [r for r, q in zip(ready, quiet) if not q], windows[~quiet]
        if not ready:
            return len(quiet)
        try:
            probs = self.diagnoser.probabilities(windows)
            scores = self.anomaly.scores(windows) if self.anomaly else [None] * len(ready)
        except Exception as exc:  # onnxruntime failed on this batch: counted, and the other sensors go on
            self.counters["failed_windows"] += len(ready)
            if self._may_log("inference"):
                log.exception("inference failed on %d windows (%s); counted as failed_windows", len(ready), exc)
            return len(quiet)
        for (sensor, _, t_end), p, score in zip(ready, probs, scores):
            if not np.all(np.isfinite(p)):  # no diagnosis is better than a NaN one
                self.counters["non_finite_outputs"] += 1
                self._warn("non_finite_output", f"{sensor}: the model gave non-finite probabilities; "
                                                "window not diagnosed")
                continue
            extra = None if score is None else {
                "anomaly_score": round(float(score), 6), "anomaly": bool(score > self.anomaly.threshold),
                "anomaly_model": self.anomaly.model_id}
            payload = encode_diagnosis(t_end, p, self.diagnoser.classes, self.diagnoser.model_id, extra)
            self.counters["anomalies"] += bool(extra and extra["anomaly"])
            self._send(f"{self.root}/{sensor}/diagnosis", payload, retain=False)
            label = self.diagnoser.classes[int(p.argmax())]
            self.latest[sensor] = {"label": label, "confidence": float(p.max()), "t_end": t_end,
                                   "latency_s": time.time() - t_end, **(extra or {})}
            self._assess(sensor, label, t_end)
        return len(quiet)

    def _no_signal(self, sensor: str, t_end: float) -> None:
        """A window with no vibration: no diagnosis (it would be noise), counted, and a vote for
        the sensor's state `no_signal`, so a dead sensor shows as one, not as a fault."""
        self.counters["no_signal_windows"] += 1
        self.latest[sensor] = {"label": NO_SIGNAL, "confidence": 0.0, "t_end": t_end,
                               "latency_s": time.time() - t_end}
        self._assess(sensor, NO_SIGNAL, t_end)

    def _assess(self, sensor: str, label: str, t_end: float) -> None:
        state = self.health.setdefault(sensor, HealthState())
        if state.update(label):
            log.info("%s: state %s", sensor, state.label)
            self._send(f"{self.root}/{sensor}/state", json.dumps(
                {"v": 1, "state": state.label, "since": t_end, "model": self.diagnoser.model_id}).encode(),
                retain=True)

    # store and forward ------------------------------------------------------------------------
    def _publish_row(self, row: int, topic: str, payload: bytes, retain: bool) -> bool:
        if not self.client.is_connected():
            return False
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != 0:
            return False
        self._register(info.mid, row)
        return True

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        """Journal first, then publish; with the broker away the row waits for forward()."""
        row = self.journal.add(topic, payload, retain)
        if not self._publish_row(row, topic, payload, retain):
            self.counters["journaled_offline"] += 1

    def forward(self) -> int:
        """Record acknowledgements; publish journaled rows not yet sent (after a reconnect)."""
        # Snapshot in-flight rows before draining acknowledgements: a PUBACK landing in between
        # is then either drained or still excluded, never resent as a duplicate.
        with self._lock:
            inflight = set(self._inflight.values())
        acked = []
        while not self._acked.empty():
            acked.append(self._acked.get())
        self.journal.mark_sent(acked)
        sent = 0
        if self.client.is_connected():
            for row, topic, payload, retain in self.journal.unsent(exclude=inflight):
                if not self._publish_row(row, topic, payload, retain):
                    break
                sent += 1
        self.journal.commit()
        self.counters["forwarded"] += sent
        return sent

    def forget_idle(self) -> int:
        """Forget sensors silent for `idle_s`: a plant that renames sensors must not grow us."""
        cutoff = time.monotonic() - self.idle_s
        idle = [s for s, t in self._heard.items() if t < cutoff]
        for sensor in idle:
            self.counters["restarts_forgotten"] += self.windowers.pop(sensor).restarts
            for table in (self._heard, self.health, self.latest):
                table.pop(sensor, None)
        return len(idle)

    def status(self) -> dict:
        dropped = dict(self.inbox.dropped)
        return {"v": 1, "online": not self.stop_event.is_set(), "model": self.diagnoser.model_id,
                **({"normal_margin": self.diagnoser.normal_margin} if self.diagnoser.normal_margin else {}),
                "sensors": len(self.windowers), "frames": self.counters["frames"],
                "windows": self.counters["windows"], "no_signal_windows": self.counters["no_signal_windows"],
                "non_finite_outputs": self.counters["non_finite_outputs"],
                "failed_windows": self.counters["failed_windows"],
                "dropped": sum(dropped.values()),
                "dropped_by_reason": dropped, "rejected": self._rejected(),
                "reconnects": max(self.counters["connects"] - 1, 0),
                "restarts": self.counters["restarts_forgotten"] + sum(w.restarts for w in self.windowers.values()),
                "inbox_bytes": self.inbox.bytes_waiting, "journal_unsent": self.journal.count_unsent(),
                **({"model_swaps": self.watcher.swaps, "models_rejected": self.watcher.rejected}
                   if self.watcher else {}),
                **({"anomaly_model": self.anomaly.model_id, "anomaly_threshold": self.anomaly.threshold,
                    "anomalies": self.counters["anomalies"]} if self.anomaly else {})}

    def _rejected(self) -> dict:
        rejected = Counter(self.rejected)
        with self._lock:
            rejected["oversized"] += self._oversized  # refused on arrival, by the network thread
        return {k: v for k, v in rejected.items() if v}

    def _publish_status(self, status: dict | None = None):
        info = self.client.publish(f"{self.root}/_monitor/status", json.dumps(status or self.status()), retain=True)
        self._register(info.mid, None)
        return info

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        connect(self.client, self.broker)  # paho's network thread then reconnects by itself
        self.last_status = self.status()

    def step(self, wait_s: float = 0.05) -> None:
        """One turn of the worker: queued frames -> diagnoses; journal forwarding; status."""
        items = self.inbox.take(512, wait_s)
        if items:
            self.process(items)
        self.forward()
        if self.watcher and time.monotonic() >= self._next_model_check:
            self.diagnoser = self.watcher.poll() or self.diagnoser
            self._next_model_check = time.monotonic() + MODEL_CHECK_S
        if time.monotonic() >= self._next_sweep:
            self.forget_idle()
            self._next_sweep = time.monotonic() + IDLE_SWEEP_S
        self.last_status = self.status()  # what other threads (metrics) read; the journal stays ours
        if time.monotonic() >= self._next_status and self.client.is_connected():
            self._publish_status()
            self._next_status = time.monotonic() + STATUS_EVERY_S

    def close(self) -> dict:
        self.stop_event.set()
        final = self.status()
        if self.client.is_connected():
            self._publish_status(final).wait_for_publish(2)
        disconnect(self.client)
        self.journal.close()
        return final

    def run(self, duration_s: float | None = None, on_step=None) -> dict:
        """Serve until stop() or `duration_s` (connecting first if start() was not called);
        `on_step(monitor)` is called after every step (a dashboard)."""
        self.start()
        deadline = time.monotonic() + duration_s if duration_s else None
        try:
            while not self.stop_event.is_set() and (deadline is None or time.monotonic() < deadline):
                self.step()
                if on_step:
                    on_step(self)
        finally:
            final = self.close()
        return final

    def stop(self) -> None:
        self.stop_event.set()
