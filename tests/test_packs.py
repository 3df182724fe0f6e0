"""The classifier packs of issue 6 on the MRA-SNN backbone (inflor, realspike, trt, tssd, ssnn,
ltl) and the CWT front end: each trains through the generic loop on real CWRU windows, exports
to ONNX that onnxruntime runs, and does what its method says (tiny configurations)."""

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from edgesnn.errors import EdgesnnError
from edgesnn.registry import create_model, pack_shape

PACKS = ["inflor", "realspike", "trt", "tssd", "ssnn", "ltl"]


def _build(name, **options):
    timesteps, bits = pack_shape(name)
    return create_model(name, n_classes=10, window=2048, timesteps=timesteps, bits=bits, **options)


@pytest.fixture(scope="module")
def task(cwru_dir):
    from edgesnn.dataset import load_task

    return load_task(cwru_dir, "cwru10", 2048)


@pytest.mark.parametrize("name", PACKS)
def test_pack_trains_exports_and_runs_in_onnxruntime(name, task, tmp_path):
    from edgesnn.export import deployed, export
    from edgesnn.runtime import Diagnoser
    from edgesnn.training import TrainConfig, model_from_checkpoint, train

    timesteps, bits = pack_shape(name)
    cfg = TrainConfig(pack=name, epochs=2, steps_per_epoch=3, batch_size=8, timesteps=timesteps, bits=bits, threads=1)
    ckpt = train(cfg, data=task)
    assert len(ckpt["history"]) == 2 and np.isfinite(ckpt["history"][-1]["loss"])
    model = model_from_checkpoint(ckpt)
    card_path = export(model, ckpt, tmp_path, name)  # refuses when ONNX and PyTorch disagree
    card = json.loads(card_path.read_text())
    assert card["pack"] == name and card["onnx_check"]["argmax_agreement"] == 1.0
    ship = deployed(model)
    assert card["timesteps"] == ship.timesteps and card["spike_bits"] == ship.spike_bits
    x = task.windows("test").x[::60]
    with torch.no_grad():
        want = ship(torch.from_numpy(x)[:, None, :]).numpy()
    np.testing.assert_allclose(Diagnoser(card_path).logits(x), want, atol=1e-3)


def test_training_only_parts_do_not_ship():
    from edgesnn.export import deployed
    from edgesnn.models.mra_snn import MRASNN

    for name, part in (("trt", "hybrid_head"), ("tssd", "weak_head"), ("ltl", "teacher")):
        model = _build(name)
        ship = deployed(model)
        assert hasattr(model, part) and type(ship) is MRASNN
        assert not any(k.startswith(part) for k in ship.state_dict())
        assert sum(p.numel() for p in ship.parameters()) == sum(p.numel() for p in MRASNN(**model.config).parameters())


def test_realspike_folding_is_exact_and_deploys_binary_spikes(task):
    from edgesnn.export import deployed

    torch.manual_seed(0)
    model = _build("realspike").double()
    with torch.no_grad():  # amplitudes as training leaves them: away from 1, per channel
        for a in model.amplitudes:
            a.uniform_(0.3, 2.5)
        for m in model.modules():  # batch norms that are not the identity, and drive the neurons
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(0.0, 1.5)
    model.eval()
    folded = deployed(model).double().eval()
    assert folded.spike_bits == 1 and not hasattr(folded, "amplitudes")
    x = torch.from_numpy(task.windows("test").x[::25].astype(np.float64))[:, None, :]
    spikes = {}
    for tag, net in (("real", model), ("folded", folded)):
        for k, block in enumerate(net.blocks):
            block.neurons.register_forward_hook(lambda m, i, o, tag=tag, k=k: spikes.__setitem__((tag, k), o))
    with torch.no_grad():
        a, b = model(x), folded(x)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-9)
    for k in range(len(model.blocks)):
        s = spikes[("folded", k)]
        assert torch.equal(s, spikes[("real", k)])  # the same spikes, not merely close logits
        assert set(s.unique().tolist()) <= {0.0, 1.0} and s.sum() > 0


