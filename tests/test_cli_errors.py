"""Bad input to any command: one line on stderr naming what and where, exit code 2, no traceback."""

import json
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import scipy.io
from scipy.io import wavfile

from conftest import CWRU, run_cli, untrained_checkpoint
from edgesnn.errors import EdgesnnError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    sig = np.random.default_rng(0).standard_normal(12_000).astype(np.float32)
    np.save(d / "ok.npy", sig)
    nan = sig.copy()
    nan[7] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "short.npy", sig[:1000])
    wavfile.write(d / "one.wav", 12_000, np.array([100], np.int16))
    wavfile.write(d / "slow.wav", 8_000, (sig * 3000).astype(np.int16))
    np.save(d / "dead.npy", np.zeros(12_000, np.float32))
    np.save(d / "huge.npy", sig * 1e8)  # not in g: no accelerometer reads 1e8 g
    scipy.io.savemat(d / "two.mat", {"a": sig[:, None], "b": sig[:, None]})
    (d / "data.xlsx").write_bytes(b"PK\x03\x04")
    (d / "broken.json").write_text("{not json")
    (d / "gap.csv").write_text("acc\n0.1\nnan\n" + "\n".join(f"{v:.5f}" for v in sig))
    return d


CASES = {
    "missing file": (["infer", "{d}/none.npy", "--fs", "12000"], "none.npy: recording not found"),
    "unsupported format": (["infer", "{d}/data.xlsx", "--fs", "12000"], "unsupported format .xlsx"),
    "unknown variable": (["infer", "{d}/two.mat", "--fs", "12000", "--variable", "c"], "no numeric variable 'c'"),
    "ambiguous variable": (["infer", "{d}/two.mat", "--fs", "12000"], "choose one with --variable"),
    "NaN samples": (["infer", "{d}/nan.npy", "--fs", "12000"], "NaN or infinite samples (first at index 7)"),
    "no sample rate": (["infer", "{d}/ok.npy"], "no sample rate"),
    "not in g": (["infer", "{d}/huge.npy", "--fs", "12000"], "no accelerometer measures more than 1e+06 g"),
    "dead sensor": (["infer", "{d}/dead.npy", "--fs", "12000"], "no vibration in any window (constant signal)"),
    "absurd sample rate": (["infer", "{d}/ok.npy", "--fs", "12"], "outside"),
    "too short": (["infer", "{d}/short.npy", "--fs", "12000"], "shorter than one"),
    "sampled below the model's rate": (["infer", "{d}/slow.wav"], "slow.wav: sampled at 8000 Hz, below the model's "
                                                                  "12000 Hz: it lacks the band from 4000 to 6000 Hz"),
    "one sample": (["infer", "{d}/one.wav"], "one.wav: 1 sample (8.33e-05 s) of signal at 12000 Hz is shorter "
                                             "than one 2048-sample (0.171 s) window"),
    "broken card": (["infer", "{d}/ok.npy", "--fs", "12000", "--model", "{d}/broken.json"], "not valid JSON"),
    "missing card": (["infer", "{d}/ok.npy", "--fs", "12000", "--model", "{d}/no.json"], "model card not found"),
    "unknown model name": (["infer", "{d}/ok.npy", "--fs", "12000", "--model", "nope"],
                           "no shipped model has that name (shipped: esvae-cwru-normal,"),
    "unknown pack": (["train", "--pack", "nope", "--out", "{d}/t"], "unknown model pack 'nope'"),
    "missing checkpoint": (["eval", "{d}/none.pt"], "none.pt: checkpoint not found"),
    "not a checkpoint": (["export", "{d}/ok.npy"], "not a readable checkpoint"),
    "missing data folder": (["train", "--data", "{d}/nodata", "--out", "{d}/t"], "data folder not found"),
    "train into a file": (["train", "--out", "{d}/ok.npy"], "ok.npy: cannot write the results there (a file, not a "
                                                            "folder)"),
    "train under a file": (["train", "--out", "{d}/ok.npy/run"], "cannot write the results there ({d}/ok.npy is a "
                                                                "file)"),
    "negative seed": (["train", "--seed", "-1", "--out", "{d}/t"], "-1 is not in the range"),
    "loads not numbers": (["train", "--loads", "0;1", "--out", "{d}/t"], "Invalid value for --loads: '0;1' is not a"),
    "loads naming none": (["train", "--loads", ",", "--out", "{d}/t"], "Invalid value for --loads: ',' names no value"),
    "sizes not numbers": (["train", "--sizes", "7mils", "--out", "{d}/t"], "Invalid value for --sizes: '7mils'"),
    "absurd batch": (["train", "--batch-size", "1000000000", "--out", "{d}/t"], "is not in the range"),
    "a word for a bounded number": (["train", "--path-share", "half", "--out", "{d}/t"],
                                    "Invalid value for '--path-share': 'half' is not a valid float. ("),
    "impossible channels": (["train", "-o", "channels=-4", "--out", "{d}/t"], "channels must be a whole number from 1"),
    "too many channels": (["train", "-o", "channels=100000", "--out", "{d}/t"],
                          "channels must be a whole number from 1 up to 1024, not 100000"),
    "not a boolean": (["train", "-o", "dendritic=maybe", "--out", "{d}/t"], "dendritic must be true or false"),
    "too few timesteps for the pack": (["train", "--pack", "esvae", "--timesteps", "1", "--out", "{d}/t"],
                                       "Invalid value for '--timesteps' / '--bits': pack esvae: the latent is"),
    "no exit threshold": (["train", "--pack", "ssnn", "-o", "exit_threshold=nan", "--out", "{d}/t"],
                          "exit_threshold (a softmax probability) must be a number above 0"),
    "unsupported broker": (["monitor", "--broker", "https://x", "--journal", "{d}/j.sqlite"], "use mqtt://HOST:PORT"),
    "unclosed IPv6 broker": (["monitor", "--broker", "mqtt://[::1", "--journal", "{d}/j.sqlite"],
                             "mqtt://[::1: not a broker URL (Invalid IPv6 URL)"),
    "broker down": (["monitor", "--broker", "mqtt://127.0.0.1:1", "--journal", "{d}/j.sqlite"],
                    "mqtt://127.0.0.1:1: cannot connect to the broker"),
    "model folder missing": (["monitor", "--broker", "mqtt://127.0.0.1:1", "--model-dir", "{d}/nomodels",
                              "--journal", "{d}/j.sqlite"], "nomodels: model folder not found"),
    "model folder is a file": (["monitor", "--broker", "mqtt://127.0.0.1:1", "--model-dir", "{d}/ok.npy",
                                "--journal", "{d}/j.sqlite"], "ok.npy: a file, not a model folder"),
    "brackets survive": (["infer", "{d}/[x].npy", "--fs", "12000"], "[x].npy: recording not found"),
    "hop too small": (["monitor", "--hop", "10", "--journal", "{d}/j.sqlite"], "hop 10 is below 128 samples"),
    "sensor inbox over total": (["monitor", "--inbox-mb", "1", "--sensor-inbox-mb", "2", "--journal", "{d}/j.sqlite"],
                                "--sensor-inbox-mb 2 exceeds --inbox-mb 1"),
    "C without quantize": (["export", "{d}/none.pt", "--c"], "--c writes the integer network: add --quantize"),
    "export into a file": (["export", "{d}/none.pt", "--out", "{d}/ok.npy"], "--out {d}/ok.npy: a file, not a folder"),
    "export under a file": (["export", "{d}/none.pt", "--out", "{d}/ok.npy/m"], "--out {d}/ok.npy/m: {d}/ok.npy is a file"),
    "bench inference into a file": (["bench", "inference", "--out", "{d}/ok.npy"], "--out {d}/ok.npy: a file, not a folder"),
    "bench packs into a file": (["bench", "packs", "--out", "{d}/ok.npy"], "--out {d}/ok.npy: a file, not a folder"),
    "an option without its value": (["infer", "{d}/ok.npy", "--fs"],
                                    "Option '--fs' requires an argument. (the command's --help lists the options)"),
    "bench where nothing can be written": (["bench", "inference", "--out", "/proc/edgesnn"],
                                           "--out /proc/edgesnn: cannot write there"),
    "infer on a CSV with a gap": (["infer", "{d}/gap.csv", "--fs", "12000"], "gap.csv: line 3, column acc: 'nan' is not a finite number"),
    "certificate for a bad host": (["fleet", "certs", "--out", "{d}/pki", "--host", "a b/.."], "not a host name"),
    "device name with a path": (["fleet", "keys", "../x", "--out", "{d}/pki"], "device name '../x'"),
    "client with a bad CA": (["fleet", "client", "--superlink", "127.0.0.1:1", "--ca", "{d}/ok.npy", "--key",
                              "{d}/ok.npy", "--data", "{d}"], "ok.npy: not a PEM CA certificate"),
    "server registering a non-key": (["fleet", "server", "--ca", "{ca}", "--cert", "{d}/c", "--key", "{d}/k",
                                      "--register", "{d}/ok.npy", "--out", "{d}/srv"], "ok.npy: not an OpenSSH public key"),
    "firmware-sim on a float model": (["firmware-sim", "--model", "{wdcnn}"], "not a quantized model; the firmware runs "
                                      "integer networks: `edgesnn export --quantize` makes one of an MRA-SNN"),
    "firmware-sim on the float default": (["firmware-sim", "--model", "mra-snn-cwru10"],
                                          "not a quantized model; the firmware runs integer networks: --model mra-snn-cwru10-int8"),
    "an ONNX file as the model": (["infer", "{d}/ok.npy", "--fs", "12000", "--model", "{onnx}"],
                                  "wdcnn-cwru10.onnx: an ONNX file, not its model card; give the card (.json) that names it"),
    "firmware-sim dead sensor": (["firmware-sim", "--recording", "{d}/dead.npy", "--fs", "12000"],
                                 "dead.npy: no vibration in any window (constant signal)"),
    "firmware-sim recording missing": (["firmware-sim", "--recording", "{d}/none.npy", "--fs", "12000"],
                                       "none.npy: recording not found"),
}


