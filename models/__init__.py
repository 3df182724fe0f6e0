"""Model packs and the models edgesnn ships.

Each pack is a subpackage, `models/<pack>/`, holding its network code (a `build` factory
published in the `edgesnn.model_packs` entry-point group) and its shipped ONNX model with its card.
Importing this package imports no torch: the edge runtime finds shipped cards from here.
"""

from pathlib import Path

SHIPPED_DIR = Path(__file__).parent


def shipped_cards() -> list[Path]:
    """Every model card shipped with the installed package."""
    return sorted(SHIPPED_DIR.glob("*/*.json"))
