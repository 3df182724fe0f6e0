"""Commands that need the training extra say so in one line instead of an ImportError."""

from __future__ import annotations

import importlib

from edgesnn.errors import EdgesnnError


def need_training_extra(*modules: str) -> None:
    """Import-check `modules` (default: torch); refuse with the install line if one is missing."""
    for name in modules or ("torch",):
        try:
            importlib.import_module(name)
        except ImportError:
            raise EdgesnnError("this command needs the training extra: pip install 'edgesnn[train]'") from None