def _ca(folder) -> str:
    """A real CA certificate, made once (the server checks its CA before the device keys)."""
    ca = folder / "pki-ok" / "ca.crt"
    if not ca.exists():
        pytest.importorskip("cryptography")
        from edgesnn.fleet.pki import make_certificates

        make_certificates(folder / "pki-ok", ["localhost"])
    return str(ca)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line(files, case):
    args, message = CASES[case]
    from edgesnn.models import shipped_cards

    wdcnn = next(p for p in shipped_cards() if p.parent.name == "wdcnn")
    ca = _ca(files) if any("{ca}" in a for a in args) else ""
    r = run_cli(*[a.format(d=files, wdcnn=wdcnn, onnx=wdcnn.with_suffix(".onnx"), ca=ca) for a in args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert message.format(d=files) in lines[0]


class _Payload:
    """Unpickling this runs code: a checkpoint must never be loaded that way."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_bad_checkpoints_are_refused_and_never_run_code(tmp_path):
    torch = pytest.importorskip("torch")
    from edgesnn.registry import create_model

    state = create_model("wdcnn", n_classes=10, window=2048).state_dict()
    from edgesnn.labels import TASKS

    good = {"format": "edgesnn-checkpoint/1", "classes": list(TASKS["cwru10"]), "state_dict": state,
            "config": {"pack": "wdcnn", "task": "cwru10", "window": 2048, "timesteps": 1, "bits": 0, "seed": 0}}
    name = next(k for k, v in state.items() if v.is_floating_point())
    cases = {
        "nan.pt": (good | {"state_dict": state | {name: state[name] * float("nan")}}, f"weights {name} hold NaN"),
        "noconfig.pt": ({k: v for k, v in good.items() if k != "config"}, "without its config, classes, history or weights"),
        "nohistory.pt": (good | {"history": None}, "without its config, classes, history or weights"),
        "window.pt": (good | {"config": good["config"] | {"window": -5}}, "impossible values (window=-5)"),
        "misfit.pt": (good | {"state_dict": create_model("wdcnn", n_classes=4, window=2048).state_dict()},
                      "its weights do not fit the wdcnn network"),
        "task.pt": (good | {"config": good["config"] | {"task": "fault_type"}}, "not those of its task fault_type"),
        "code.pt": (good | {"history": _Payload(tmp_path / "ran")}, "holding more than tensors and plain values"),
    }
    # export and eval read a checkpoint through the same loader: each case through one of them, in turn
    for command, (file, (ckpt, message)) in zip(("export", "eval") * len(cases), cases.items()):
        torch.save(ckpt, tmp_path / file)
        r = run_cli(command, tmp_path / file, "--out", tmp_path / "out")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], (command, file, r.stderr)
    assert not (tmp_path / "ran").exists()


def test_windows_without_vibration_are_not_diagnosed(tmp_path, cwru_dir):
    """A sensor that drops out mid-recording: its constant stretch gets no diagnosis."""
    import json

    from edgesnn.sensors import cwru

    rec = next(r for r in cwru.load(cwru_dir, loads=[1]) if r.entry.file.startswith("12k_Drive_End_IR021"))
    x = rec.signal[: 4 * 2048].copy()
    x[2 * 2048 :] = 0.0
    np.save(tmp_path / "dropout.npy", x)
    r = run_cli("infer", tmp_path / "dropout.npy", "--fs", "12000", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [w["label"] for w in out["windows"]][2:] == ["no_signal", "no_signal"]
    assert out["summary"]["no_signal_windows"] == 2 and out["summary"]["label"] == "inner_race_021"
    # nor an anomaly score: a dead sensor is not an anomaly of the machine
    r = run_cli("infer", tmp_path / "dropout.npy", "--fs", "12000", "--json", "--anomaly-model", "esvae-cwru-normal")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [w["anomaly_score"] for w in out["windows"]][2:] == [None, None]
    assert out["summary"]["anomalous_share"] == 1.0  # of the two diagnosed inner-race windows


def test_firmware_sim_leaves_windows_without_vibration_out(tmp_path):
    """As infer does: a sensor that drops out mid-recording, its constant stretch is not simulated."""
    import json

    x = np.random.default_rng(0).standard_normal(4 * 2048).astype(np.float32)
    x[3 * 2048 :] = 0.2
    np.save(tmp_path / "dropout.npy", x)
    r = run_cli("firmware-sim", "--recording", tmp_path / "dropout.npy", "--fs", "12000", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["windows"] == 3 and out["no_signal_windows"] == 1


def test_a_failed_export_leaves_the_model_of_that_name_as_it_was(tmp_path):
    torch = pytest.importorskip("torch")
    from edgesnn.card import read_card
    from edgesnn.export import export_measured
    from edgesnn.registry import create_model
    from edgesnn.runtime import Diagnoser
    from edgesnn.training import TrainConfig

    model = create_model("wdcnn", n_classes=10, window=2048).eval()
    ckpt = {"config": asdict(TrainConfig(pack="wdcnn", timesteps=1, bits=0)),
            "classes": ["normal"] + [f"ball_{s}" for s in ("007", "014", "021")]
            + [f"inner_race_{s}" for s in ("007", "014", "021")] + [f"outer_race_{s}" for s in ("007", "014", "021")],
            "history": []}
    card = export_measured(model, ckpt, tmp_path, "m")
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1e30)  # finite weights, infinite outputs
    with pytest.raises(EdgesnnError, match="NaN or infinite outputs"):
        export_measured(model, ckpt, tmp_path, "m")
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before  # no staging folder left either
    assert Diagnoser(card).model_id == f"m@{read_card(card)['onnx_sha256'][:8]}"


def test_cards_whose_classes_or_graph_input_break_the_contract_are_refused_in_one_line(tmp_path):
    """Two classes of one name, or a graph that takes float64: refused when the model loads (infer
    and the monitor alike), not on the first window."""
    import hashlib
    import shutil

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edgesnn.models import shipped_cards

    wdcnn = next(p for p in shipped_cards() if p.stem == "wdcnn-cwru10")
    card = json.loads(wdcnn.read_text())
    shutil.copy(wdcnn.with_suffix(".onnx"), tmp_path / "twice.onnx")
    classes = ["normal", "normal"] + card["classes"][2:]
    (tmp_path / "twice.json").write_text(json.dumps(card | {"onnx": "twice.onnx", "classes": classes}))
    graph = helper.make_graph(  # float64 windows in, ten logits out
        [helper.make_node("Cast", ["acceleration"], ["x"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, axes=[2]),
         helper.make_node("Tile", ["m", "reps"], ["logits"])], "g",
        [helper.make_tensor_value_info("acceleration", TensorProto.DOUBLE, ["batch", 1, 2048])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [helper.make_tensor("reps", TensorProto.INT64, [2], [1, 10])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "double.onnx")
    sha = hashlib.sha256((tmp_path / "double.onnx").read_bytes()).hexdigest()
    (tmp_path / "double.json").write_text(json.dumps(card | {"onnx": "double.onnx", "onnx_sha256": sha}))
    np.save(tmp_path / "ok.npy", np.random.default_rng(0).standard_normal(4096).astype(np.float32))
    for name, message in (("twice", "card field classes names normal more than once"),
                          ("double", "its ONNX graph takes tensor(double), not float32 windows")):
        r = run_cli("infer", tmp_path / "ok.npy", "--fs", "12000", "--model", tmp_path / f"{name}.json")
        assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path / name}.json: {message}", r.stderr


def test_refused_train_and_export_leave_no_folder_behind(tmp_path, cwru_dir):
    r = run_cli("train", "-o", "frontend=wavelet", "--data", cwru_dir, "--out", tmp_path / "new" / "run")
    assert r.returncode == 2 and not (tmp_path / "new").exists(), r.stderr
    pytest.importorskip("torch")
    ckpt = untrained_checkpoint(tmp_path / "flat.pt", blocks=0)  # a network without blocks: no integer network
    r = run_cli("export", ckpt, "--quantize", "--data", cwru_dir, "--out", tmp_path / "models" / "q")
    assert r.returncode == 2 and r.stderr.strip() == ("error: the integer network needs at least one spike residual "
                                                      "attention block (blocks >= 1); export this model without "
                                                      "--quantize"), r.stderr
    assert not (tmp_path / "models").exists()


def test_a_model_giving_nan_is_not_scored():
    from edgesnn.evaluation import predict_labels

    with pytest.raises(EdgesnnError, match="NaN or infinite outputs"):
        predict_labels(lambda x: np.full((len(x), 10), np.nan, np.float32), np.zeros((4, 2048), np.float32))


def test_paths_names_and_roots_that_would_misplace_data_are_refused(files, tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(10))
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "b" / "a.npy", np.zeros(10))
    cases = [
        (["infer", files, "--fs", "12000"], "a folder, not a recording"),
        (["infer", "/dev/null", "--fs", "12000"], "/dev/null: not a regular file (a device or a pipe), not a recording"),
        (["infer", files / "ok.npy", "--fs", "12000", "--model", files], "a folder, not a model card"),
        (["export", files / "none.pt", "--name", "../elsewhere"], "--name '../elsewhere': a model name of letters"),
        (["export", files / "none.pt", "--name", 'my"model'], "the C source includes its header by it"),
        (["monitor", "--root", "plant/#", "--journal", tmp_path / "j.sqlite"], "topic root 'plant/#'"),
        (["monitor", "--journal", files / "ok.npy"], "cannot use it as the journal"),
        (["demo", "--seconds", "nan"], "nan is not a finite number"),
        (["infer", files / "ok.npy", "--fs", "12000", "--hop", "5"], "--hop 5 is below 128 samples"),
        (["sensors", "replay", tmp_path / "a.npy", tmp_path / "b" / "a.npy", "--fs", "12000"],
         "would stream as the one sensor 'a'"),
    ]
    for args, message in cases:
        r = run_cli(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], (args, r.stderr)


def test_firmware_sim_refuses_a_card_whose_integer_network_is_not_its_own(tmp_path):
    import hashlib
    import json
    import shutil

    from edgesnn.card import default_card_path

    src = default_card_path()
    card = json.loads(src.read_text())
    shutil.copy(src.parent / card["onnx"], tmp_path / card["onnx"])
    detector = json.loads((src.parent.parent / "esvae" / "esvae-cwru-normal-int8.json").read_text())
    other = src.parent.parent / "esvae" / detector["quantization"]["firmware"]  # another network's arrays
    shutil.copy(other, tmp_path / other.name)
    cases = {
        "word.json": (card | {"quantization": "int8"}, "names no integer network"),
        "foreign.json": (card | {"quantization": card["quantization"] | {
            "firmware": other.name, "firmware_sha256": hashlib.sha256(other.read_bytes()).hexdigest()}},
            "not an integer network of the kind its card describes"),
        "elsewhere.json": (card | {"quantization": card["quantization"] | {"firmware": str(other)}},
                           "must be a file beside the card"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(json.dumps(content))
        r = run_cli("firmware-sim", "--model", tmp_path / name, "--recording", tmp_path / "x.npy", "--fs", "12000")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], (name, r.stderr)


def test_firmware_sim_refuses_a_both_views_card_whose_integer_network_is_damaged_or_partial(tmp_path):
    """The card of the network with both views, its .npz replaced (and its sha256 made to match):
    cut short, without some or all of the envelope view's arrays, or the raw view's network alone."""
    import hashlib
    import io
    import json
    import shutil

    from edgesnn.models import SHIPPED_DIR

    src = SHIPPED_DIR / "mra_snn" / "mra-snn-cwru10-both-views-int8.json"
    card = json.loads(src.read_text())
    shutil.copy(src.parent / card["onnx"], tmp_path / card["onnx"])
    data = (src.parent / card["quantization"]["firmware"]).read_bytes()
    arrays = dict(np.load(io.BytesIO(data)))

    def npz(a):
        out = io.BytesIO()
        np.savez_compressed(out, **a)
        return out.getvalue()

    cases = {
        "cut": (data[: len(data) // 2], "BadZipFile"),
        "no_bank": (npz({k: v for k, v in arrays.items() if k != "env_bank"}), "KeyError: 'env_bank'"),
        "no_view": (npz({k: v for k, v in arrays.items() if not k.startswith("env_")}), "does not read the 48 spike"),
        "short_dft": (npz(arrays | {"env_dft": arrays["env_dft"][:, :100]}), "envelope view's arrays do not fit"),
        "raw": ((src.parent / "mra-snn-cwru10-int8.npz").read_bytes(), "has no envelope view, but its card's front end"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / f"{name}.npz").write_bytes(content)
        (tmp_path / f"{name}.json").write_text(json.dumps(card | {"quantization": card["quantization"] | {
            "firmware": f"{name}.npz", "firmware_sha256": hashlib.sha256(content).hexdigest()}}))
        r = run_cli("firmware-sim", "--model", tmp_path / f"{name}.json", "--recording", tmp_path / "x.npy", "--fs", "12000")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], (name, r.stderr)


def test_export_will_not_make_a_second_shipped_default(tmp_path):
    pytest.importorskip("torch")
    from edgesnn.models import SHIPPED_DIR

    untrained_checkpoint(tmp_path / "w.pt", pack="wdcnn")
    before = sorted(SHIPPED_DIR.glob("*/*"))
    r = run_cli("export", tmp_path / "w.pt", "--default", "--out", SHIPPED_DIR / "wdcnn", "--name", "second")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "is the shipped default" in lines[0], r.stderr
    assert sorted(SHIPPED_DIR.glob("*/*")) == before


def test_pack_options_read_words_for_booleans():
    pytest.importorskip("torch")
    from edgesnn.cli.main import _pack_options

    for word, value in (("False", False), ("off", False), ("no", False), ("true", True), ("On", True)):
        assert _pack_options("mra_snn", [f"dendritic={word}"], 1, 2) == {"dendritic": value}
    assert _pack_options("mra_snn", ["channels=16", "frontend=cwt"], 1, 2) == {"channels": 16, "frontend": "cwt"}


@pytest.mark.parametrize("pack, option, says", [
    ("trt", "consistency=nan", "consistency must be a number from 0"),
    ("tssd", "teacher_timesteps=2.5", "teacher_timesteps must be a whole number"),
    ("esvae", "hidden=0", "hidden must be a whole number from 1"),
    ("esvae", "frame=4096", "must fit in the window"),
    ("inflor", "rectifier=abc", "rectifier must be a number"),
    ("ltl", "local_until=x", "local_until must be a number above 0 up to 1"),
    ("ssnn", "stage_timesteps=[]", "stage_timesteps must be a list"),
    ("ssnn", "stage_timesteps=[4,2.5,1]", "each of stage_timesteps must be a whole number"),
])
def test_every_pack_checks_its_own_options(pack, option, says):
    """Each pack names a bad option value in one line, before any data is read (these had
    reached training, where they failed inside torch as 'a bug in edgesnn')."""
    pytest.importorskip("torch")
    import typer

    from edgesnn.cli.main import _pack_options

    timesteps = {"esvae": 8, "ssnn": 0, "trt": 2}.get(pack, 1)
    with pytest.raises(typer.BadParameter, match=says):
        _pack_options(pack, [option], timesteps, 1 if pack == "esvae" else 2)


@pytest.mark.parametrize("pack, lists", [
    ("mra_snn", "the MRA-SNN backbone's (frontend=raw|cwt|envelope|raw+envelope, channels, blocks, dendritic; "
                "with frontend=raw+envelope envelope_bank=morlet|short, envelope_blocks=0..4)"),
    ("ssnn", "stage_timesteps, exit_threshold, the MRA-SNN backbone's (frontend=raw|cwt|envelope, channels"),
    ("esvae", "hidden, latent, mmd_weight, frame, hop"),
    ("wdcnn", "none"),
])
def test_an_unknown_option_is_named_with_the_options_of_its_pack(pack, lists):
    """It had read "MRASNN.__init__() got an unexpected keyword argument 'nokey'": Python's words,
    and no word of the keys that are valid. The list is the one `edgesnn packs` shows."""
    pytest.importorskip("torch")
    import typer

    from edgesnn.cli.main import _option_names, _pack_options
    from edgesnn.registry import pack_shape

    with pytest.raises(typer.BadParameter) as info:
        _pack_options(pack, ["nokey=3"], *pack_shape(pack))
    assert info.value.message == f"pack {pack} has no option 'nokey'; its options: " \
                                 f"{', '.join(_option_names(pack)) or 'none'}"
    assert lists in info.value.message and "__init__" not in info.value.message


def test_a_refused_option_points_to_edgesnn_packs(tmp_path):
    """`train --help` lists no pack options: the hint after a refused --option names `edgesnn packs`."""
    pytest.importorskip("torch")
    r = run_cli("train", "--pack", "mra_snn", "--option", "envelope_bank=short", "--out", tmp_path / "run")
    assert r.returncode == 2 and "second view of frontend=raw+envelope" in r.stderr
    assert "edgesnn packs lists each pack's options" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_in_training_exits_130_and_says_nothing_was_written(tmp_path, cwru_dir):
    """Ctrl-C is a failure to a script or a service manager (it had exited 0, as if trained)."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("edgesnn")
    proc = subprocess.Popen([str(exe), "train", "--data", str(cwru_dir), "--epochs", "50", "--steps", "2",
                             "--batch-size", "8", "--threads", "1", "--out", str(tmp_path / "run")],
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's
    assert proc.stderr.readline().startswith("epoch 1/50"), "training did not start"
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, rest
    last = rest.strip().splitlines()[-1]  # after the epochs' lines, one that says what the run left
    assert "Traceback" not in rest and last.startswith("error: training interrupted after epoch "), rest
    assert last.endswith(f"of 50; nothing was written to {tmp_path / 'run'}"), rest
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_train_refuses_a_folder_it_cannot_write_before_reading_data(tmp_path):
    """An existing read-only --out had passed the check, trained to the end and failed at saving."""
    import os
    from pathlib import Path

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes in any folder of its own: take one that no one may write in
        folder = Path("/sys")
        if not folder.is_dir():
            pytest.skip("no read-only folder for root")
    r = run_cli("train", "--data", tmp_path / "no-data", "--out", folder)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {folder}: cannot write the results there"), r.stderr


def test_train_refuses_an_out_in_the_data_folder_before_reading_data(tmp_path):
    """--out equal to --data (or a folder in it) had written checkpoint, history and PNG among
    the recordings."""
    data = tmp_path / "cwru"
    data.mkdir()
    (data / "MANIFEST.csv").write_text("file,variable,fault,diameter_in,load_hp,rpm,fs_hz,samples,sha256\n")
    (tmp_path / "link").symlink_to(data)  # the same folder by another path
    for out in (data, data / "run" / "1", tmp_path / "link" / "run"):
        r = run_cli("train", "--data", data, "--out", out)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0] == f"error: --out {out} is the data folder {data} or inside it; write the results elsewhere"
    assert [p.name for p in data.iterdir()] == ["MANIFEST.csv"]


@pytest.mark.parametrize("name", ["checkpoint.pt", "history.json", "learning_curve.png"])
def test_train_refuses_an_output_that_is_not_a_file_before_reading_data(tmp_path, name):
    """A folder named history.json had been found only after training, with checkpoint.pt
    already overwritten: half a result beside the old one."""
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    for other in {"checkpoint.pt", "history.json"} - {name}:
        (out / other).write_text("the previous run's")
    r = run_cli("train", "--data", tmp_path / "no-data", "--out", out)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0] == f"error: {out / name}: not a file, and train writes its {name} there; " \
                       "remove it or choose another --out", r.stderr
    assert all((out / other).read_text() == "the previous run's" for other in {"checkpoint.pt", "history.json"} - {name})


def test_quantizing_a_network_the_integer_path_does_not_cover_names_the_checkpoint(tmp_path):
    """Refused before the data is read (it had calibrated first), naming the file and why."""
    pytest.importorskip("torch")
    for pack, extra, says in (("wdcnn", {}, "not this wdcnn model; export it without --quantize"),
                              ("mra_snn", {"frontend": "cwt"}, "not this mra_snn model (cwt front end)")):
        untrained_checkpoint(tmp_path / f"{pack}.pt", pack=pack, **extra)
        r = run_cli("export", tmp_path / f"{pack}.pt", "--quantize", "--data", CWRU, "--out", tmp_path / "out")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0].startswith(f"error: {tmp_path / pack}.pt: the integer network covers") and says in lines[0], r.stderr


