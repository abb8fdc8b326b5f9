"""Cutting a live audio stream into utterances: push-to-talk, or energy-based voice activity.

:class:`Segmenter` takes mono float32 blocks of any size (as :mod:`.microphone` delivers them),
works on fixed frames (30 ms by default) and returns finished :class:`Segment` objects. It is
cheap (one RMS per frame) so it can run on a GUI timer; transcription happens elsewhere.

Continuous mode: a frame is voiced when its level is above both ``threshold_db`` and the noise
floor plus ``margin_db``; the noise floor is the 10th percentile of the last 3 s of frame levels,
so a steady room noise stops counting as speech within seconds. A segment opens at the first voiced frame (with ``pre_roll`` of
audio before it), closes after ``silence_end`` of unvoiced frames, is split at ``max_segment``
and dropped when it holds less than ``min_speech`` voiced or ``min_segment`` total audio.

Push-to-talk mode: audio between :meth:`Segmenter.press` and :meth:`Segmenter.release` is one
segment (split at ``max_segment``; dropped when shorter than ``min_segment``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from speechquant.core.errors import SpeechquantError

MODES = ("continuous", "push-to-talk")
SILENT_DB = -120.0
NOISE_WINDOW = 3.0  # seconds of frame levels the noise floor is estimated from
NOISE_PERCENTILE = 10.0


def level_db(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-120 for silence or no samples)."""
    if samples.size == 0:
        return SILENT_DB
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENT_DB, 20.0 * math.log10(rms)) if rms > 0 else SILENT_DB


@dataclass(frozen=True)
class Segment:
    """One utterance cut from the stream.

    Attributes
    ----------
    audio
        Mono float32 samples at ``sample_rate``.
    start
        Seconds from the start of the stream to the first sample.
    index
        Running number of the segment in its stream, from 0.
    reason
        Why it closed: ``silence``, ``max-length``, ``released`` or ``end``.
    """

    audio: np.ndarray
    sample_rate: int
    start: float
    index: int
    reason: str

    @property
    def duration(self) -> float:
        return self.audio.size / self.sample_rate

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass
class SegmenterSettings:
    """How the stream is cut (seconds and dBFS)."""

    mode: str = "continuous"
    frame_ms: float = 30.0
    threshold_db: float = -45.0
    margin_db: float = 12.0
    min_speech: float = 0.25
    min_segment: float = 0.5
    max_segment: float = 20.0
    silence_end: float = 0.6
    pre_roll: float = 0.25

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SpeechquantError(f"unknown segmenter mode '{self.mode}'; use one of {MODES}")
        if not 5.0 <= self.frame_ms <= 200.0:
            raise SpeechquantError(f"frame_ms must be within 5..200, got {self.frame_ms}")
        if self.min_segment < 0 or self.min_speech < 0 or self.pre_roll < 0:
            raise SpeechquantError("min_segment, min_speech and pre_roll must not be negative")
        if self.max_segment <= max(self.min_segment, self.frame_ms / 1000.0):
            raise SpeechquantError(
                f"max_segment ({self.max_segment:g} s) must be longer than min_segment "
                f"({self.min_segment:g} s)"
            )
        if self.silence_end <= 0:
            raise SpeechquantError(f"silence_end must be positive, got {self.silence_end}")


