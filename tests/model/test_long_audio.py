"""Long audio is cut into windows at pauses; nothing past Whisper's 30 s is dropped."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from speechquant.core.model.loaded import LoadedModel
from speechquant.core.model.long_audio import WINDOW_SECONDS, plan_windows

RATE = 16000


def _speech_with_pauses(pause_at: list[float], seconds: float) -> torch.Tensor:
    """Noise bursts ("speech") with 0.4 s silences starting at ``pause_at``."""
    wav = 0.3 * torch.randn(int(seconds * RATE), generator=torch.Generator().manual_seed(0))
    for start in pause_at:
        wav[int(start * RATE) : int((start + 0.4) * RATE)] = 0.0
    return wav


def test_short_audio_is_one_window():
    wav = torch.randn(20 * RATE)
    assert [(w.start, w.end) for w in plan_windows(wav, RATE, 30.0, WINDOW_SECONDS)] == [
        (0, wav.numel())
    ]


def test_long_audio_is_cut_in_its_pauses():
    pauses = [9.0, 21.0, 40.0, 55.0]
    wav = _speech_with_pauses(pauses, 70.0)
    windows = plan_windows(wav, RATE, 30.0, WINDOW_SECONDS)
    assert windows[0].start == 0 and windows[-1].end == wav.numel()
    assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))
    assert all(w.end - w.start <= WINDOW_SECONDS * RATE for w in windows)
    for w in windows[:-1]:  # every cut lies inside a pause
        assert any(p * RATE <= w.end <= (p + 0.4) * RATE for p in pauses), w.end / RATE


class _RecordingASR:
    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.mods = nn.ModuleDict()

    def transcribe_batch(self, wavs: torch.Tensor, lens: torch.Tensor) -> tuple[Any, None]:
        self.lengths.append(wavs.shape[1])
        return [f"w{len(self.lengths)}"], None


@pytest.mark.parametrize("interface", ["WhisperASR", "EncoderASR"])
def test_transcribe_joins_every_window(interface):
    asr = _RecordingASR()
    model = LoadedModel(asr=asr, source="x", interface=interface, folder=None, sample_rate=RATE)
    wav = _speech_with_pauses([20.0, 45.0], 62.0)
    transcript = model.transcribe_windows(wav)
    assert transcript.text == "w1 w2 w3"
    assert sum(asr.lengths) == wav.numel() and max(asr.lengths) <= WINDOW_SECONDS * RATE
    chunks = transcript.chunking(RATE)
    assert chunks is not None and chunks[0][0] == 0.0 and chunks[-1][1] == 62.0


@pytest.mark.slow
@pytest.mark.realdata
def test_whisper_long_utterance_matches_its_parts(speech_dir):
    """> 30 s of real LJSpeech, one utterance: WER within 2 points of the parts one by one."""
    from speechquant.core.data.audio import load_audio
    from speechquant.core.data.datasets import open_dataset
    from speechquant.core.evaluation.metrics import compute_wer
    from speechquant.core.sources import open_model

    whisper = open_model("demo:whisper-tiny-en")
    parts = [u for u in open_dataset(speech_dir / "manifest.csv") if u.id.startswith("LJ")]
    waves, kept = [], []
    for utterance in parts:
        waves.append(load_audio(utterance.audio_path, RATE))
        kept.append(utterance)
        if sum(w.numel() for w in waves) > 50 * RATE:
            break
    long_wav = torch.cat(waves)
    assert long_wav.numel() > 45 * RATE
    ref = " ".join(u.ref for u in kept)
    one_by_one = " ".join(whisper.transcribe(w) for w in waves)
    transcript = whisper.transcribe_windows(long_wav)
    chunks = transcript.chunking(RATE)
    assert chunks is not None and len(chunks) >= 2
    parts_wer = compute_wer([("parts", ref, one_by_one)]).wer
    long_wer = compute_wer([("long", ref, transcript.text)]).wer
    print(
        f"{long_wav.numel() / RATE:.1f} s in {len(chunks)} windows {chunks}: WER {long_wer:.2f}"
        f" vs {parts_wer:.2f} one by one"
    )
    assert long_wer <= parts_wer + 2.0
