"""`edgesnn demo`: embedded broker, real shipped clips, the default model, no torch; and the clips
are what they claim to be (the start of each recording's test region)."""

import json
import subprocess
import sys

import numpy as np

from edgesnn.labels import CWRU10
from edgesnn.sensors import cwru
from edgesnn.sensors.clips import load_clips
from edgesnn.split import region_bounds


def test_shipped_clips_are_the_test_region_of_their_recordings(cwru_dir):
    clips = load_clips()
    assert [c.label for c in clips] == list(CWRU10)
    entries = {e.file: e for e in cwru.read_manifest(cwru_dir)}
    for clip in clips:
        entry = entries[clip.source]
        assert entry.label() == clip.label and entry.sha256 == clip.source_sha256
        x = cwru.read_entry(cwru_dir, entry).signal
        assert clip.start == region_bounds(len(x), "test")[0]  # never in a training window
        np.testing.assert_array_equal(clip.signal, x[clip.start : clip.start + len(clip.signal)])


def test_demo_diagnoses_every_clip_right_over_the_embedded_broker_without_torch(tmp_path):
    code = (
        "import sys\n"
        "sys.argv = ['edgesnn', 'demo', '--seconds', '5', '--json']\n"
        "from edgesnn.cli.main import app\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'the demo imported torch'\n"
    )
    # outside the source tree: the installed package, its shipped clips and model
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    rows, final = result["sensors"], result["monitor"]
    assert len(rows) == 10
    for row in rows:
        assert row["verdict"] == row["truth"], row
        # 5 s of 1.5 s clips looped: 26 windows when nothing lags; each lap restarts the window
        assert 20 <= row["windows"] <= 26 and row["windows_right"] >= 0.9 * row["windows"], row
        assert 0 < row["latency_ms_p50"] < 500, row
    assert final["dropped"] == 0 and final["rejected"] == {} and final["restarts"] >= 10
