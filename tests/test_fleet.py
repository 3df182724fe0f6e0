"""Fleet retraining: partition, SFedCA credit and selection, update screening, and a real
Flower simulation through `edgesnn fleet simulate`."""

import json

import numpy as np
import pytest

flwr = pytest.importorskip("flwr")
torch = pytest.importorskip("torch")

from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict  # noqa: E402

from edgesnn.dataset import load_task  # noqa: E402
from edgesnn.fleet.activity import credit, firing_state  # noqa: E402
from edgesnn.fleet.partition import partition, training_windows  # noqa: E402
from edgesnn.fleet.selection import ClientView, sfedca_scores, sfedca_selection  # noqa: E402
from edgesnn.errors import EdgesnnError  # noqa: E402
from edgesnn.fleet.aggregation import aggregated_mix, class_balanced_weights  # noqa: E402
from edgesnn.fleet.selection import SelectionSettings  # noqa: E402
from edgesnn.fleet.strategy import norm_outliers, reported_state, screen_update  # noqa: E402
from edgesnn.registry import create_model  # noqa: E402
from conftest import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def fleet_windows(cwru_dir):
    return training_windows(load_task(cwru_dir), hop=512)


def test_partitions_are_disjoint_skewed_and_stay_in_the_training_region(fleet_windows):
    x, y, rec, load = fleet_windows
    parts = partition(y, load, 20, "dirichlet", 0.1, seed=0)
    flat = np.concatenate(parts)
    assert len(flat) == len(y) == len(np.unique(flat))  # every training window, once
    # alpha = 0.1: most clients hold one dominant class
    dominant = [np.bincount(y[p], minlength=10).max() / len(p) for p in parts]
    assert np.median(dominant) > 0.6
    assert min(len(p) for p in parts) >= 8
    by_load = partition(y, load, 20, "load", 0.1, seed=0)
    assert all(len(np.unique(load[p])) == 1 for p in by_load)
    assert len(np.concatenate(by_load)) == len(y)


def _view(mix, n=100, after_mix=None):
    layer = np.ones(8, dtype=np.float32)
    before = {"layer0": layer, "output": np.asarray(mix, dtype=np.float64)}
    after = None if after_mix is None else {"layer0": layer, "output": np.asarray(after_mix, dtype=np.float64)}
    return ClientView(n, before, after)


def test_credit_is_zero_when_local_training_changed_nothing():
    state = {"layer0": np.array([0.5, 1.0]), "output": np.array([0.5, 0.5])}
    moved = {"layer0": np.array([1.0, 1.0]), "output": np.array([1.0, 0.0])}
    assert credit(state, state) == 0.0
    assert credit(moved, state) == pytest.approx(0.5 / 1.5 + 0.5)


def test_sfedca_picks_clients_that_together_cover_the_fleet():
    # Three clients each hold one class (as their local models tell); two more duplicate class 0.
    views = {1: _view([1 / 3] * 3, after_mix=[1, 0, 0]), 2: _view([1 / 3] * 3, after_mix=[0, 1, 0]),
             3: _view([1 / 3] * 3, after_mix=[0, 0, 1]), 4: _view([1 / 3] * 3, after_mix=[1, 0, 0]),
             5: _view([1 / 3] * 3, after_mix=[1, 0, 0])}
    chosen = sfedca_selection(views, 3, credit_weight=0.0, target="uniform")
    assert sorted(np.argmax(views[k].after["output"]) for k in chosen) == [0, 1, 2]
    # aiming at the fleet's own mix (3/5 of class 0), a round of three mirrors it as best it can
    chosen = sfedca_selection(views, 3, credit_weight=0.0, target="fleet")
    assert sorted(np.argmax(views[k].after["output"]) for k in chosen) in ([0, 0, 1], [0, 0, 2])
    # A client the global model already fits (after == before) has no credit; unseen ones are explored.
    views[6] = _view([1, 0, 0], after_mix=[1, 0, 0])
    views[7] = _view([0, 1, 0])
    scores = sfedca_scores(views)
    assert scores[6] == 0.0 and scores[7] == max(scores.values())



def test_sfedca_explore_fills_its_places_from_clients_the_greedy_passed_over():
    views = {k: _view([1 / 3] * 3, after_mix=np.eye(3)[k % 3]) for k in range(1, 11)}
    greedy = sfedca_selection(views, 3, target="uniform")
    drawn = set()
    for seed in range(20):
        chosen = sfedca_selection(views, 3, target="uniform", explore=1, rng=np.random.default_rng(seed))
        assert len(set(chosen)) == 3 and chosen[:2] == greedy[:2]  # the greedy's first two, then a random one
        drawn.add(chosen[2])
    assert not drawn & set(greedy[:2]) and len(drawn) > 3
    with pytest.raises(EdgesnnError, match="explore"):
        SelectionSettings("sfedca", clients_per_round=4, explore=5)

