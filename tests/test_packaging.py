"""The wheel: side folders under the edgesnn namespace, shipped models and clips inside, no torch in the base."""

import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_layout_and_dependencies(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wheel = next(tmp_path.glob("edgesnn-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"edgesnn", next(t for t in tops if t.endswith(".dist-info"))}, tops
    for pack in ("mra_snn", "wdcnn"):
        assert any(n.startswith(f"edgesnn/models/{pack}/") and n.endswith(".onnx") for n in names)
        assert any(n.startswith(f"edgesnn/models/{pack}/") and n.endswith(".json") for n in names)
    for sub in ("sensors", "cli", "firmware_sim", "fleet"):
        assert f"edgesnn/{sub}/__init__.py" in names
    assert "edgesnn/sensors/clips/cwru_clips.npz" in names  # the demo's real clips
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    torch_lines = [line for line in requires if line.split()[1].startswith("torch")]
    assert torch_lines and all('extra == "train"' in line for line in torch_lines)
    flower = [line for line in requires if line.split()[1].startswith("flwr")]
    assert flower and all('extra == "train"' in line for line in flower)  # the fleet is not the edge runtime
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[edgesnn.model_packs]" in entry_points and "edgesnn = edgesnn.cli.main:main" in entry_points
