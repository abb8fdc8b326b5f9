"""Where speechquant keeps its caches and data (overridable for tests)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """Built models (replicas, converted demo model, synthesized demo data).

    ``SPEECHQUANT_CACHE`` overrides the platform's user cache folder.
    """
    root = os.environ.get("SPEECHQUANT_CACHE") or platformdirs.user_cache_dir("speechquant")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """The results store and user datasets. ``SPEECHQUANT_DATA`` overrides it."""
    root = os.environ.get("SPEECHQUANT_DATA") or platformdirs.user_data_dir("speechquant")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_speech_dir() -> Path | None:
    """The real-speech test set beside the checkout, if present (``SPEECHQUANT_SPEECH`` overrides)."""
    env = os.environ.get("SPEECHQUANT_SPEECH")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [parent / "shared" / "data" / "speech" for parent in here.parents]
    candidates += [parent.parent / "shared" / "data" / "speech" for parent in [Path.cwd()]]
    for candidate in candidates:
        if (candidate / "manifest.csv").is_file():
            return candidate
    return None