def test_firing_state_has_one_rate_vector_per_spiking_layer_and_class_probabilities():
    model = create_model("mra_snn", n_classes=10, window=2048, timesteps=1, bits=2)
    x = np.random.default_rng(0).standard_normal((5, 2048)).astype(np.float32)
    state = firing_state(model, x)
    layers = [k for k in state if k.startswith("layer")]
    assert len(layers) == 4 and all(((state[k] >= 0) & (state[k] <= 3)).all() for k in layers)
    assert state["output"].shape == (10,) and state["output"].sum() == pytest.approx(1.0, abs=1e-5)


def _reply(arrays: dict) -> RecordDict:
    return RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                       "metrics": MetricRecord({"num-examples": 10})})


def test_bad_updates_are_rejected_with_a_reason():
    ref_np = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    ref = ArrayRecord({k: Array(v) for k, v in ref_np.items()})
    ok = {"w": np.full((3, 2), 0.1, np.float32), "b": np.zeros(2, np.float32)}
    assert screen_update(ref, _reply(ok))[0] is None
    nan = {**ok, "b": np.array([np.nan, 0], np.float32)}
    assert screen_update(ref, _reply(nan))[0] == "non-finite"
    assert screen_update(ref, _reply({**ok, "b": np.zeros(3, np.float32)}))[0] == "shape"
    assert screen_update(ref, _reply({"w": ok["w"]}))[0] == "tensors"
    assert screen_update(ref, _reply({**ok, "b": np.zeros(2, np.float64)}))[0] == "dtype"
    for n in (0, -5, 2.5, 10**9):  # no weight, a fractional weight or an absurd one: not believed
        bad = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in ok.items()}),
                          "metrics": MetricRecord({"num-examples": n})})
        assert screen_update(ref, bad)[0] == "num-examples"
    extra = _reply(ok)
    extra["smuggled"] = ArrayRecord({"w": Array(np.full((3, 2), 1e30, np.float32))})  # a second ArrayRecord
    assert screen_update(ref, extra)[0] == "records"
    assert screen_update(ref, _reply(ok))[1] == pytest.approx(np.sqrt(6 * 0.01))


def test_norm_outliers_follow_the_round_so_a_moved_model_does_not_lock_the_fleet_out():
    history = [0.24, 0.25, 0.26, 0.25]
    # One scaled update among honest ones is refused, against history or against its round.
    assert norm_outliers([0.25, 245.0, 0.3], history, 5.0) == [False, True, False]
    assert norm_outliers([1.0, 1.1, 0.9, 900.0], [], 5.0) == [False, False, False, True]
    assert norm_outliers([245.0], history, 5.0) == [True]  # alone, only history can judge it
    # After the global model has moved far every honest update is long: the round's own
    # median speaks for them, where the history alone refused them all, round after round.
    assert norm_outliers([3.0, 2.5, 3.5, 2.8], history, 5.0) == [False] * 4
    assert norm_outliers([3.0, 2.5], [], 5.0) == [False, False]  # nothing typical known yet


def test_balanced_aggregation_gives_every_class_of_the_round_the_same_say():
    one_hot = np.eye(3)
    # A big device of class 0 and two small ones of class 1: FedAvg would give class 0 90 % of
    # the say; balanced, each class gets half, split inside a class by window count.
    w = np.array(class_balanced_weights([900, 50, 100], [one_hot[0], one_hot[1], one_hot[1]]))
    assert w[0] / w.sum() == pytest.approx(0.5) and w[2] / w[1] == pytest.approx(2.0)
    # Devices holding the same mix keep FedAvg's window-count weights.
    same = class_balanced_weights([10, 30], [np.array([0.2, 0.8, 0.0])] * 2)
    assert same[1] / same[0] == pytest.approx(3.0)
    # SFedCA aims the mix behind the round's average, as the average will weigh it, at its target.
    assert aggregated_mix("balanced", [900, 50], list(one_hot[:2])) == pytest.approx([0.5, 0.5, 0.0])
    assert aggregated_mix("windows", [900, 50], list(one_hot[:2])) == pytest.approx([0.9473684, 0.0526316, 0.0])
    with pytest.raises(EdgesnnError, match="unknown aggregation"):
        SelectionSettings(aggregation="median")


def test_devices_learning_rate_falls_on_a_half_cosine_over_the_rounds():
    from edgesnn.fleet.config import FleetConfig

    cfg = FleetConfig(rounds=11, lr=2e-3, lr_end=0.1)
    assert cfg.lr_at(1) == pytest.approx(2e-3) and cfg.lr_at(11) == pytest.approx(2e-4)
    assert cfg.lr_at(6) == pytest.approx(2e-3 * 0.55)  # halfway: halfway between
    assert all(cfg.lr_at(r) > cfg.lr_at(r + 1) for r in range(1, 11))
    assert FleetConfig(rounds=11, lr_end=1.0).lr_at(7) == pytest.approx(2e-3)  # lr_end 1: constant
    assert FleetConfig(rounds=1, lr_end=0.1).lr_at(1) == pytest.approx(2e-3)


