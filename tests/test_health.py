from edgesnn.health import HealthState


def test_one_noisy_window_does_not_flip_the_state():
    h = HealthState(window=5, hold=3)
    changes = [h.update(l) for l in ["normal"] * 4]
    assert changes == [False, False, True, False] and h.label == "normal"
    assert not h.update("outer_race_014")
    assert [h.update("normal") for _ in range(3)] == [False] * 3 and h.label == "normal"


def test_a_persistent_fault_becomes_the_state():
    h = HealthState(window=5, hold=3)
    for _ in range(5):
        h.update("normal")
    flips = [h.update("inner_race_021") for _ in range(8)]
    assert flips.count(True) == 1 and h.label == "inner_race_021"
