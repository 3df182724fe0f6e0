"""Model-pack registry: every pack is found by name through one interface.

A pack is a factory `build(n_classes, window, timesteps, bits, **options) -> torch.nn.Module`,
published in the Python entry-point group `edgesnn.model_packs`. The built-in packs are
published there by edgesnn's own pyproject; a third-party distribution adds a pack the same way:

    [project.entry-points."edgesnn.model_packs"]
    my_pack = "my_package.pack:build"

The factory's keyword defaults are the pack's defaults (`edgesnn train` uses its timesteps and
bits unless told otherwise; `--option KEY=VALUE` fills the other keywords). The network it
returns is trained, exported and run like any other; optionally it also has
- `training_loss(x, y, criterion, progress)`, `train_classes`, `validation_metrics(x, y)`: how
  it trains (edgesnn/training.py);
- `deployed()`: the network that ships when training uses parts that do not (a teacher, a
  training-only head, amplitudes to fold), and `card_fields()`: what its card adds about it;
- `output_names`: the ONNX outputs when it does not classify (an anomaly model scores).
"""

from __future__ import annotations

import inspect
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


def pack_defaults(name: str) -> dict:
    """The keyword defaults of pack `name`'s factory, e.g. {"timesteps": 1, "bits": 2, ...}."""
    return {k: p.default for k, p in inspect.signature(get_factory(name)).parameters.items()
            if p.default is not inspect.Parameter.empty}


def pack_shape(name: str, timesteps: int | None = None, bits: int | None = None) -> tuple[int, int]:
    """Timesteps and spike bits to build pack `name` with: the given ones, else the pack's own."""
    defaults = pack_defaults(name)
    return (timesteps if timesteps is not None else defaults.get("timesteps", 1),
            bits if bits is not None else defaults.get("bits", 2))


def timesteps_text(timesteps, stage_timesteps=None) -> str:
    """T as the tables show it: a pack that shrinks timesteps per stage by each stage's ("4,2,1"
    for ssnn, whose `timesteps` is only the first stage's), any other by its one count."""
    return ",".join(map(str, stage_timesteps)) if stage_timesteps else str(timesteps)


def create_model(name: str, **kwargs):
    """Build pack `name`: create_model("mra_snn", n_classes=10, window=2048, timesteps=4, bits=2)."""
    return get_factory(name)(**kwargs)


# A pack checks its own options with these, so a bad `--option` is one line naming it.
def whole_number(name: str, value, least: int, most: int | None = None) -> int:
    """`value` as an option that must be a whole number >= `least` (and <= `most`; true/false are
    not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least or (most is not None and value > most):
        raise ValueError(f"{name} must be a whole number from {least}" + (f" up to {most}" if most is not None else "")
                         + f", not {value!r}")
    return value


def real_number(name: str, value, low: float, high: float = float("inf"), low_open: bool = False) -> float:
    """`value` as an option that must be a finite number in [low, high] ((low, high] if `low_open`)."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and (low < value if low_open else low <= value) and value <= high and value < float("inf"))
    if not ok:
        bounds = f"{'above' if low_open else 'from'} {low:g}" + (f" up to {high:g}" if high < float("inf") else "")
        raise ValueError(f"{name} must be a number {bounds}, not {value!r}")
    return float(value)