def test_inflor_rectifier_changes_gradients_not_spikes():
    from edgesnn.neurons import rectify, spike

    u = torch.linspace(-0.5, 3.5, 801)
    assert torch.allclose(rectify(torch.arange(0.0, 4.0), 4.0), torch.arange(0.0, 4.0), atol=1e-6)
    inside = (u - u.round()).abs() > 1e-3  # float rounding aside, the count is unchanged
    assert torch.equal(torch.floor(rectify(u[inside], 4.0)), torch.floor(u[inside]))
    v = u.clone().requires_grad_(True)
    spike(v, 1.0, 3, surrogate=True, rectifier=4.0).sum().backward()
    plain = u.clone().requires_grad_(True)
    spike(plain, 1.0, 3, surrogate=True).sum().backward()
    assert torch.equal(spike(u, 1.0, 3, True, 4.0), spike(u, 1.0, 3, True))
    mid, edge = (u > 1.45) & (u < 1.55), (u > 1.0) & (u < 1.03)
    assert v.grad[mid].min() > 1.9 and v.grad[edge].max() < 0.3  # large mid-level, small near a count
    assert torch.all(plain.grad[(u > 0) & (u < 3)] == 1.0)


def test_trt_and_tssd_refuse_what_their_method_cannot_do():
    with pytest.raises(ValueError, match="at least 2 timesteps"):
        create_model("trt", n_classes=10, window=2048, timesteps=1, bits=2)
    with pytest.raises(ValueError, match="must exceed"):
        create_model("tssd", n_classes=10, window=2048, timesteps=2, bits=2, teacher_timesteps=2)
    with pytest.raises(ValueError, match="binary"):
        create_model("realspike", n_classes=10, window=2048, timesteps=1, bits=2)
    assert _build("tssd").teacher_timesteps == 2


def test_ssnn_shrinks_timesteps_and_exits_early():
    torch.manual_seed(0)
    model = _build("ssnn").eval()
    assert [b.neurons.timesteps for b in model.blocks] == [4, 2, 1]
    x = torch.randn(6, 1, 2048)
    with torch.no_grad():
        stages = model.stage_logits(x)
        final = model(x)
    logits, stage = model.early_exit(x, threshold=0.0)  # everyone leaves at the first stage
    assert torch.all(stage == 0) and torch.allclose(logits, stages[0])
    logits, stage = model.early_exit(x, threshold=1.1)  # nobody is that sure: all run to the end
    assert torch.all(stage == 2) and torch.allclose(logits, final, atol=1e-6)
    # a mixed exit gives each window the logits of its own exit stage
    p0 = torch.softmax(stages[0], 1).max(1).values
    threshold = float(p0.median())
    logits, stage = model.early_exit(x, threshold)
    for i in range(len(x)):
        assert torch.allclose(logits[i], stages[int(stage[i])][i], atol=1e-6)
    assert (stage == 0).sum() == (p0 >= threshold).sum()


def test_ltl_trains_the_teacher_first_then_the_student_locally():
    torch.manual_seed(0)
    model = _build("ltl").train()
    x, y = torch.randn(8, 1, 2048), torch.randint(0, 10, (8,))
    crit = torch.nn.CrossEntropyLoss()
    loss, logits = model.training_loss(x, y, crit, progress=0.1)
    loss.backward()
    assert logits is None and model.teacher.classifier.weight.grad is not None
    assert model.classifier.weight.grad is None and model.blocks[0].conv.weight.grad is None
    model.zero_grad(set_to_none=True)
    loss, logits = model.training_loss(x, y, crit, progress=0.5)
    loss.backward()
    assert logits.shape == (8, 10) and model.teacher.classifier.weight.grad is None
    assert model.blocks[0].conv.weight.grad is not None and model.encoder.bn.weight.grad is not None
    assert torch.equal(model.classifier.weight, model.teacher.classifier.weight)  # the student starts from it
    # phase 2 is local: the classifier's loss does not reach the last block
    model.zero_grad(set_to_none=True)
    x0 = x.clone()
    _, logits = model.training_loss(x0, y, crit, progress=0.5)
    torch.nn.functional.cross_entropy(logits, y).backward()
    assert model.blocks[-1].conv.weight.grad is None
    # phase 3 fine-tunes end to end
    model.zero_grad(set_to_none=True)
    loss, logits = model.training_loss(x, y, crit, progress=0.9)
    loss.backward()
    assert model.encoder.bn.weight.grad is not None and model.teacher.classifier.weight.grad is None


