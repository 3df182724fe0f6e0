"""The integer network: export --quantize (int8 ONNX, exact integer spikes: the gateway graph,
checked by class against the integer simulator, or the exact graph, bit for bit) and --c (C99,
bit for bit), and `edgesnn firmware-sim` on real CWRU windows (tiny run; the shipped default's
integer network where agreement needs a trained network)."""

import json
import math
import shutil
import subprocess

import numpy as np
import pytest

from conftest import run_cli, train_tiny
from edgesnn.firmware_sim.arith import Requant, requantize


def test_requantize_is_floor_arithmetic_on_negative_values():
    rq = Requant.from_real(np.array([0.3, -1.7]), np.array([5.0, -2.0]))
    assert np.all(np.abs(rq.m) < 2**15) and np.all(rq.shift >= 1)
    acc = np.array([[-1000, 999], [7, -3]])
    got = requantize(acc, rq, axis=1)
    want = np.floor((acc * rq.m + 2.0 ** (rq.shift - 1)) / 2.0**rq.shift) + rq.bias
    np.testing.assert_array_equal(got, want.astype(np.int64))
    assert abs(rq.m[0] / 2.0 ** rq.shift[0] - 0.3) < 0.3 * 2**-14


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, cwru_dir):
    out = tmp_path_factory.mktemp("int8")
    checkpoint = train_tiny(out / "train", cwru_dir, steps=4, timesteps=2)
    r = run_cli("export", checkpoint, "--quantize", "--data", cwru_dir, "--out", out / "model",
                "--name", "tiny-int8", "--c")
    assert r.returncode == 0, r.stderr
    return out / "model"


def test_quantized_export_checks_against_the_simulator_and_card_says_so(quantized, cwru_dir):
    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.firmware_sim.network import IntMRASNN, to_int16
    from edgesnn.runtime import Diagnoser

    card = read_card(quantized / "tiny-int8.json")
    check = card["onnx_check"]
    assert check["graph"].startswith("gateway") and check["real_windows"] > 0
    assert check["real_argmax_agreement"] >= 0.999
    q = card["quantization"]
    assert q["firmware"] == "tiny-int8.npz" and "int8" in q["weights"] and q["calibration_windows"] == 4096
    assert "not bit for bit" in q["onnx_graph"]
    assert card["metrics"]["test_windows"] == 621 and "snr_-4db_accuracy" in card["metrics"]
    assert set(q["float_metrics"]) == set(card["metrics"])
    # int8 weights in the file; spikes as uint8 tensors read through DequantizeLinear, scale 1
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(quantized / "tiny-int8.onnx")).graph
    inits = {t.name: t for t in graph.initializer}
    int8 = [t for t in inits.values() if t.data_type == onnx.TensorProto.INT8]
    assert sum(int(np.prod(t.dims)) for t in int8) > 20_000
    uint8 = {n.output[0] for n in graph.node if n.op_type == "Cast" and n.attribute[0].i == onnx.TensorProto.UINT8}
    spike_reads = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in uint8]
    assert len(uint8) >= 4 and {numpy_helper.to_array(inits[n.input[1]]).item() for n in spike_reads} == {1.0, 256.0}
    # independently: onnxruntime and the simulator on real test windows (T = 2: membranes carried
    # from step to step), the logits a fraction of a spike's weight apart
    test = load_task(cwru_dir, "cwru10", 2048).windows("test")
    x = test.x[::20]
    net = IntMRASNN.load(quantized / "tiny-int8.npz")
    np.testing.assert_allclose(Diagnoser(quantized / "tiny-int8.json").logits(x) * 256, net.run(to_int16(x)), atol=16)


