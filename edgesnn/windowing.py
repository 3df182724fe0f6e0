"""Per-sensor stream assembly: frames of any length in, model-rate windows out.

A window may span frames. A gap in `seq` or in time, or a change of sample rate, restarts the
sensor's window, so a window never joins samples that were not contiguous. Sensors at another
rate are windowed at their own rate (a window of the same duration) and each window is resampled
to the model's rate, which keeps the anti-alias filter away from frame boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgesnn.payloads import WaveformFrame
from edgesnn.signal import resample

# A frame whose t0 is off from where the previous frame ended by more than this is a gap in time.
# Sensors stamp t0 from clocks that jitter by a millisecond or two (and drift by 100 ppm or so),
# which is no gap: at a tolerance of two samples (0.17 ms at 12 kHz) a sensor jittering by
# +-1 ms lost 79 % of its windows to restarts. seq says whether frames follow each other; time
# catches what seq cannot, a sensor that lost samples between frames it numbered in a row.
MAX_JITTER_S = 0.005
MIN_GAP_SAMPLES = 2.0  # at low rates, never less than two sample periods


@dataclass
class SensorWindower:
    model_fs: float
    window: int  # samples at the model's rate
    hop: int  # samples at the model's rate
    max_jitter_s: float = MAX_JITTER_S
    restarts: int = 0
    restart_reason: str = ""  # why the window last restarted, in words
    time_gaps: int = 0  # restarts for a t0 off where the frames before ended, which seq does not show
    _fs: float | None = field(default=None, repr=False)
    _buffer: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32), repr=False)
    _t_origin: float = 0.0  # t0 of the frame that (re)started the window
    _consumed: int = 0  # samples dropped since then: _buffer[0] (with _skip: the first after the skip)
    _skip: int = 0  # samples still to drop before the next window starts (a hop longer than a window)
    _next_seq: int | None = None

    def _native(self, n: int) -> int:
        return int(round(n * self._fs / self.model_fs))

    def _time(self, sample: int) -> float:
        """Time of the buffer's sample `sample`. Counted in whole samples from the restart, not
        summed window by window: a sum of float steps drifts (about 3e-8 s a window at Unix
        times), and after some minutes a perfectly timed sensor would look like a gap."""
        return self._t_origin + (self._consumed + sample) / self._fs

    def push(self, frame: WaveformFrame) -> list[tuple[np.ndarray, float]]:
        """Add a frame; return the windows now complete, each with the time of its last sample."""
        t_expected = self._time(len(self._buffer) - self._skip) if self._fs else None
        if self._next_seq is None:
            reason = "first frame"
        elif self._fs != frame.fs:
            reason = f"rate changed from {self._fs:g} to {frame.fs:g} Hz"
        elif frame.seq != self._next_seq:
            reason = f"seq {frame.seq} where {self._next_seq} was next"
        elif abs(frame.t0 - t_expected) > max(self.max_jitter_s, MIN_GAP_SAMPLES / frame.fs):
            reason = f"t0 {1e3 * (frame.t0 - t_expected):+.1f} ms off where the last frame ended"
            self.time_gaps += 1
        else:
            reason = ""
        if reason:
            if self._next_seq is not None:
                self.restarts += 1
                self.restart_reason = reason
            self._fs, self._buffer, self._skip = frame.fs, frame.samples.copy(), 0
            self._t_origin, self._consumed = frame.t0, 0
        else:
            dropped = min(self._skip, len(frame.samples))
            self._skip -= dropped
            self._buffer = np.concatenate([self._buffer, frame.samples[dropped:]])
        self._next_seq = frame.seq + 1

        span, step = self._native(self.window), self._native(self.hop)
        out = []
        start = 0
        while start + span <= len(self._buffer):
            chunk = self._buffer[start : start + span]
            if self._fs != self.model_fs:
                chunk = resample(chunk, self._fs, self.model_fs)[: self.window]
                chunk = np.pad(chunk, (0, self.window - len(chunk)), mode="edge")
            out.append((chunk.astype(np.float32), self._time(start + span - 1)))
            start += step
        if start:  # drop what no later window needs; past the buffer's end, later samples too
            self._skip = max(start - len(self._buffer), 0)
            self._buffer = self._buffer[start:]
            self._consumed += start
        return out