def test_malformed_statistics_from_a_device_are_refused():
    from flwr.app import ConfigRecord

    template = {"layer0": 2, "output": 2}
    good = {"layer0": [0.5, 1.0], "output": [0.25, 0.75]}
    assert reported_state(ConfigRecord(good), template, 3.0)["output"].sum() == 1.0
    for bad in ({"layer0": [float("nan"), 1.0], "output": [0.25, 0.75]},
                {"layer0": [-1.0, 1.0], "output": [0.25, 0.75]},
                {"layer0": [0.5, 1.0], "output": [0.5, 0.75]},
                {"layer0": [0.5, 1.0]},
                {"layer0": [0.5, 1.0, 1.0], "output": [0.25, 0.75]},  # not the model's layer
                {"layer0": [1e300, 1.0], "output": [0.25, 0.75]}):  # more than a neuron can fire
        with pytest.raises(ValueError):
            reported_state(ConfigRecord(bad), template, 3.0)


FLEET = ["--clients", 4, "--rounds", 2, "--per-round", 2, "--local-steps", 2, "--seed", 7]


@pytest.fixture(scope="module")
def seeded_runs(cwru_dir, tmp_path_factory):
    """Three real Flower simulations of one small fleet (each costs seconds of Flower and torch
    start-up, so the tests below share them): `first` exports its model, `again` repeats it with
    the same seed, `dp` clips the first round's updates on the devices."""
    root = tmp_path_factory.mktemp("fleet")
    runs = {}
    for name, extra in (("first", []), ("again", ["--no-export"]),
                        ("dp", ["--no-export", "--rounds", 1, "--dp-clip", "0.05", "--dp-noise", "0.0"])):
        r = run_cli("fleet", "simulate", "--data", cwru_dir, *FLEET, "--out", root / name, *extra)
        assert r.returncode == 0, r.stderr[-3000:]
        runs[name] = root / name
    return runs


def test_fleet_simulate_runs_flower_and_exports_the_global_model(seeded_runs):
    out = seeded_runs["first"]
    history = json.loads((out / "history.json").read_text())
    rows = history["rounds"]
    assert [row["round"] for row in rows] == [0, 1, 2]
    for row in rows[1:]:
        assert len(row["selected"]) == 2 and row["accepted"] == 2 and row["queried"] == 4
        assert row["weighting"] == "balanced"  # every accepted update came with its class mix
        assert row["bytes"]["model_down"] > 0 and row["bytes"]["model_up"] > 0 and row["bytes"]["stats_up"] > 0
    assert (out / "accuracy.png").stat().st_size > 0
    # fleet.pt is a checkpoint like train's: `edgesnn export` (and eval) read it
    from edgesnn.training import load_checkpoint
    _, ckpt = load_checkpoint(out / "fleet.pt")
    assert [row["round"] for row in ckpt["history"]] == [0, 1, 2]
    card = json.loads((out / "mra-snn-fleet-int8.json").read_text())
    assert card["quantization"] and 0.0 <= card["metrics"]["test_accuracy"] <= 1.0
    # the exported model runs on the edge runtime
    from edgesnn.runtime import Diagnoser
    logits = Diagnoser(out / "mra-snn-fleet-int8.json").logits(np.zeros((1, 1, 2048), np.float32) + 0.01)
    assert logits.shape == (1, 10)
    assert not (seeded_runs["again"] / "mra-snn-fleet-int8.json").exists()  # --no-export


def test_dp_clipping_bounds_every_update_through_flowers_mods(seeded_runs):
    plain, dp = (json.loads((seeded_runs[k] / "history.json").read_text())["rounds"][1] for k in ("first", "dp"))
    assert plain["weighting"] == "balanced" and dp["weighting"] == "equal"
    # the same seed picks the same devices: the same local training, clipped or not
    assert dp["selected"] == plain["selected"] and len(dp["update_norms"]) == 2
    assert max(dp["update_norms"]) <= 0.05 + 1e-4
    assert min(plain["update_norms"]) > 0.05  # the clip was binding: without it the updates are larger


def test_a_fleet_run_is_repeatable_with_its_seed(seeded_runs):
    """Flower draws new node ids in every run and replies arrive in any order; the server orders
    devices by name, so the same seed picks the same devices and averages to the same model."""
    runs = []
    for name in ("first", "again"):
        rows = json.loads((seeded_runs[name] / "history.json").read_text())["rounds"][1:]
        weights = torch.load(seeded_runs[name] / "fleet.pt", weights_only=False)["state_dict"]
        runs.append(([row["selected"] for row in rows], [row["update_norms"] for row in rows], weights))
    (picked, norms, first), (picked_again, norms_again, second) = runs
    assert all(name.startswith("partition-") for names in picked for name in names)
    assert picked == picked_again and norms == norms_again
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("args, message", [
    (["--selection", "best"], "unknown selection"),
    (["--scenario", "weather"], "unknown scenario"),
    (["--aggregation", "median"], "unknown aggregation"),
    (["--clients", 3, "--per-round", 4], "more than the fleet"),
    (["--data", "/nonexistent/cwru"], "/nonexistent/cwru"),
    (["--seed", "-1"], "-1 is not in the range"),
    (["--out", "/proc/fs"], "/proc/fs: cannot write the results there"),  # before any round runs
])
def test_fleet_simulate_refuses_bad_settings_in_one_line(args, message, tmp_path):
    r = run_cli("fleet", "simulate", "--out", tmp_path, *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