class Segmenter:
    """Turns a stream of blocks into :class:`Segment` objects (see the module docstring)."""

    def __init__(self, sample_rate: int, settings: SegmenterSettings | None = None) -> None:
        if sample_rate <= 0:
            raise SpeechquantError(f"sample rate must be positive, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self.settings = settings or SegmenterSettings()
        s = self.settings
        self.frame = max(1, int(round(s.frame_ms / 1000.0 * self.sample_rate)))
        self._max_frames = max(1, int(s.max_segment * self.sample_rate / self.frame))
        self._silence_frames = max(1, int(math.ceil(s.silence_end * self.sample_rate / self.frame)))
        self._pre_frames: deque[np.ndarray] = deque(
            maxlen=max(1, int(round(s.pre_roll * self.sample_rate / self.frame)))
        )
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames: list[np.ndarray] = []
        self._open_at = 0  # sample offset of the open segment's first sample
        self._voiced = 0
        self._silent_run = 0
        self._position = 0  # samples consumed into frames so far
        self._count = 0
        self._pressed = False
        self._levels: deque[float] = deque(
            maxlen=max(1, int(NOISE_WINDOW * self.sample_rate / self.frame))
        )
        self.noise_floor_db = s.threshold_db - s.margin_db
        self.level_db = SILENT_DB
        self.voiced = False

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def in_segment(self) -> bool:
        """True while a segment is open (speech heard, or the talk button held)."""
        return bool(self._frames)

    @property
    def position(self) -> float:
        """Seconds of audio consumed so far."""
        return (self._position + self._pending.size) / self.sample_rate

    def threshold(self) -> float:
        """The level (dBFS) above which a frame counts as speech now."""
        return max(self.settings.threshold_db, self.noise_floor_db + self.settings.margin_db)

    def push(self, block: np.ndarray) -> list[Segment]:
        """Add samples; returns the segments they completed (usually none)."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._pending.size:
            block = np.concatenate([self._pending, block])
        n = block.size // self.frame
        self._pending = block[n * self.frame :].copy()
        done: list[Segment] = []
        for i in range(n):
            frame = block[i * self.frame : (i + 1) * self.frame]
            done.extend(self._frame(frame))
            self._position += self.frame
        return done

    def press(self) -> list[Segment]:
        """Push-to-talk: start a segment (closing any open one first)."""
        done = self._close("released") if self._frames else []
        self._pressed = True
        return done

    def release(self) -> list[Segment]:
        """Push-to-talk: end the segment; returns it unless it is too short."""
        self._pressed = False
        return self._close("released")

    def flush(self) -> list[Segment]:
        """End of stream: close the open segment (with any samples short of a frame)."""
        if self._frames and self._pending.size:
            self._frames.append(self._pending)
            self._position += self._pending.size
        self._pending = np.zeros(0, dtype=np.float32)
        self._pressed = False
        return self._close("end")

    def _track_noise(self, db: float) -> None:
        # a low percentile of the recent frame levels: the room between words, not the voice
        self._levels.append(db)
        self.noise_floor_db = float(np.percentile(self._levels, NOISE_PERCENTILE))

    def _frame(self, frame: np.ndarray) -> list[Segment]:
        db = level_db(frame)
        self.level_db = db
        self._track_noise(db)
        self.voiced = db > self.threshold()
        if self.settings.mode == "push-to-talk":
            if not self._pressed:
                return []
            if not self._frames:
                self._open_at = self._position
            self._frames.append(frame)
            self._voiced += int(self.voiced)
            return self._close("max-length") if len(self._frames) >= self._max_frames else []
        return self._continuous(frame)

    def _continuous(self, frame: np.ndarray) -> list[Segment]:
        if not self._frames:
            if not self.voiced:
                self._pre_frames.append(frame)
                return []
            self._frames = list(self._pre_frames)
            self._open_at = self._position - len(self._frames) * self.frame
            self._pre_frames.clear()
        self._frames.append(frame)
        if self.voiced:
            self._voiced += 1
            self._silent_run = 0
        else:
            self._silent_run += 1
        if self._silent_run >= self._silence_frames:
            tail = min(self._silent_run, self._pre_frames.maxlen or 0)  # keep a little silence
            del self._frames[len(self._frames) - self._silent_run + tail :]
            return self._close("silence")
        if len(self._frames) >= self._max_frames:
            return self._close("max-length")
        return []

    def _close(self, reason: str) -> list[Segment]:
        frames, voiced = self._frames, self._voiced
        self._frames, self._voiced, self._silent_run = [], 0, 0
        if not frames:
            return []
        audio = np.concatenate(frames).astype(np.float32, copy=False)
        s = self.settings
        enough_speech = self.settings.mode == "push-to-talk" or (
            voiced * self.frame / self.sample_rate >= s.min_speech
        )
        if audio.size / self.sample_rate < s.min_segment or not enough_speech:
            return []
        segment = Segment(
            audio=audio,
            sample_rate=self.sample_rate,
            start=self._open_at / self.sample_rate,
            index=self._count,
            reason=reason,
        )
        self._count += 1
        return [segment]
