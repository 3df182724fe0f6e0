"""Model cards (CONTRACTS section 2): the JSON beside every shipped ONNX file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from edgesnn.errors import EdgesnnError
from edgesnn.labels import fault_type
from edgesnn.sensors.cwru import sha256_of
from edgesnn.signal import MAX_FS_HZ, MIN_FS_HZ

FORMAT = "edgesnn-model-card/1"
REQUIRED = ("format", "name", "onnx", "onnx_sha256", "classes", "sample_rate_hz", "window",
            "timesteps", "spike_bits", "pack")


def read_card(path: Path) -> dict:
    """Load and check a card; refuses an ONNX file whose sha256 differs from the card's."""
    path = Path(path)
    if not path.is_file():
        raise EdgesnnError(f"{path}: {'a folder, not a model card (.json)' if path.is_dir() else 'model card not found'}")
    if path.suffix.lower() == ".onnx":  # the graph alone: its card holds the classes, the rate and the sha256
        beside = path.with_suffix(".json")
        raise EdgesnnError(f"{path}: an ONNX file, not its model card; give the card (.json) that names it"
                           + (f", {beside}" if beside.is_file() else ""))
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgesnnError(f"{path}: model card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise EdgesnnError(f"{path}: model card is not a JSON object")
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise EdgesnnError(f"{path}: model card lacks {', '.join(missing)}")
    if card["format"] != FORMAT:
        raise EdgesnnError(f"{path}: card format {card['format']!r} is not {FORMAT!r}")
    _check_fields(path, card)
    if not isinstance(card["onnx"], str) or Path(card["onnx"]).name != card["onnx"]:
        raise EdgesnnError(f"{path}: card field onnx must name a file beside the card, not {card['onnx']!r}")
    onnx_path = path.parent / card["onnx"]
    if not onnx_path.is_file():
        raise EdgesnnError(f"{onnx_path}: ONNX file named by the card is missing")
    if sha256_of(onnx_path) != card["onnx_sha256"]:
        raise EdgesnnError(f"{onnx_path}: sha256 differs from its card; the model is corrupt or replaced")
    card["_onnx_path"] = str(onnx_path)
    return card


# A card's numbers size the buffers of every window (a monitor allocates by them), so they are
# checked before anything runs: the window within what any edgesnn model uses, the rate within
# what a recording may declare.
MAX_WINDOW = 1 << 16


def _check_fields(path: Path, card: dict) -> None:
    def whole(key: str, lo: int, hi: int) -> None:
        value = card[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise EdgesnnError(f"{path}: card field {key} is {value!r}, not a whole number in {lo}..{hi}")

    name = card["name"]
    if not isinstance(name, str) or not name.strip():  # every diagnosis names its model by it
        raise EdgesnnError(f"{path}: card field name is {name!r}, not a model name")
    whole("window", 16, MAX_WINDOW)
    whole("timesteps", 1, 64)
    whole("spike_bits", 0, 16)
    rate = card["sample_rate_hz"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not MIN_FS_HZ <= rate <= MAX_FS_HZ:
        raise EdgesnnError(f"{path}: card field sample_rate_hz is {rate!r}, not in {MIN_FS_HZ:g}..{MAX_FS_HZ:g} Hz")
    classes = card["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise EdgesnnError(f"{path}: card field classes must be a non-empty list of class names")
    try:
        for label in classes:
            fault_type(label)
    except ValueError as exc:
        raise EdgesnnError(f"{path}: {exc}") from None
    twice = sorted({c for c in classes if classes.count(c) > 1})
    if twice:  # two outputs under one name: a diagnosis could not say which the model meant
        raise EdgesnnError(f"{path}: card field classes names {', '.join(twice)} more than once")
    threshold = card.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not math.isfinite(threshold)):
        raise EdgesnnError(f"{path}: card field threshold is {threshold!r}, not a finite number")


def check_outputs(card_path, card: dict, session, outputs: int | None) -> None:
    """The ONNX graph takes the card's window and gives `outputs` values per window (None: any);
    a card that says otherwise would fail on the first window, so it fails here, in one line."""
    first = session.get_inputs()[0]
    if first.type != "tensor(float)":  # CONTRACTS section 2: float32 samples in g
        raise EdgesnnError(f"{card_path}: its ONNX graph takes {first.type}, not float32 windows")
    shape = first.shape
    takes_windows = len(shape) == 3 and (shape[1] in (1, None) or isinstance(shape[1], str))
    if not takes_windows:
        raise EdgesnnError(f"{card_path}: its ONNX graph takes {shape}, not windows [batch, 1, window]")
    if isinstance(shape[0], int):  # the runtime batches windows of many sensors
        raise EdgesnnError(f"{card_path}: its ONNX graph takes a fixed batch of {shape[0]}; export it with a "
                           "dynamic batch dimension")
    if isinstance(shape[-1], int) and shape[-1] != card["window"]:
        raise EdgesnnError(f"{card_path}: the card says window {card['window']}, its ONNX graph takes {shape[-1]}")
    shape = session.get_outputs()[0].shape
    if outputs is not None and isinstance(shape[-1], int) and shape[-1] != outputs:
        raise EdgesnnError(f"{card_path}: the card lists {outputs} classes, its ONNX graph gives {shape[-1]} outputs")


def write_card(path: Path, card: dict) -> None:
    """Written whole or not at all: a monitor watching the folder never reads half a card."""
    card = {k: v for k, v in card.items() if not k.startswith("_")}
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(partial, path)


def onnx_graph_kind(card: dict) -> str | None:
    """Which graph a quantized card's ONNX is: "gateway" (firmware_sim/gateway_graph.py) or
    "exact" (bit for bit the integer network, firmware_sim/onnx_graph.py); None for a float model."""
    graph = card.get("onnx_check", {}).get("graph")
    return graph.split(":")[0] if "quantization" in card and isinstance(graph, str) else None


def model_id(card: dict) -> str:
    """Name and short hash, e.g. mra-snn-cwru10@1a2b3c4d (the `model` field of a diagnosis)."""
    return f"{card['name']}@{card['onnx_sha256'][:8]}"


def resolve_card(spec) -> Path:
    """A model card given as a path, or as the name of a shipped model (its card's "name", e.g.
    `mra-snn-cwru10` for the float export of the default), which a wheel install keeps inside
    site-packages where nobody should have to look it up."""
    path = Path(spec)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path  # a path: read_card reports it when it is missing
    from edgesnn.models import shipped_cards

    named = {json.loads(p.read_text()).get("name"): p for p in shipped_cards()}
    if str(spec) not in named:
        raise EdgesnnError(f"{spec}: no such model card, and no shipped model has that name "
                           f"(shipped: {', '.join(sorted(n for n in named if n))})")
    return named[str(spec)]


def default_card_path() -> Path:
    """The one shipped card with "default": true."""
    from edgesnn.models import shipped_cards

    defaults = [p for p in shipped_cards() if json.loads(p.read_text()).get("default")]
    if len(defaults) != 1:
        raise EdgesnnError(f"the installed package ships {len(defaults)} default models, expected exactly one")
    return defaults[0]
