"""Small shared helpers for tests."""

from __future__ import annotations

from pathlib import Path

import torch


def fixed_waves(
    n: int, seconds: float = 1.0, rate: int = 16000, seed: int = 0
) -> list[torch.Tensor]:
    """Deterministic noise-like waveforms (for structure and calibration, not accuracy)."""
    generator = torch.Generator().manual_seed(seed)
    length = int(seconds * rate)
    t = torch.arange(length) / rate
    waves = []
    for i in range(n):
        tone = 0.2 * torch.sin(2 * torch.pi * (180 + 40 * i) * t)
        waves.append(tone + 0.05 * torch.randn(length, generator=generator))
    return waves


def file_is_mapped(path: Path) -> bool:
    """True while this process maps ``path`` into memory (``/proc/self/maps``)."""
    target = str(Path(path).resolve())
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        return any(line.rstrip("\n").endswith(" " + target) for line in maps)
