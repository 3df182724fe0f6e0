"""The bounded inbox and the monitor's sensor limit: memory under overload, every drop counted."""

import time

import numpy as np

from edgesnn.inbox import FRAME_OVERHEAD, Inbox
from edgesnn.monitor import Monitor
from edgesnn.payloads import encode_waveform


def test_inbox_bounds_bytes_per_sensor_and_in_total():
    k = FRAME_OVERHEAD + len("r/a/waveform")  # every frame is charged its topic and an overhead
    inbox = Inbox(total_bytes=250 + 3 * k, per_sensor_bytes=100 + k)
    assert inbox.put("r/a/waveform", b"x" * 60) and not inbox.put("r/a/waveform", b"x" * 60)  # a: 120 > 100
    assert inbox.put("r/b/waveform", b"x" * 90) and inbox.put("r/c/waveform", b"x" * 90)
    assert not inbox.put("r/d/waveform", b"x" * 20)  # 240 + 20 > 250 in total
    assert dict(inbox.dropped) == {"sensor_backlog": 1, "inbox_full": 1} and inbox.bytes_waiting == 240 + 3 * k
    # taking frames frees their bytes, in arrival order
    assert [t for t, _ in inbox.take(2, 0.0)] == ["r/a/waveform", "r/b/waveform"]
    assert inbox.bytes_waiting == 90 + k and inbox.put("r/a/waveform", b"x" * 100)
    assert [t for t, _ in inbox.take(10, 0.0)] == ["r/c/waveform", "r/a/waveform"]
    assert inbox.take(10, 0.01) == [] and inbox.bytes_waiting == 0


def test_a_flood_of_empty_payloads_is_bounded_too():
    inbox = Inbox(total_bytes=100 * FRAME_OVERHEAD, per_sensor_bytes=100 * FRAME_OVERHEAD)
    accepted = sum(inbox.put(f"r/s{i % 7}/waveform", b"") for i in range(10_000))
    assert accepted < 100 and inbox.dropped["inbox_full"] == 10_000 - accepted


def test_monitor_tracks_at_most_max_sensors_and_forgets_idle_ones():
    mon = Monitor("mqtt://127.0.0.1:1", "r", max_sensors=2, idle_s=0.2)  # never connects: rows stay journaled
    x = np.random.default_rng(0).standard_normal(2048).astype(np.float32)
    frames = [(f"r/s{i}/waveform", encode_waveform(0, 1.0e9, 12000, x)) for i in range(3)]
    assert mon.process(frames) == 2
    st = mon.status()
    assert st["sensors"] == 2 and st["rejected"] == {"too_many_sensors": 1} and st["windows"] == 2
    time.sleep(0.3)
    assert mon.forget_idle() == 2 and mon.status()["sensors"] == 0 and not mon.health and not mon.latest
    assert mon.process(frames[2:]) == 1  # room again for a new sensor
    mon.journal.close()
