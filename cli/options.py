"""Checks shared by the commands' options."""

from __future__ import annotations

import math

import typer


def finite(value: float | None) -> float | None:
    """Option callback: NaN and infinity slip through every min / max range check (comparisons
    with NaN are false), so a float option refuses them here."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value
