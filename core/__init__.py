"""speechquant core: open SpeechBrain ASR models, plan and apply quantization, measure it."""

from __future__ import annotations

from typing import Any

__all__ = ["load_quantized", "open_model"]


def __getattr__(name: str) -> Any:
    """Import the heavy modules (torch, speechbrain) only when these are first used."""
    if name == "load_quantized":
        from .export import load_quantized

        return load_quantized
    if name == "open_model":
        from .models import open_model

        return open_model
    raise AttributeError(name)
