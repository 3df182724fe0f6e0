"""Model-pack registry: every pack is found by name through one interface.

A pack is a factory `build(n_classes, window, timesteps, bits) -> torch.nn.Module`, published in
the Python entry-point group `edgesnn.model_packs`. The built-in packs are published there by
edgesnn's own pyproject; a third-party distribution adds a pack the same way:

    [project.entry-points."edgesnn.model_packs"]
    my_pack = "my_package.pack:build"
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable

from edgesnn.errors import EdgesnnError

GROUP = "edgesnn.model_packs"


def _entry_points():
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def list_packs() -> list[str]:
    return sorted(_entry_points())


def get_factory(name: str) -> Callable:
    eps = _entry_points()
    if name not in eps:
        raise EdgesnnError(f"unknown model pack {name!r}; installed packs: {', '.join(sorted(eps)) or 'none'}")
    return eps[name].load()


def create_model(name: str, **kwargs):
    """Build pack `name`: create_model("mra_snn", n_classes=10, window=2048, timesteps=4, bits=2)."""
    return get_factory(name)(**kwargs)
