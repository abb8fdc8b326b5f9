"""Shared test setup: offline, a per-checkout model cache, a per-session data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SPEECHQUANT_CACHE", str(REPO / ".cache" / "test-cache"))


@pytest.fixture(autouse=True, scope="session")
def _session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["SPEECHQUANT_DATA"] = str(tmp_path_factory.mktemp("speechquant-data"))


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    """The shared real-speech set; tests that need it skip where it is absent."""
    from speechquant.core.paths import shared_speech_dir

    found = shared_speech_dir()
    if found is None:
        pytest.skip("real speech set ../shared/data/speech is absent on this machine")
    return found


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny wav2vec2 replica, loaded once per session (tests must not mutate it)."""
    from speechquant.core.models import open_model

    return open_model("replica:wav2vec2-tiny")
