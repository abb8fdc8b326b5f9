"""How sizes read everywhere (tree, plan estimate, results, CLI tables): decimal units."""

from __future__ import annotations

UNITS = ("B", "kB", "MB", "GB", "TB")
"""Powers of 1000, so ``model_bytes / 1e6`` in any table equals the MB shown here."""


def format_bytes(size: float | None) -> str:
    """``151_110_000`` -> ``"151.1 MB"``; ``None`` -> ``"-"``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in UNITS:
        if abs(value) < 1000 or unit == UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