def test_eval_of_checkpoints_of_different_tasks_says_which_is_which(tmp_path):
    pytest.importorskip("torch")
    from edgesnn.labels import TASKS

    for task in TASKS:
        untrained_checkpoint(tmp_path / f"{task}.pt", pack="wdcnn", task=task)
    r = run_cli("eval", tmp_path / "cwru10.pt", tmp_path / "fault_type.pt", "--data", CWRU, "--out", tmp_path / "out")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert (f"{tmp_path / 'cwru10.pt'} is cwru10, {tmp_path / 'fault_type.pt'} is fault_type); evaluate them apart"
            in lines[0]), r.stderr


@pytest.mark.parametrize("args, says", [
    (["eval", "{d}/none.pt"], "none.pt: checkpoint not found"),
    (["export", "{d}", "--out", "{d}/x"], ": a folder, not a checkpoint"),
    (["train", "--teacher", "{d}/none.pt", "--out", "{d}/t"], "none.pt: checkpoint not found"),
    (["train", "--data", "{d}/nodata", "--out", "{d}/t"], "nodata: data folder not found"),
    (["eval", "{d}/c.pt", "--data", "{d}/nodata", "--out", "{d}/e"], "nodata: data folder not found"),
    (["export", "{d}/c.pt", "--data", "{d}/nodata", "--out", "{d}/x"], "nodata: data folder not found"),
    (["train", "--path-until", "0.5", "--out", "{d}/t"], "give --path-share too"),
    (["fleet", "simulate", "--selection", "best", "--out", "{d}/f"], "unknown selection 'best'"),
    (["fleet", "simulate", "--data", "{d}/nodata", "--out", "{d}/f"], "nodata: data folder not found"),
    (["fleet", "server", "--ca", "{d}/ca.crt", "--cert", "{d}/s.pem", "--key", "{d}/s.key", "--register",
      "{d}/a.pub", "--per-round", "2", "--out", "{d}/s"], "--per-round 2 is more than the 1 devices"),
    # its keys and certificates are read with Flower's cryptography: here, the extra is named
    (["fleet", "server", "--ca", "{d}/ca.crt", "--cert", "{d}/s.pem", "--key", "{d}/s.key", "--register",
      "{d}/a.pub", "--out", "{d}/s"], "this command needs the training extra: pip install 'edgesnn[train]'"),
])
def test_command_line_mistakes_are_refused_before_torch_and_flower(tmp_path, args, says):
    """What the command line and the file system alone show is refused in a second, without the
    training extra: here it is absent, as on the edge install, and the refusal is still the one
    that names the mistake (not 'install edgesnn[train]'), or, where reading the input needs the
    extra, names the extra in one line."""
    argv = [a.format(d=tmp_path) for a in args]
    (tmp_path / "c.pt").write_bytes(b"")  # a checkpoint that exists, for the checks after it
    code = ("import sys\n"
            "class Absent:  # torch and flwr cannot be imported, as on the edge install\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'flwr', 'cryptography'):\n"
            "            raise ImportError(f'no module named {name!r}')\n"
            "sys.meta_path.insert(0, Absent())\n"
            f"sys.argv = ['edgesnn', *{argv!r}]\nfrom edgesnn.cli.main import main\nmain()\n")
    # outside the checkout (its edgesnn/ would shadow the installed package), with the data at hand
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "EDGESNN_CWRU": str(CWRU)})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and says in lines[0] and "Traceback" not in r.stderr, r.stderr
