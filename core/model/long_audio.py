"""Long audio: cut a waveform into windows at pauses, so no model sees more than it can take.

Whisper's encoder sees 30 s at most (it silently drops the rest); CTC encoders grow in memory
and time with the input. :func:`plan_windows` cuts audio longer than ``max_seconds`` at the
quietest point (smoothed frame energy) in the second half of each window, so every window is at
most ``max_seconds`` long and cuts fall in pauses where the speech has them. Each window is
transcribed on its own and the texts are joined in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: The shortest clip a model is given (the wav2vec2 conv front end needs 400 samples at 16 kHz).
MIN_SECONDS = 0.025
#: Whisper's input window; longer audio is cut into windows of at most :data:`WINDOW_SECONDS`.
WHISPER_SECONDS = 30.0
WINDOW_SECONDS = 28.0
#: CTC and attention encoder-decoder models: inputs longer than this are cut the same way.
ENCODER_SECONDS = 30.0
_FRAME = 0.02
_SMOOTH = 0.2


@dataclass(frozen=True)
class Window:
    """One window of a waveform, in samples (``start`` inclusive, ``end`` exclusive)."""

    start: int
    end: int

    def seconds(self, rate: int) -> list[float]:
        return [round(self.start / rate, 3), round(self.end / rate, 3)]


def _frame_energy(wav: torch.Tensor, rate: int) -> torch.Tensor:
    """Smoothed RMS energy per ``_FRAME`` frame."""
    hop = max(1, int(_FRAME * rate))
    n = wav.numel() // hop
    frames = wav[: n * hop].reshape(n, hop)
    energy = frames.pow(2).mean(dim=1).sqrt()
    width = max(1, int(_SMOOTH / _FRAME)) | 1
    return F.avg_pool1d(energy.view(1, 1, -1), width, stride=1, padding=width // 2).view(-1)[:n]


def plan_windows(
    wav: torch.Tensor, rate: int, limit_seconds: float, window_seconds: float
) -> list[Window]:
    """Windows covering ``wav``: one if it is at most ``limit_seconds``, else cuts at pauses.

    Every window is at most ``window_seconds`` long; each cut is at the quietest frame in the
    second half of the window it ends.
    """
    total = wav.numel()
    if total <= int(limit_seconds * rate):
        return [Window(0, total)]
    hop = max(1, int(_FRAME * rate))
    energy = _frame_energy(wav, rate)
    longest = int(window_seconds * rate)
    windows: list[Window] = []
    start = 0
    while total - start > longest:
        lo = (start + longest // 2) // hop
        hi = (start + longest) // hop
        cut = (lo + int(torch.argmin(energy[lo:hi]))) * hop if hi > lo else start + longest
        windows.append(Window(start, cut))
        start = cut
    windows.append(Window(start, total))
    return windows
