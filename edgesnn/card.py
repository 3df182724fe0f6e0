"""Model cards (CONTRACTS section 2): the JSON beside every shipped ONNX file."""

from __future__ import annotations

import json
from pathlib import Path

from edgesnn.errors import EdgesnnError
from edgesnn.labels import fault_type
from edgesnn.sensors.cwru import sha256_of

FORMAT = "edgesnn-model-card/1"
REQUIRED = ("format", "name", "onnx", "onnx_sha256", "classes", "sample_rate_hz", "window",
            "timesteps", "spike_bits", "pack")


def read_card(path: Path) -> dict:
    """Load and check a card; refuses an ONNX file whose sha256 differs from the card's."""
    path = Path(path)
    if not path.is_file():
        raise EdgesnnError(f"{path}: model card not found")
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
    try:
        for label in card["classes"]:
            fault_type(label)
    except ValueError as exc:
        raise EdgesnnError(f"{path}: {exc}") from None
    onnx_path = path.parent / card["onnx"]
    if not onnx_path.is_file():
        raise EdgesnnError(f"{onnx_path}: ONNX file named by the card is missing")
    if sha256_of(onnx_path) != card["onnx_sha256"]:
        raise EdgesnnError(f"{onnx_path}: sha256 differs from its card; the model is corrupt or replaced")
    card["_onnx_path"] = str(onnx_path)
    return card


def write_card(path: Path, card: dict) -> None:
    card = {k: v for k, v in card.items() if not k.startswith("_")}
    Path(path).write_text(json.dumps(card, indent=2) + "\n")


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
