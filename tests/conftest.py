"""Shared test setup: offline, a per-checkout model cache, a per-session data folder."""

from __future__ import annotations

import contextlib
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
    from speechquant.core.sources import open_model

    return open_model("replica:wav2vec2-tiny")


@pytest.fixture(scope="session")
def crdnn_tiny():
    """The tiny CRDNN replica (EncoderDecoderASR: LSTM encoder, GRU decoder, RNN LM), loaded once."""
    from speechquant.core.sources import open_model

    return open_model("replica:crdnn-tiny")


@pytest.fixture(scope="session")
def conformer_tiny():
    """The tiny conformer replica (EncoderDecoderASR: conformer, transformer decoder, CTC + LM)."""
    from speechquant.core.sources import open_model

    return open_model("replica:conformer-tiny")


SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


@pytest.fixture(scope="session")
def virtual_mic():
    """A private PulseAudio server whose default source hears what ``play()`` plays.

    Skips where the pulseaudio binary is absent. ``PULSE_SERVER`` points this process (and its
    children) at it, and PortAudio re-lists its devices, for the session.
    """
    from speechquant.core.live.devices import refresh_devices

    from .audio_fixtures import PulseServer

    server = PulseServer()
    previous = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = server.server
    try:
        refresh_devices()
        yield server
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("PULSE_SERVER", None)
        else:
            os.environ["PULSE_SERVER"] = previous
        with contextlib.suppress(Exception):
            refresh_devices()


@pytest.fixture(scope="session")
def spoken_sentence(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """SENTENCE spoken by Festival's US English voice, as (text, wav path)."""
    from .audio_fixtures import synthesize

    return SENTENCE, synthesize(SENTENCE, tmp_path_factory.mktemp("speech") / "sentence.wav")


@pytest.fixture(scope="session")
def demo_whisper():
    """The real Whisper tiny.en (``demo:whisper-tiny-en``), loaded once per session."""
    from speechquant.core.sources import open_model

    return open_model("demo:whisper-tiny-en")