def test_cwt_front_end_picks_out_the_band_of_a_tone():
    from edgesnn.layers import CWTFrontEnd

    front = CWTFrontEnd(stride=16)
    t = np.arange(2048) / 12000.0
    for f in (800.0, 3000.0):
        x = torch.tensor(np.sin(2 * np.pi * f * t), dtype=torch.float32)[None, None, :]
        energy = front(x)[0, :, 20:-20].mean(dim=1)
        nearest = int(np.argmin(np.abs(np.log(np.array(front.frequencies_hz) / f))))
        assert int(energy.argmax()) == nearest
    assert front(torch.zeros(1, 1, 2048)).shape == (1, 16, 128)


def test_envelope_spectrum_peaks_at_the_defects_characteristic_frequency():
    """Synthetic bearings (physics: strikes at BPFO / BPFI ringing a resonance): the mean over
    bands of the envelope spectrum peaks at the defect's rate, for a small and a large defect."""
    from edgesnn.layers import EnvelopeSpectrum, Standardize
    from edgesnn.sensors.synthetic import Bearing, bearing_signal

    spectrum = EnvelopeSpectrum(2048)
    freqs = np.array(spectrum.frequencies_hz)
    orders = Bearing().defect_orders()
    for fault, order in (("outer_race", orders["bpfo"]), ("inner_race", orders["bpfi"])):
        for severity in (0.5, 3.0):
            x = bearing_signal(fault, seconds=2048 / 12000.0, rpm=1797.0, severity=severity, slip=0.0, seed=5)
            with torch.no_grad():
                s = spectrum(Standardize()(torch.from_numpy(x)[None, None, :]))[0].mean(dim=1).numpy()
            assert abs(freqs[int(s.argmax())] - order * 1797.0 / 60.0) <= 6.0, (fault, severity)
    assert spectrum(torch.zeros(1, 1, 2048)).shape == (1, 64, 16)


@pytest.mark.parametrize("frontend, front", [("cwt", "CWTFrontEnd"), ("envelope", "EnvelopeSpectrum")])
def test_fixed_front_ends_export_as_plain_onnx_but_not_to_the_integer_network(task, tmp_path, frontend, front):
    from edgesnn.export import export
    from edgesnn.firmware_sim.quantize import quantize_mra_snn
    from edgesnn.training import TrainConfig, model_from_checkpoint, train

    cfg = TrainConfig(pack="mra_snn", epochs=1, steps_per_epoch=2, batch_size=8, extra={"frontend": frontend})
    ckpt = train(cfg, data=task)
    model = model_from_checkpoint(ckpt)
    card = json.loads(export(model, ckpt, tmp_path, frontend).read_text())
    assert card["pack_options"] == {"frontend": frontend}
    with pytest.raises(EdgesnnError, match=f"{frontend} front end"):
        quantize_mra_snn(model, ckpt["classes"], task.windows("val").x[:64])
    for name in PACKS:  # every pack on the backbone takes the front end
        assert type(_build(name, frontend=frontend).encoder.front).__name__ == front


def test_both_views_train_and_export(task, tmp_path):
    """frontend=raw+envelope: the raw encoder's and the envelope spectra's spiking blocks side by
    side into one classifier; it trains, exports to ONNX equal to PyTorch (export checks), and is
    refused by packs whose network runs one view. (Its integer network and C: test_quantized.py.)"""
    from edgesnn.export import c_exportable, export, quantizable
    from edgesnn.training import TrainConfig, model_from_checkpoint, train

    cfg = TrainConfig(pack="mra_snn", epochs=1, steps_per_epoch=2, batch_size=8, extra={"frontend": "raw+envelope"})
    ckpt = train(cfg, data=task)
    model = model_from_checkpoint(ckpt)
    assert type(model.encoder).__name__ == "MultiScaleEncoder"
    assert type(model.envelope_view.encoder.front).__name__ == "EnvelopeSpectrum"
    assert model.classifier.in_features == 2 * model.config["channels"]
    card = json.loads(export(model, ckpt, tmp_path, "both").read_text())
    assert card["pack_options"] == {"frontend": "raw+envelope"} and card["onnx_check"]["argmax_agreement"] == 1.0
    assert quantizable(model) and c_exportable(model)
    assert _build("inflor", frontend="raw+envelope").envelope_view is not None
    for name in ("realspike", "ltl", "trt", "tssd", "ssnn"):
        with pytest.raises(ValueError, match="one view"):
            _build(name, frontend="raw+envelope")


