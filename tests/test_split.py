"""The leak-free split of CONTRACTS section 1: no test sample ever reaches a training window."""

import numpy as np

from edgesnn.dataset import load_task
from edgesnn.sensors.cwru import Recording
from edgesnn.split import region_bounds, region_windows, train_window_starts


def test_regions_are_ordered_and_disjoint():
    for n in (2048 * 3, 60_984, 121_265, 122_917):
        tr, va, te = (region_bounds(n, r) for r in ("train", "val", "test"))
        assert tr[0] == 0 and tr[1] == va[0] and va[1] == te[0] and te[1] == n


def test_training_windows_stay_in_training_region():
    rng = np.random.default_rng(0)
    for n in (10_000, 60_984, 122_917):
        starts = train_window_starts(n, 2048, 20_000, rng)
        assert starts.min() >= 0
        assert starts.max() + 2048 <= region_bounds(n, "train")[1]


def test_no_test_sample_in_any_training_window(cwru_dir):
    """Replace every real recording by (recording id, sample index) codes and sample training
    windows as training does: every sample seen must lie in its recording's training region."""
    data = load_task(cwru_dir)
    stride = 200_000  # > longest recording; codes stay exact in float32 (37 * 2e5 < 2**24)
    data.recordings = [Recording(r.entry, (i * stride + np.arange(len(r.signal))).astype(np.float32))
                       for i, r in enumerate(data.recordings)]
    rng = np.random.default_rng(1)
    for jitter in (0.0, 0.05) * 10:
        x, y = data.sample_train(256, rng, speed_jitter=jitter)
        rec, idx = np.divmod(x.astype(np.int64), stride)
        assert np.all(rec == rec[:, :1]), "a training window mixes recordings"
        assert np.all(np.diff(idx, axis=1) >= 0), "a training window is not one stretch in time order"
        for r, last, label in zip(rec[:, 0], idx[:, -1], y):
            assert data.labels[r] == label
            assert last < region_bounds(len(data.recordings[r].signal), "train")[1]
    # Test windows: inside the test region and never overlapping each other.
    for rec in data.recordings:
        w = region_windows(rec.signal, "test", data.window).astype(np.int64) % stride
        lo, hi = region_bounds(len(rec.signal), "test")
        assert w[:, 0].min() >= lo and w[:, -1].max() < hi
        assert np.all(w[1:, 0] > w[:-1, -1])


def test_every_class_has_test_windows(cwru_dir):
    data = load_task(cwru_dir)
    test = data.windows("test")
    assert set(np.unique(test.y)) == set(range(10))
    # 17 windows from each fault recording (18 from the longest one), 8 from the resampled normal
    assert len(test.y) == 621 and int((test.y == 0).sum()) == 8
