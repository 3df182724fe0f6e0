import sys

import pytest
import torch

from edgesnn import registry
from edgesnn.errors import EdgesnnError


def test_builtin_packs_are_entry_points():
    assert {"mra_snn", "wdcnn"} <= set(registry.list_packs())
    for name in ("mra_snn", "wdcnn"):
        model = registry.create_model(name, n_classes=10, window=2048, timesteps=2, bits=2)
        assert model(torch.zeros(3, 1, 2048)).shape == (3, 10)


def test_mra_snn_spikes_are_integers():
    model = registry.create_model("mra_snn", n_classes=10, window=2048, timesteps=2, bits=2).eval()
    seen = []
    for block in model.blocks:
        block.neurons.register_forward_hook(lambda m, i, o: seen.append(o))
    model(torch.randn(2, 1, 2048))
    for s in seen:
        assert torch.equal(s, s.round()) and s.min() >= 0 and s.max() <= 3


def test_third_party_pack_through_entry_points(tmp_path, monkeypatch):
    (tmp_path / "tinypack.py").write_text(
        "import torch\n"
        "def build(n_classes, window, timesteps, bits):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(window, n_classes))\n"
    )
    dist = tmp_path / "tinypack-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinypack\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[edgesnn.model_packs]\ntiny = tinypack:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "tiny" in registry.list_packs()
    model = registry.create_model("tiny", n_classes=4, window=16, timesteps=1, bits=0)
    assert model(torch.zeros(2, 1, 16)).shape == (2, 4)
    sys.modules.pop("tinypack", None)


def test_unknown_pack_names_the_installed_ones():
    with pytest.raises(EdgesnnError, match="mra_snn"):
        registry.create_model("nope")