def test_the_short_envelope_view_trains_exports_and_is_refused_where_it_does_not_apply(task, tmp_path):
    """envelope_bank=short, envelope_blocks=0: the envelope view's cheap form (short bands, no
    blocks) trains and exports like the Morlet one; the options are refused without both views."""
    from edgesnn.export import c_exportable, export, quantizable
    from edgesnn.training import TrainConfig, model_from_checkpoint, train

    options = {"frontend": "raw+envelope", "envelope_bank": "short", "envelope_blocks": 0}
    ckpt = train(TrainConfig(pack="mra_snn", epochs=1, steps_per_epoch=2, batch_size=8, extra=options), data=task)
    model = model_from_checkpoint(ckpt)
    assert model.envelope_view.encoder.front.cwt.bank.shape == (32, 1, 32) and len(model.envelope_view.blocks) == 0
    card = json.loads(export(model, ckpt, tmp_path, "short").read_text())
    assert card["pack_options"] == options and card["onnx_check"]["argmax_agreement"] == 1.0
    assert quantizable(model) and c_exportable(model)
    for bad, words in [({"envelope_bank": "short"}, "second view"), ({"envelope_bank": "morlet"}, "second view"),
                       ({"envelope_blocks": 1}, "second view"),
                       ({"frontend": "raw+envelope", "envelope_bank": "gabor"}, "envelope_bank must be one of"),
                       ({"frontend": "raw+envelope", "envelope_blocks": 5}, "envelope_blocks"),
                       # its blocks default to the raw view's, which may be more than it takes
                       ({"frontend": "raw+envelope", "blocks": 5}, "set envelope_blocks")]:
        with pytest.raises(ValueError, match=words):
            _build("mra_snn", **bad)


def test_view_dropout_leaves_each_window_at_least_one_view():
    from edgesnn.models.mra_snn import VIEW_DROPOUT

    model = _build("mra_snn", frontend="raw+envelope").train()
    torch.manual_seed(0)
    joined = model.join_views(torch.ones(4000, 3), torch.ones(4000, 3))
    raw_off, envelope_off = joined[:, :3].sum(1) == 0, joined[:, 3:].sum(1) == 0
    assert not (raw_off & envelope_off).any()
    assert abs(raw_off.float().mean() - VIEW_DROPOUT) < 0.03 and abs(envelope_off.float().mean() - VIEW_DROPOUT) < 0.03
    assert torch.equal(model.eval().join_views(torch.ones(5, 3), torch.ones(5, 3)), torch.ones(5, 6))


def test_train_pack_options_from_the_command_line(tmp_path, cwru_dir):
    r = run_cli("train", "--pack", "tssd", "--option", "teacher_timesteps=1", "--data", cwru_dir, "--out", tmp_path)
    assert r.returncode != 0 and "must exceed" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--pack", "inflor", "--option", "nonsense=3", "--out", tmp_path)
    assert r.returncode != 0 and "nonsense" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--pack", "mra_snn", "-o", "frontend=cwt", "--data", cwru_dir, "--epochs", "1",
                "--steps", "2", "--batch-size", "8", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["config"]["extra"] == {"frontend": "cwt"} and ckpt["config"]["timesteps"] == 1


