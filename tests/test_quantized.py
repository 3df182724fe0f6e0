"""The integer network: export --quantize (int8 ONNX, exact integer spikes) and --c (C99) checked
bit for bit against the integer simulator, and `edgesnn firmware-sim` on real CWRU windows (tiny
run)."""

import json
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


def test_quantized_export_is_bit_exact_with_the_simulator_and_card_says_so(quantized, cwru_dir):
    from edgesnn.card import read_card
    from edgesnn.dataset import load_task
    from edgesnn.firmware_sim.network import IntMRASNN, to_int16
    from edgesnn.runtime import Diagnoser

    card = read_card(quantized / "tiny-int8.json")
    check = card["onnx_check"]
    assert check["bit_exact_windows"] == check["windows"] and check["real_windows"] > 0
    q = card["quantization"]
    assert q["firmware"] == "tiny-int8.npz" and "int8" in q["weights"] and q["calibration_windows"] == 4096
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
    # independently: onnxruntime and the simulator on real test windows, bit for bit
    test = load_task(cwru_dir, "cwru10", 2048).windows("test")
    x = test.x[::20]
    net = IntMRASNN.load(quantized / "tiny-int8.npz")
    np.testing.assert_array_equal(Diagnoser(quantized / "tiny-int8.json").logits(x) * 256, net.run(to_int16(x)))


def test_firmware_sim_reports_the_budget_on_real_windows(quantized, cwru_dir):
    r = run_cli("firmware-sim", "--model", quantized / "tiny-int8.json", "--data", cwru_dir, "--limit", "64", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["windows"] == 64 and rep["onnxruntime_bit_exact_windows"] == 64
    assert 0.0 <= rep["accuracy"] <= 1.0
    assert 20_000 < rep["flash_bytes"]["total"] < 256 * 1024 and 0 < rep["ram_bytes"]["peak"] < 64 * 1024
    ops = rep["operations"]
    assert ops["snn_ac"] > 0 and ops["ann_mac"] > ops["snn_mac"] > 0
    assert rep["energy_pj"]["snn_int8"] > 0 and [m["mcu"] for m in rep["mcu"]][0].startswith("Cortex-M4")
    r = run_cli("firmware-sim", "--model", quantized.parent / "nope.json")
    assert r.returncode == 2 and r.stderr.startswith("error:")


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
    from edgesnn.dataset import load_task
    from edgesnn.firmware_sim import budget
    from edgesnn.firmware_sim.network import IntMRASNN, to_int16

    source = (quantized / "tiny-int8.c").read_text()
    assert "malloc" not in source and "float" not in source and "double" not in source
    cc = ["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{quantized}"]
    r = subprocess.run([*cc, "-c", str(quantized / "tiny-int8.c"), "-o", str(tmp_path / "model.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (tmp_path / "main.c").write_text(RUNNER)
    r = subprocess.run([*cc, str(tmp_path / "main.c"), str(tmp_path / "model.o"), "-o", str(tmp_path / "run")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    net = IntMRASNN.load(quantized / "tiny-int8.npz")
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
