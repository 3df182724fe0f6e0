"""Waveform payloads of CONTRACTS section 3: the valid one decodes, each bad one has a reason."""

import base64
import json

import numpy as np
import pytest

from edgesnn.payloads import MAX_PAYLOAD_BYTES, Rejected, decode_waveform, encode_diagnosis, encode_waveform

SAMPLES = np.linspace(-1, 1, 512, dtype=np.float32)


def good(**change) -> bytes:
    msg = json.loads(encode_waveform(17, 1763800000.125, 12000, SAMPLES))
    msg.update(change)
    return json.dumps({k: v for k, v in msg.items() if v is not ...}).encode()


def test_round_trip():
    frame = decode_waveform(good())
    assert frame.seq == 17 and frame.t0 == 1763800000.125 and frame.fs == 12000
    np.testing.assert_array_equal(frame.samples, SAMPLES)


@pytest.mark.parametrize("payload,reason", [
    (b"\xff\xfe not utf8", "not_json"),
    (b"{truncated", "not_json"),
    (b"[1, 2]", "not_json"),
    (good().decode().encode("utf-16"), "not_json"),  # the contract says UTF-8; json.loads alone takes UTF-16
    (good(data=...), "missing_key"),
    (good(v=2), "bad_version"),
    (good(seq=-1), "bad_seq"),
    (good(seq="3"), "bad_seq"),
    (good(t0=None), "bad_t0"),
    (good(fs=12), "bad_fs"),
    (good(fs=1e12), "bad_fs"),
    (good(unit="m/s2"), "bad_unit"),
    (good(dtype="int16"), "bad_dtype"),
    (good(data="not base64!"), "bad_base64"),
    (good(data=base64.b64encode(b"abc").decode()), "bad_base64"),
    (good(data=""), "empty"),
    (good(data=base64.b64encode(np.array([1, np.nan], "<f4").tobytes()).decode()), "non_finite"),
    (b" " * (MAX_PAYLOAD_BYTES + 1), "oversized"),
    # the JSON parser's own limits: a number too long to convert, an array nested too deep
    (b'{"v": 1, "seq": ' + b"9" * 5000 + b"}", "not_json"),
    (b"[" * 200_000 + b"]" * 200_000, "not_json"),
    (good(v=True), "bad_version"),
    (good(v=1.0), "bad_version"),
    (good(t0=10**400), "bad_t0"),  # a JSON integer beyond any float
    (good(t0=-1e300), "bad_t0"),  # finite, but no UNIX time
    (good(t0=-0.5), "bad_t0"),
    (good(t0=1e12), "bad_t0"),  # past the year 9999
    (good(seq=10**30), "bad_seq"),
    (good(data=base64.b64encode(np.array([1, 3e38], "<f4").tobytes()).decode()), "out_of_range"),
])
def test_each_bad_payload_has_its_reason(payload, reason):
    with pytest.raises(Rejected) as info:
        decode_waveform(payload)
    assert info.value.reason == reason


@pytest.mark.parametrize("t0", [0, 0.0, 12.5, 1763800000.125, 253_402_300_799.0])
def test_any_unix_time_is_a_t0(t0):
    """A clock that counts from 0 at boot, or drifts, is still a clock: only the year 10000 is too far."""
    assert decode_waveform(good(t0=t0)).t0 == t0


def test_diagnosis_payload_has_the_contract_keys():
    classes = ["normal", "outer_race_014"]
    msg = json.loads(encode_diagnosis(1763800000.296, np.array([0.03, 0.97]), classes, "m@1a2b3c4d"))
    assert msg["label"] == "outer_race_014" and msg["fault_type"] == "outer_race"
    assert msg["confidence"] == 0.97 and set(msg["probabilities"]) == set(classes)
    assert {"v", "t_end", "model"} <= set(msg)