def test_a_list_option_may_be_written_as_edgesnn_packs_shows_it():
    from edgesnn.cli.main import _pack_options

    for written in ("stage_timesteps=4,2,1", "stage_timesteps=[4,2,1]"):
        assert _pack_options("ssnn", [written], 4, 2) == {"stage_timesteps": [4, 2, 1]}
    assert _pack_options("mra_snn", ["frontend=raw+envelope"], 1, 2) == {"frontend": "raw+envelope"}


def test_shipped_pack_models_run_on_the_integer_simulator_and_in_infer(cwru_dir):
    """The packs whose deployed network the integer path covers (the plain MRA-SNN, ssnn's
    shrinking one) ship it: firmware-sim runs it and picks onnxruntime's class (bit for bit where
    the card's graph is the exact one: ssnn's, whose exits are integer rules), and `infer`
    diagnoses a recording with it."""
    from edgesnn.models import shipped_cards

    cards = [p for p in shipped_cards() if p.parent.name in ("realspike", "tssd", "ssnn") and "-int8" in p.stem]
    assert cards, "no shipped integer pack model"
    for card in cards:
        r = run_cli("firmware-sim", "--model", card, "--data", cwru_dir, "--limit", "48", "--json")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["windows"] == 48 and report["onnxruntime_argmax_agreement"] == 1.0
        if json.loads(card.read_text())["onnx_check"]["graph"].startswith("exact"):
            assert report["onnxruntime_bit_exact_windows"] == 48
        r = run_cli("infer", cwru_dir / "12k_Drive_End_IR014_0_169.mat", "--fs", "12000", "--model", card, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["summary"]["label"] == "inner_race_014"


def test_device_budget_of_ssnn_when_every_window_leaves_at_the_first_stage():
    """Later stages that no window reached cost nothing (they have no counters to read)."""
    from edgesnn.card import read_card
    from edgesnn.firmware_sim.budget import operations
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.models import shipped_cards

    card = next(p for p in shipped_cards() if p.parent.name == "ssnn" and "-int8" in p.stem)
    net = IntMRASNN.from_card(card, read_card(card))
    stats = {}
    net.q8_logits(np.random.default_rng(0).normal(0, 0.1, (4, net.window)).astype(np.float32), stats, exit_threshold=0.0)
    ops = operations(net, stats)
    assert stats["block0_windows"] == 4 and "block1_windows" not in stats
    assert ops["snn_mac"] > 0 and set(ops["spike_density"]) == {0, 1, 2} and ops["spike_density"][2] == 0


def test_ssnn_onnx_exits_early_per_window(tmp_path):
    """The exported graph gives each window the logits of the first stage where it is sure, in
    any batch, as PyTorch's early_exit does; the threshold is an optional input (above 1: every
    stage, 0: the first)."""
    import onnx
    import onnxruntime as ort

    from edgesnn.export import export

    torch.manual_seed(0)
    model = _build("ssnn").eval()
    ckpt = {"config": {"pack": "ssnn", "task": "cwru10", "window": 2048, "timesteps": 0, "bits": 2, "seed": 0,
                       "epochs": 0, "steps_per_epoch": 0, "batch_size": 0, "lr": 0, "noise": False,
                       "snr_range_db": [0, 0], "noise_fraction": 0}, "classes": [f"normal_{i}" for i in range(10)]}
    card = json.loads(export(model, ckpt, tmp_path, "ssnn").read_text())
    assert card["early_exit"]["threshold"] == 0.9 and card["timesteps"] == 4
    graph = onnx.load(str(tmp_path / "ssnn.onnx")).graph
    assert [n.op_type for n in graph.node].count("If") == 1 and [i.name for i in graph.input] == ["acceleration", "exit_threshold"]
    session = ort.InferenceSession(str(tmp_path / "ssnn.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(6, 1, 2048)
    with torch.no_grad():
        stages = model.stage_logits(x)
    run = lambda b, t: session.run(None, {"acceleration": b, "exit_threshold": np.array(t, np.float32)})[0]  # noqa: E731
    for threshold, want in ((2.0, stages[-1]), (0.0, stages[0])):
        np.testing.assert_allclose(run(x.numpy(), threshold), want.numpy(), atol=1e-4)
    # a threshold between the windows' first-stage confidences: each window its own exit
    p0 = torch.softmax(stages[0], 1).max(1).values
    between = float(p0.median())
    want, stage = model.early_exit(x, between)
    assert 0 < int((stage == 0).sum()) < len(x)
    np.testing.assert_allclose(run(x.numpy(), between), want.numpy(), atol=1e-4)
    for i in range(len(x)):  # the same alone as in the batch
        np.testing.assert_allclose(run(x[i : i + 1].numpy(), between)[0], want[i].numpy(), atol=1e-4)


def test_ssnn_integer_network_exits_per_window_bit_for_bit_with_onnxruntime(task, tmp_path, cwru_dir):
    """ssnn's shrinking network with its early exit, as integers: the exported graph gives each
    window the logits of its own exit stage, whatever batch it comes in, bit for bit with the
    simulator; firmware-sim reports where windows left; the C export refuses it in one line."""
    from edgesnn.card import read_card
    from edgesnn.export import export_measured
    from edgesnn.firmware_sim.c_export import c_sources
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.runtime import onnx_session
    from edgesnn.training import TrainConfig, model_from_checkpoint, train

    cfg = TrainConfig(pack="ssnn", epochs=1, steps_per_epoch=3, batch_size=8, timesteps=4, bits=2, threads=1)
    ckpt = train(cfg, data=task)
    card_path = export_measured(model_from_checkpoint(ckpt), ckpt, tmp_path, "ssnn-int8", task, quantize=True)
    card = read_card(card_path)
    assert card["stage_timesteps"] == [4, 2, 1] and "integer confidence" in card["early_exit"]["rule"]
    assert card["onnx_check"]["exit_thresholds_checked"] == [0.9, 2.0, 0.0]
    net = IntMRASNN.from_card(card_path, card)
    x = task.windows("test").x[::20].astype(np.float32)
    first = net.q8_logits(x, exit_threshold=0.0)  # every window leaves at the first stage
    # a threshold between the windows' first-stage confidences: some leave there, some go on
    sums = net.exp_table[np.minimum((first.max(1, keepdims=True) - first) >> 4, len(net.exp_table) - 1)].sum(1)
    threshold = float(2**15 / np.median(sums))
    stats = {}
    ours = net.q8_logits(x, stats, exit_threshold=threshold)
    assert 0 < stats["exit0_windows"] < len(x) and sum(stats.get(f"exit{k}_windows", 0) for k in range(3)) == len(x)
    leave = net.sure(first, net.exit_limit(threshold))
    assert np.array_equal(ours[leave], first[leave]) and not np.array_equal(ours[~leave], first[~leave])
    session = onnx_session(str(card_path.with_suffix(".onnx")))
    feed = {"exit_threshold": np.array(threshold, dtype=np.float32)}
    batch = session.run(None, {"acceleration": x[:, None]} | feed)[0] * 256
    one_by_one = np.concatenate([session.run(None, {"acceleration": x[i : i + 1, None]} | feed)[0] for i in range(len(x))]) * 256
    assert np.array_equal(batch, ours) and np.array_equal(one_by_one, ours)
    r = run_cli("firmware-sim", "--model", card_path, "--data", cwru_dir, "--limit", "40", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["onnxruntime_bit_exact_windows"] == report["windows"] == 40
    assert abs(sum(report["operations"]["exit_share"].values()) - 1) < 1e-9
    with pytest.raises(EdgesnnError, match="plain MRA-SNN"):
        c_sources(net, "ssnn")


def test_export_c_refuses_ssnn_before_writing_anything(tmp_path, cwru_dir):
    """`export --quantize --c` of an ssnn checkpoint is refused in one line before any file is
    written: a failed export leaves no model behind (it used to write the ONNX, card and .npz,
    then fail at the C source)."""
    r = run_cli("train", "--pack", "ssnn", "--data", cwru_dir, "--epochs", "1", "--steps", "1",
                "--batch-size", "8", "--threads", "1", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "export"
    r = run_cli("export", tmp_path / "run" / "checkpoint.pt", "--quantize", "--c", "--data", cwru_dir, "--out", out)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "early exits" in lines[0], r.stderr
    assert not out.exists() or not any(out.iterdir())
