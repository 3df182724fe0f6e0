"""Publish recordings as sensor streams (CONTRACTS section 3), in real time or faster."""

from __future__ import annotations

import time
from pathlib import Path

from edgesnn.errors import EdgesnnError
from edgesnn.payloads import encode_waveform
from edgesnn.sensors.recordings import read_recording


def sensor_id(path: Path) -> str:
    """A topic-safe sensor id from a file name ('12k_Drive_End_OR014@6_1_198' -> '..._OR014_6_1_198')."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)


def replay(paths: list[Path], fs: float | None, broker: str, root: str = "edgesnn", frame_ms: float = 100.0,
           speed: float = 1.0, seconds: float | None = None, variable: str | None = None) -> int:
    """Stream each file as one sensor in frames of `frame_ms`, at `speed` x real time (0: as fast
    as possible), for at most `seconds` of signal; returns the number of frames sent."""
    import paho.mqtt.client as mqtt

    from edgesnn.monitor import parse_broker

    sensors = []
    for p in paths:
        x, rate = read_recording(p, fs=fs, variable=variable)
        n = max(1, int(round(frame_ms / 1000 * rate)))  # samples per frame at the sensor's own rate
        sensors.append((f"{root.strip('/')}/{sensor_id(p)}/waveform", x, rate, n))
    host, port = parse_broker(broker)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise EdgesnnError(f"{broker}: cannot connect to the broker ({exc})") from None
    client.loop_start()
    start = time.time()
    sent, seq = 0, 0
    while seconds is None or seq * frame_ms / 1000 < seconds:
        infos = [client.publish(topic, encode_waveform(seq, start + seq * n / rate, rate, x[seq * n : (seq + 1) * n]), qos=1)
                 for topic, x, rate, n in sensors if seq * n < len(x)]
        if not infos:
            break
        sent += len(infos)
        seq += 1
        if speed > 0:  # frame `seq` is due at its signal time divided by speed
            time.sleep(max(0.0, start + seq * frame_ms / 1000 / speed - time.time()))
    for info in infos if sent else []:
        info.wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    return sent