def test_gateway_graph_of_the_shipped_network_picks_the_simulators_class_on_real_windows(cwru_dir, tmp_path):
    """A trained network, where classes are not ties: the shipped default's integer network on
    the test region, clean (the issue's bar: 99.9 %) and at -4 dB, where a few windows are near
    ties between two classes."""
    from edgesnn.card import default_card_path
    from edgesnn.dataset import load_task
    from edgesnn.evaluation import add_noise
    from edgesnn.firmware_sim.gateway_graph import build_gateway_onnx
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.runtime import onnx_session

    import onnx

    net = IntMRASNN.load(default_card_path().with_suffix(".npz"))
    onnx.save(build_gateway_onnx(net), str(tmp_path / "g.onnx"))
    session = onnx_session(str(tmp_path / "g.onnx"))
    test = load_task(cwru_dir, "cwru10", 2048).windows("test")
    for x, bar in ((test.x, 0.999), (add_noise(test.x, -4, np.random.default_rng(0)), 0.99)):
        theirs = np.concatenate([session.run(None, {"acceleration": x[i : i + 64, None].astype(np.float32)})[0]
                                 for i in range(0, len(x), 64)])
        ours = net.q8_logits(x)
        assert np.mean(theirs.argmax(1) == ours.argmax(1)) >= bar
        assert abs(np.mean(theirs.argmax(1) == test.y) - np.mean(ours.argmax(1) == test.y)) <= 1 - bar
    # blind to gain, as the firmware is, over the range the runtime diagnoses (RMS >= 1e-6 g)
    x = test.x[::31]
    for gain in (1e-5, 1e4, 1e9):
        z = session.run(None, {"acceleration": (x * gain)[:, None].astype(np.float32)})[0]
        assert np.array_equal(z.argmax(1), net.q8_logits(x).argmax(1))


def test_a_gateway_graph_that_disagrees_gives_way_to_the_exact_graph(quantized, cwru_dir, tmp_path, monkeypatch):
    from edgesnn.dataset import load_task
    from edgesnn.firmware_sim import gateway_graph
    from edgesnn.firmware_sim.network import IntMRASNN
    from edgesnn.firmware_sim.onnx_graph import write_checked
    from edgesnn.runtime import Diagnoser

    monkeypatch.setattr(gateway_graph, "MIN_AGREEMENT", 1.01)  # no graph agrees that well
    net = IntMRASNN.load(quantized / "tiny-int8.npz")
    val = load_task(cwru_dir, "cwru10", 2048).windows("val").x[:32]
    check = write_checked(net, tmp_path / "exact.onnx", val, n_random=16)
    assert check["graph"].startswith("exact") and check["gateway_real_argmax_agreement"] <= 1.0
    assert check["bit_exact_windows"] == check["windows"] == 48
    from edgesnn.export import exact_graph_fallback

    assert "slower exact graph" in exact_graph_fallback({"onnx_check": check})
    assert exact_graph_fallback(json.loads((quantized / "tiny-int8.json").read_text())) is None
    # the exact graph computes what the simulator computes, bit for bit
    card = json.loads((quantized / "tiny-int8.json").read_text())
    shutil.copy(tmp_path / "exact.onnx", tmp_path / "tiny-int8.onnx")
    from edgesnn.sensors.cwru import sha256_of

    card["onnx_sha256"] = sha256_of(tmp_path / "tiny-int8.onnx")
    (tmp_path / "tiny-int8.json").write_text(json.dumps(card))
    np.testing.assert_array_equal(Diagnoser(tmp_path / "tiny-int8.json").logits(val) * 256, net.q8_logits(val))


