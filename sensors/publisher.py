"""Publish sensor streams over MQTT (CONTRACTS section 3): recordings replayed, or synthetic bearings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from edgesnn.broker import check_root
from edgesnn.errors import EdgesnnError
from edgesnn.payloads import MAX_FRAME_S, MAX_PAYLOAD_BYTES, encode_waveform
from edgesnn.sensors.recordings import read_recording
from edgesnn.sensors.synthetic import bearing_signal

FAULTS = ("normal", "ball", "inner_race", "outer_race")
ACK_TIMEOUT_S = 10.0  # how long the last frames may wait for the broker's acknowledgement


def sensor_id(path: Path) -> str:
    """A topic-safe sensor id from a file name ('12k_Drive_End_OR014@6_1_198' -> '..._OR014_6_1_198')."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)


def publish_streams(streams: dict[str, tuple[np.ndarray, float]], broker: str, root: str = "edgesnn",
                    frame_ms: float = 100.0, speed: float = 1.0, seconds: float | None = None,
                    tls_and_auth: dict | None = None, loop: bool = False,
                    stop: threading.Event | None = None) -> int:
    """Publish each sensor's signal (samples, rate) in frames of `frame_ms`, at `speed` x real time
    (0: as fast as possible), for at most `seconds` of signal; returns the number of frames sent.
    `loop` starts a signal over when it ends, skipping one `seq` so that the monitor restarts the
    window instead of joining the end to the beginning. `stop` ends it early.
    `tls_and_auth`: ca_file, cert_file, key_file, username, password for the broker."""
    from edgesnn.broker import connect, disconnect, mqtt_client, parse_broker

    if seconds is not None and not seconds > 0:
        raise EdgesnnError(f"--seconds {seconds:g}: give a positive duration, or none for the whole signal")
    # samples per frame at each sensor's own rate
    root = check_root(root)
    plan = [(f"{root}/{s}/waveform", x, rate, max(1, int(round(frame_ms / 1000 * rate))))
            for s, (x, rate) in streams.items()]
    for topic, _, rate, n in plan:  # a frame no monitor would take is refused before anything is sent
        if n / rate > MAX_FRAME_S or len(encode_waveform(0, 0.0, rate, np.zeros(n, np.float32))) > MAX_PAYLOAD_BYTES:
            raise EdgesnnError(f"{topic}: a {frame_ms:g} ms frame at {rate:g} Hz is larger than a monitor takes "
                               f"(at most {MAX_FRAME_S:g} s and {MAX_PAYLOAD_BYTES >> 20} MiB); use a shorter --frame-ms")
    target = parse_broker(broker)
    client = mqtt_client(target, **(tls_and_auth or {}))
    connect(client, target)
    # A frame holds a whole number of samples, so its duration is n / rate, not quite frame_ms
    # (1.5 ms at 1 kHz is 2 samples): frames are paced by what they hold, or t0 would run ahead.
    period = max(n / rate for _, _, rate, n in plan)
    start = time.time()
    sent, i, last = 0, 0, []
    while (seconds is None or i * period < seconds) and not (stop and stop.is_set()):
        if speed > 0:  # a sensor sends frame i once its last sample exists (at real time / speed)
            due = max(0.0, start + (i + 1) * period / speed - time.time())
            if stop.wait(due) if stop else time.sleep(due):  # a stop ends the wait, and sends nothing more
                break
        infos = []
        for topic, x, rate, n in plan:
            k, seq = i, i
            if loop and len(x) >= n:
                laps, k = divmod(i, len(x) // n)
                seq = i + laps
            if k * n < len(x):  # t0 follows frame i in real time, whatever the lap
                infos.append(client.publish(topic, encode_waveform(seq, start + i * n / rate, rate, x[k * n : (k + 1) * n]), qos=1))
        if not infos:
            break
        sent += len(infos)
        last = infos
        i += 1
    try:  # the broker acknowledges in order: the last round acknowledged, all are
        for info in last:
            info.wait_for_publish(ACK_TIMEOUT_S)
        unacknowledged = sum(not info.is_published() for info in last)
        if unacknowledged:
            raise EdgesnnError(f"{target}: the broker did not acknowledge the last {unacknowledged} frame(s) "
                               f"within {ACK_TIMEOUT_S:g} s; they may be lost")
    except RuntimeError as exc:  # paho: the connection is gone
        raise EdgesnnError(f"{target}: connection lost before the last frames were acknowledged ({exc})") from None
    finally:
        disconnect(client)
    return sent


def recording_streams(paths: list[Path], fs: float | None, variable: str | None = None
                      ) -> dict[str, tuple[np.ndarray, float]]:
    """Each recording as one sensor named after its file: {sensor id: (signal, rate)}."""
    ids = [sensor_id(p) for p in paths]
    if len(set(ids)) < len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise EdgesnnError(f"{', '.join(str(p) for p, i in zip(paths, ids) if i == twice)}: these files would "
                           f"stream as the one sensor {twice!r}; rename one")
    return {i: read_recording(p, fs=fs, variable=variable)[:2] for i, p in zip(ids, paths)}


def simulated_fleet(count: int, seconds: float, fs: float = 12_000.0, seed: int = 0) -> dict[str, tuple[np.ndarray, float]]:
    """`count` synthetic bearings, faults in turn (normal, ball, inner race, outer race) at random
    speeds 1700-1800 rpm and severities; sensor ids say the truth, e.g. sim007_outer_race."""
    rng = np.random.default_rng(seed)
    fleet = {}
    for i in range(count):
        fault = FAULTS[i % len(FAULTS)]
        x = bearing_signal(fault, seconds=seconds, fs=fs, rpm=rng.uniform(1700, 1800),
                           severity=rng.uniform(0.5, 2.0), seed=int(rng.integers(1 << 31)))
        fleet[f"sim{i:03d}_{fault}"] = (x, fs)
    return fleet
