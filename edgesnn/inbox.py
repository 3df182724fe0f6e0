"""Acquire: the bounded inbox between the MQTT network thread and the monitor's worker.

Frames wait here, as raw payloads, until the worker takes them. Under overload (sensors
publishing faster than the machine can diagnose) memory stays bounded by bytes, not by frame
count (a frame may be up to 1 MiB; each is charged its payload, its topic and a fixed overhead),
and a frame turned away is counted by reason:
- `sensor_backlog`: that sensor already has `per_sensor_bytes` waiting, so one sensor flooding
  faster than real time loses its own excess and cannot starve the others;
- `inbox_full`: all sensors together have `total_bytes` waiting.
The newest frame is the one dropped: the sensor's `seq` then has a gap, so its window restarts
instead of joining samples that were not contiguous.
"""

from __future__ import annotations

import threading
from collections import Counter, deque


# What a waiting frame costs beyond its payload: its topic, the tuple, the deque slot, the bytes
# object's header. Charged per frame so that a flood of empty payloads is bounded too.
FRAME_OVERHEAD = 256


def cost(topic: str, payload: bytes) -> int:
    return len(payload) + len(topic) + FRAME_OVERHEAD


class Inbox:
    def __init__(self, total_bytes: int = 64 << 20, per_sensor_bytes: int = 4 << 20):
        self.total_bytes, self.per_sensor_bytes = total_bytes, per_sensor_bytes
        self.dropped = Counter()  # reason -> frames turned away
        self._items: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self._waiting = Counter()  # topic -> bytes waiting (entries removed at zero)
        self._ready = threading.Condition()

    def put(self, topic: str, payload: bytes) -> bool:
        """Queue a frame; False (and counted) when it would break a limit."""
        n = cost(topic, payload)
        with self._ready:
            if self._waiting[topic] + n > self.per_sensor_bytes:
                self.dropped["sensor_backlog"] += 1
                return False
            if self._bytes + n > self.total_bytes:
                self.dropped["inbox_full"] += 1
                return False
            self._items.append((topic, payload))
            self._bytes += n
            self._waiting[topic] += n
            self._ready.notify()
        return True

    def take(self, max_items: int, wait_s: float) -> list[tuple[str, bytes]]:
        """Up to `max_items` frames in arrival order, waiting at most `wait_s` for the first."""
        with self._ready:
            if not self._items:
                self._ready.wait(wait_s)
            out = []
            while self._items and len(out) < max_items:
                topic, payload = self._items.popleft()
                n = cost(topic, payload)
                self._bytes -= n
                self._waiting[topic] -= n
                if not self._waiting[topic]:
                    del self._waiting[topic]
                out.append((topic, payload))
        return out

    @property
    def bytes_waiting(self) -> int:
        return self._bytes