def test_firmware_sim_reports_the_budget_on_real_windows(quantized, cwru_dir):
    r = run_cli("firmware-sim", "--model", quantized / "tiny-int8.json", "--data", cwru_dir, "--limit", "64", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["windows"] == 64 and rep["onnxruntime_argmax_agreement"] == 1.0
    assert 0 <= rep["onnxruntime_bit_exact_windows"] <= 64 and rep["onnxruntime_max_logit_difference"] < 0.1
    assert 0.0 <= rep["accuracy"] <= 1.0
    assert 20_000 < rep["flash_bytes"]["total"] < 256 * 1024 and 0 < rep["ram_bytes"]["peak"] < 64 * 1024
    ops = rep["operations"]
    assert ops["snn_ac"] > 0 and ops["ann_mac"] > ops["snn_mac"] > 0
    assert rep["energy_pj"]["snn_int8"] > 0 and [m["mcu"] for m in rep["mcu"]][0].startswith("Cortex-M4")
    r = run_cli("firmware-sim", "--model", quantized.parent / "nope.json")
    assert r.returncode == 2 and r.stderr.startswith("error:")


def test_firmware_sim_limit_takes_windows_of_every_class(cwru_dir):
    """The test region is ordered by class: its first 64 windows are all ball_007, so --limit
    must sample every class (else the accuracy is one class's and a detector has no AUROC)."""
    r = run_cli("firmware-sim", "--model", "esvae-cwru-normal-int8", "--data", cwru_dir, "--limit", "20", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["windows"] == 20 and rep["auroc"] == 1.0 and 0.0 < rep["alarm_share"] < 1.0
    # apart, as a plant reads them: no healthy window alarms, every fault window does
    assert rep["false_alarm_share"] == 0.0 and rep["fault_alarm_share"] == 1.0


def test_infer_runs_the_quantized_model(quantized, cwru_dir):
    r = run_cli("infer", cwru_dir / "12k_Drive_End_IR007_0_105.mat", "--fs", "12000", "--model",
                quantized / "tiny-int8.json", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["windows"] == 59


RUNNER = r"""
#include <stdio.h>
#include "tiny-int8.h"
int main(void) {
  int16_t x[EDGESNN_WINDOW];
  int32_t z[EDGESNN_CLASSES];
  while (fread(x, sizeof x, 1, stdin) == 1) {
    edgesnn_infer(x, z);
    fwrite(z, sizeof z, 1, stdout);
  }
  return 0;
}
"""


@pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("size")), reason="needs gcc and binutils")
def test_c_export_compiles_clean_and_is_bit_exact_with_the_simulator(quantized, cwru_dir, tmp_path):
    from edgesnn.firmware_sim.network import IntMRASNN

    _compile_and_compare(IntMRASNN.load(quantized / "tiny-int8.npz"), quantized, "tiny-int8", cwru_dir, tmp_path)


def _compile_and_compare(net, folder, name, cwru_dir, tmp_path):
    """gcc -Werror on `folder`/`name`.c, its logits bit for bit the simulator's on real test windows
    and random ones, and its memory the budget's."""
    from edgesnn.dataset import load_task
    from edgesnn.firmware_sim import budget
    from edgesnn.firmware_sim.network import to_int16

    source = (folder / f"{name}.c").read_text()
    assert "malloc" not in source and "float" not in source and "double" not in source
    cc = ["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{folder}"]
    r = subprocess.run([*cc, "-c", str(folder / f"{name}.c"), "-o", str(tmp_path / "model.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (tmp_path / "main.c").write_text(RUNNER.replace("tiny-int8.h", f"{name}.h"))
    r = subprocess.run([*cc, str(tmp_path / "main.c"), str(tmp_path / "model.o"), "-o", str(tmp_path / "run")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    test = load_task(cwru_dir, "cwru10", 2048).windows("test")
    rng = np.random.default_rng(3)
    x16 = np.concatenate([to_int16(test.x[::10]), rng.integers(-32768, 32767, (4, 2048)).astype(np.int16)])
    run = subprocess.run([str(tmp_path / "run")], input=x16.astype("<i2").tobytes(), capture_output=True, timeout=120)
    assert run.returncode == 0
    np.testing.assert_array_equal(np.frombuffer(run.stdout, "<i4").reshape(len(x16), -1), net.run(x16))
    # the object's memory is the budget's: static buffers (.bss) and const tables (.rodata)
    sizes = dict(line.split()[:2] for line in subprocess.run(["size", "-A", str(tmp_path / "model.o")],
                 capture_output=True, text=True).stdout.splitlines() if line.startswith("."))
    ram, flash = budget.ram_bytes(net), budget.flash_bytes(net)
    assert 0 <= int(sizes[".bss"]) - ram["static"] <= 64, (sizes, ram)
    assert flash["total"] <= int(sizes[".rodata"]) <= 1.05 * flash["total"], (sizes, flash)


def test_export_warns_when_the_integer_network_loses_accuracy():
    """`export --quantize` names an integer network clearly less accurate than its float one (a
    pack trained with another seed lost 0.8 points clean this way), and stays quiet within 0.3."""
    from edgesnn.export import integer_loss

    card = {"metrics": {"test_accuracy": 0.9887}, "quantization": {"float_metrics": {"test_accuracy": 0.9968}}}
    warning = integer_loss(card)
    assert warning and "0.81 points" in warning and "without --quantize" in warning
    card["metrics"]["test_accuracy"] = 0.9952
    assert integer_loss(card) is None
    assert integer_loss({"metrics": {"test_auroc": 1.0}, "quantization": {"float_metrics": {}}}) is None


def test_a_graph_that_fails_its_check_leaves_the_file_it_would_replace(quantized, cwru_dir, tmp_path, monkeypatch):
    from edgesnn.dataset import load_task
    from edgesnn.errors import EdgesnnError
    from edgesnn.firmware_sim import gateway_graph, onnx_graph
    from edgesnn.firmware_sim.network import IntMRASNN

    monkeypatch.setattr(gateway_graph, "MIN_AGREEMENT", 1.01)
    real_compare = onnx_graph._compare
    monkeypatch.setattr(onnx_graph, "_compare", lambda *a: (real_compare(*a)[0], 1))  # one window differs
    shipped = tmp_path / "model.onnx"
    shipped.write_bytes(b"the model a monitor is running")
    val = load_task(cwru_dir, "cwru10", 2048).windows("val").x[:8]
    with pytest.raises(EdgesnnError, match="model.onnx not written: onnxruntime and the integer simulator differ on 1 of .*the gateway graph, tried first"):
        onnx_graph.write_checked(IntMRASNN.load(quantized / "tiny-int8.npz"), shipped, val, n_random=4)
    assert shipped.read_bytes() == b"the model a monitor is running" and list(tmp_path.iterdir()) == [shipped]


def test_an_export_that_replaces_a_model_leaves_none_of_its_files(quantized, cwru_dir, tmp_path):
    """A model exported again without --c (or without --quantize) replaces the whole model: the
    earlier <name>.c/.h (and .npz) computed the earlier network, not the new card's."""
    out = tmp_path / "model"
    shutil.copytree(quantized, out)
    assert {"tiny-int8.c", "tiny-int8.h"} <= {f.name for f in out.iterdir()}
    checkpoint = quantized.parent / "train" / "checkpoint.pt"
    r = run_cli("export", checkpoint, "--quantize", "--data", cwru_dir, "--out", out, "--name", "tiny-int8")
    assert r.returncode == 0, r.stderr
    assert sorted(f.name for f in out.iterdir()) == ["tiny-int8.json", "tiny-int8.npz", "tiny-int8.onnx"]
    r = run_cli("export", checkpoint, "--data", cwru_dir, "--out", out, "--name", "tiny-int8")
    assert r.returncode == 0, r.stderr
    assert sorted(f.name for f in out.iterdir()) == ["tiny-int8.json", "tiny-int8.onnx"]


# the envelope view's two forms: Morlet bands with three blocks, short bands with none
VIEW_FORMS = {"morlet": {}, "short": {"envelope_bank": "short", "envelope_blocks": 0}}


@pytest.fixture(scope="module", params=list(VIEW_FORMS))
def both_views(cwru_dir, request):
    """A small untrained MRA-SNN with both views whose batch norms have seen real training windows
    (cumulative statistics, gains of 2: every stage of both views fires), and its integer network."""
    torch = pytest.importorskip("torch")
    from edgesnn.dataset import load_task
    from edgesnn.firmware_sim.quantize import quantize_mra_snn
    from edgesnn.models.mra_snn import MRASNN

    torch.manual_seed(0)
    task = load_task(cwru_dir, "cwru10", 2048)
    x, _ = task.sample_train(256, np.random.default_rng(0))
    model = MRASNN(frontend="raw+envelope", channels=16, **VIEW_FORMS[request.param])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = None
            m.reset_running_stats()
            torch.nn.init.constant_(m.weight, 2.0)
    with torch.no_grad():
        for i in range(0, len(x), 64):
            model.train()(torch.from_numpy(x[i : i + 64, None]))
    return model.eval(), quantize_mra_snn(model, task.classes, x), task


def test_the_integer_envelope_spectrum_is_the_float_one_on_real_windows(both_views):
    import torch

    from edgesnn.firmware_sim.envelope import centered, isqrt, quantize_spectrum
    from edgesnn.firmware_sim.network import to_int16
    from edgesnn.layers import Standardize

    v = np.array([0, 1, 2, 3, 15, 16, 17, 2**40 - 1, 2**40, 2**62 + 12345], dtype=np.int64)
    assert [int(r) for r in isqrt(v)] == [math.isqrt(int(a)) for a in v]
    model, net, task = both_views
    x = task.windows("test").x[::10]
    front = model.envelope_view.encoder.front
    spectrum, unit = quantize_spectrum(front, centered(to_int16(task.windows("train").x[::50])))
    got = spectrum(centered(to_int16(x))) * unit[None, :, None]
    with torch.no_grad():
        want = front(Standardize()(torch.from_numpy(x[:, None]))).numpy()
    err = np.linalg.norm((got - want).reshape(len(x), -1), axis=1) / np.linalg.norm(want.reshape(len(x), -1), axis=1)
    assert np.median(err) < 0.02 and err.max() < 0.04  # measured: 1.2 % and 2.3 %


def test_both_views_as_integers_store_run_cost_and_compile(both_views, cwru_dir, tmp_path):
    import onnx

    from edgesnn.errors import EdgesnnError
    from edgesnn.firmware_sim import budget
    from edgesnn.firmware_sim.c_export import write_c
    from edgesnn.firmware_sim.gateway_graph import build_gateway_onnx
    from edgesnn.firmware_sim.network import IntMRASNN, to_int16
    from edgesnn.firmware_sim.onnx_graph import build_onnx
    from edgesnn.runtime import onnx_session

    _, net, task = both_views
    v = task.windows("val").x[::4]
    stats = {}
    q8 = net.run(to_int16(v), stats)
    blocks = len(net.envelope.blocks)
    assert min((stats[f"env_block{k}_input_spikes"] for k in range(blocks)), default=1) > 0
    assert net.envelope.count_shift == blocks  # the raw view's length at the classifier is 16
    net.save(tmp_path / "both.npz")
    again = IntMRASNN.load(tmp_path / "both.npz")
    np.testing.assert_array_equal(again.q8_logits(v), q8)
    # the gateway graph computes the envelope in float32: the classes of an untrained network
    # (near ties) mostly, the logits to a few spikes
    onnx.save(build_gateway_onnx(net), str(tmp_path / "both.onnx"))
    theirs = onnx_session(str(tmp_path / "both.onnx")).run(None, {"acceleration": v[:, None]})[0]
    assert np.mean(theirs.argmax(1) == q8.argmax(1)) >= 0.9  # measured 0.957
    assert np.median(np.abs(theirs - q8 / 256)) < 0.05
    b = budget.budget(net, stats, 12000.0)
    ops = b["operations"]
    frames = 2048 // net.envelope.spectrum.stride  # 256 Morlet envelope samples, pair-averaged; 128 short
    assert ops["envelope_isqrt"] == 16 * (frames + 64) and ops["envelope_divisions"] == 16 * 128
    assert set(ops.get("envelope_spike_density", {})) == set(range(blocks))  # absent, not empty, without blocks
    assert ops["snn_mac"] > 2 * 16 * frames * 11  # at least the shortest kernel's products
    assert any(k.startswith("envelope view") for k in b["ram_bytes"]["buffers"])
    with pytest.raises(EdgesnnError, match="envelope view"):
        build_onnx(net)
    # the C export: both views, bit for bit, in the budget's memory
    write_c(net, tmp_path / "c", "both")
    _compile_and_compare(net, tmp_path / "c", "both", cwru_dir, tmp_path)


def test_a_both_views_gateway_graph_is_kept_on_near_ties_only(both_views, tmp_path, monkeypatch):
    """No exact graph carries the envelope view, so where the gateway graph disagrees with the
    simulator it is kept only if those windows are near ties, and few: the card counts them; a
    lead the float32 membranes cannot explain, or too many, refuses the export in one line."""
    from edgesnn.errors import EdgesnnError
    from edgesnn.firmware_sim import gateway_graph, onnx_graph

    _, net, task = both_views
    val = task.windows("val").x[::4]  # the untrained network disagrees on a few of them (near ties)
    monkeypatch.setattr(gateway_graph, "MIN_AGREEMENT", 1.01)  # agreement alone never suffices
    monkeypatch.setattr(gateway_graph, "MAX_NEAR_TIE_SHARE", 1.0)
    monkeypatch.setattr(gateway_graph, "NEAR_TIE_LOGITS", 100.0)
    check = onnx_graph.write_checked(net, tmp_path / "kept.onnx", val, n_random=4)
    assert check["graph"].startswith("gateway") and check["real_near_tie_disagreements"] >= 1
    assert round((1 - check["real_argmax_agreement"]) * len(val)) == check["real_near_tie_disagreements"]
    assert "real_disagreement_leads" not in check
    monkeypatch.setattr(gateway_graph, "NEAR_TIE_LOGITS", 1e-6)
    with pytest.raises(EdgesnnError, match=r"refused.onnx not written: the gateway graph picked another class than "
                                           r"the integer network on \d+ of \d+ real windows, where .* led by up to"):
        onnx_graph.write_checked(net, tmp_path / "refused.onnx", val, n_random=4)
    monkeypatch.setattr(gateway_graph, "NEAR_TIE_LOGITS", 100.0)
    monkeypatch.setattr(gateway_graph, "MAX_NEAR_TIE_SHARE", 0.0)
    with pytest.raises(EdgesnnError, match="near ties .* on at most 0% of the windows"):
        onnx_graph.write_checked(net, tmp_path / "refused.onnx", val, n_random=4)
    assert not (tmp_path / "refused.onnx").exists()
