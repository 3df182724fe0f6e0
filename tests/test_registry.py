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


def test_packs_command_lists_every_pack_with_its_options():
    from conftest import run_cli

    r = run_cli("packs")
    assert r.returncode == 0, r.stderr
    for name in registry.list_packs():
        assert name in r.stdout
    assert "hidden, latent, mmd_weight, frame, hop" in r.stdout  # esvae's own options
    assert "teacher_timesteps" in r.stdout and "stage_timesteps" in r.stdout


def test_packs_command_describes_each_pack_by_whole_sentences():
    """realspike's had stopped mid-sentence ("... real-valued spikes in training, binary"): the
    table showed the first line of a docstring whose first sentence goes on to the next."""
    from conftest import run_cli

    r = run_cli("packs")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("│")]
    assert len({len(line) for line in lines}) == 1, r.stdout  # every row as wide as the table
    about, name = {}, None
    for cells in (line.split("│")[1:-1] for line in lines):  # a row wraps over several lines
        name = cells[0].strip() or name
        about[name] = f"{about.get(name, '')} {cells[-1].strip()}".strip()
    assert about["realspike"] == ("Real Spike (arXiv 2210.06686) on the MRA-SNN backbone: real-valued spikes "
                                  "in training, binary spikes on the device.")
    assert set(about) == set(registry.list_packs()) and all(a.endswith(".") for a in about.values()), about


def test_packs_command_without_torch_names_the_training_extra(tmp_path):
    """On the edge install (no torch) the packs are not broken: training them needs the extra."""
    import subprocess

    code = ("import sys\nsys.modules['torch'] = None  # as on the edge install\n"
            "sys.argv = ['edgesnn', 'packs']\nfrom edgesnn.cli.main import main\nmain()\n")
    # run outside the checkout: `python -c` puts its folder first on the path, and the source
    # folder edgesnn/ there would shadow the installed package (which holds edgesnn.cli)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in registry.list_packs():
        assert name in r.stdout
    assert "cannot load" not in r.stdout, r.stdout
    assert r.stdout.count("pip install 'edgesnn[train]'") == len(registry.list_packs()), r.stdout


def test_training_stops_when_the_loss_is_not_finite(monkeypatch, cwru_dir):
    """A loss of NaN (here a network that outputs NaN) stops training with one line that says
    where and what to try, instead of training on and keeping NaN weights."""
    from edgesnn import training

    def poisoned(name, **kwargs):
        model = registry.create_model(name, **kwargs)
        model.register_forward_hook(lambda module, args, out: out * float("nan"))
        return model

    monkeypatch.setattr(training, "create_model", poisoned)
    cfg = training.TrainConfig(pack="wdcnn", data=str(cwru_dir), epochs=1, steps_per_epoch=2, batch_size=8,
                               threads=1, bits=0)
    with pytest.raises(EdgesnnError, match=r"training diverged at epoch 1, step 1: the loss is nan; try a smaller --lr"):
        training.train(cfg)
