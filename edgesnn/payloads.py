"""MQTT payloads of CONTRACTS section 3: waveform frames in, diagnoses out (no torch, no MQTT).

Every way a waveform payload can be wrong has a named reason, so a stream can count its
rejections by reason instead of failing.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass

import numpy as np

from edgesnn.labels import fault_type
from edgesnn.signal import MAX_FS_HZ, MIN_FS_HZ

MAX_PAYLOAD_BYTES = 1 << 20  # 1 MiB: a minute of 4 kHz float32 as base64 JSON, far above any frame
# A frame is a fraction of a second of signal (typically 256 to 8192 samples). A longer one is
# refused: at a low rate a 1 MiB frame would hold minutes, resampled into thousands of windows.
MAX_FRAME_S = 10.0
# Shock accelerometers reach about 1e5 g; a larger value is a unit or encoding error (and, squared
# by a float32 model's standardization, would overflow to NaN probabilities).
MAX_ABS_G = 1e6
# t0 is a UNIX time: never negative, and not past the year 9999. A clock that drifts, or that
# counts from 0 at boot, stays well inside.
MAX_T0_S = 253_402_300_800.0  # 10000-01-01T00:00:00Z
REQUIRED_KEYS = ("v", "seq", "t0", "fs", "dtype", "data")
REASONS = ("oversized", "not_json", "missing_key", "bad_version", "bad_seq", "bad_t0", "bad_fs",
           "bad_unit", "bad_dtype", "bad_base64", "empty", "non_finite", "out_of_range")


class Rejected(ValueError):
    """A payload that breaks the contract; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class WaveformFrame:
    seq: int
    t0: float  # UNIX time of the first sample
    fs: float
    samples: np.ndarray  # float32, in g


def decode_waveform(payload: bytes) -> WaveformFrame:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:  # UTF-8 as the contract says: json.loads alone would also take UTF-16 and UTF-32 bytes
        msg = json.loads(payload.decode("utf-8-sig") if isinstance(payload, (bytes, bytearray)) else payload)
    # ValueError covers a bad encoding and an integer too long to convert; RecursionError a
    # deeply nested array
    except (ValueError, RecursionError) as exc:
        raise Rejected("not_json", str(exc)[:200]) from None
    if not isinstance(msg, dict):
        raise Rejected("not_json", "payload is not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in msg]
    if missing:
        raise Rejected("missing_key", ", ".join(missing))
    if type(msg["v"]) is not int or msg["v"] != 1:  # not true, not 1.0
        raise Rejected("bad_version", f"v={msg['v']!r}")
    seq, t0, fs = msg["seq"], msg["t0"], msg["fs"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
        raise Rejected("bad_seq", f"seq={repr(seq)[:40]}: not a whole number from 0")
    if not isinstance(t0, (int, float)) or isinstance(t0, bool) or not _finite(t0):
        raise Rejected("bad_t0", f"t0={repr(t0)[:40]}: not a finite number")
    if not 0 <= t0 < MAX_T0_S:
        raise Rejected("bad_t0", f"t0={t0!r} is not a UNIX time (0 up to the year 9999)")
    if not isinstance(fs, (int, float)) or isinstance(fs, bool) or not (MIN_FS_HZ <= fs <= MAX_FS_HZ):
        raise Rejected("bad_fs", f"fs={fs!r} outside {MIN_FS_HZ:g}..{MAX_FS_HZ:g} Hz")
    if msg.get("unit", "g") != "g":
        raise Rejected("bad_unit", f"unit={msg.get('unit')!r}, expected 'g'")
    if msg["dtype"] != "float32":
        raise Rejected("bad_dtype", f"dtype={msg['dtype']!r}, expected 'float32'")
    try:
        raw = base64.b64decode(msg["data"], validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise Rejected("bad_base64", str(exc)) from None
    if len(raw) == 0 or len(raw) % 4:
        raise Rejected("empty" if not raw else "bad_base64", f"{len(raw)} bytes is not a whole number of float32")
    samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(samples).all():
        raise Rejected("non_finite", f"{int((~np.isfinite(samples)).sum())} NaN or Inf samples")
    if np.abs(samples).max() > MAX_ABS_G:
        raise Rejected("out_of_range", f"a sample of {np.abs(samples).max():.3g} g; no accelerometer "
                                       f"measures more than {MAX_ABS_G:g} g")
    return WaveformFrame(seq, float(t0), float(fs), samples)


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer too large for a float
        return False


def encode_waveform(seq: int, t0: float, fs: float, samples: np.ndarray) -> bytes:
    data = base64.b64encode(np.asarray(samples, dtype="<f4").tobytes()).decode()
    return json.dumps({"v": 1, "seq": seq, "t0": t0, "fs": fs, "unit": "g", "dtype": "float32",
                       "data": data}).encode()


def encode_diagnosis(t_end: float, probabilities: np.ndarray, classes, model_id: str,
                     extra: dict | None = None) -> bytes:
    """`extra`: fields added after those of CONTRACTS section 3 (an anomaly model's score)."""
    best = int(np.argmax(probabilities))
    label = classes[best]
    return json.dumps({
        "v": 1, "t_end": t_end, "label": label, "fault_type": fault_type(label),
        "confidence": round(float(probabilities[best]), 4),
        "probabilities": {c: round(float(p), 4) for c, p in zip(classes, probabilities)},
        "model": model_id, **(extra or {}),
    }).encode()
