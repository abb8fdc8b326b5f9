"""Audio output over ``sounddevice``: hear an utterance of a dataset on the default output device.

As for the microphone, PortAudio is loaded (see :mod:`.devices`) only when an output device is
looked for. :func:`open_player` gives a player on the default output device or raises
:class:`~speechquant.core.errors.AudioDeviceError` saying why there is none; anything with
``play(samples, sample_rate)`` and ``stop()`` (:class:`AudioPlayer`) can stand in for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from speechquant.core.data.audio import AudioReadError, audio_info
from speechquant.core.data.datasets import Dataset
from speechquant.core.errors import AudioDeviceError, DataError
from speechquant.core.live.devices import (
    AudioDevice,
    exception_reason,
    import_sounddevice,
    list_devices,
)

NO_OUTPUT_HINT = (
    "connect speakers or headphones, or start an audio server (PulseAudio/PipeWire) that "
    "provides an output"
)


class AudioPlayer(Protocol):
    """What the desktop app plays an utterance through."""

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        """Start playing mono float32 ``samples``; returns at once (the previous sound stops)."""

    def stop(self) -> None: ...


def list_output_devices() -> list[AudioDevice]:
    """Every device with output channels, the default one marked.

    Raises
    ------
    AudioDeviceError
        If PortAudio is missing or cannot enumerate devices.
    """
    return list_devices("output")


class SoundDevicePlayer:
    """Plays on one output device through ``sounddevice.play`` (non-blocking)."""

    def __init__(self, device: AudioDevice) -> None:
        self.device = device

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        """Play ``samples``, resampled to the device's default rate when it refuses theirs."""
        sd = import_sounddevice("output")
        audio = np.ascontiguousarray(samples, dtype=np.float32)
        try:
            sd.check_output_settings(self.device.index, channels=1, samplerate=sample_rate)
        except (sd.PortAudioError, ValueError):
            import torch
            import torchaudio.functional as taf

            wave = taf.resample(torch.from_numpy(audio), sample_rate, self.device.default_rate)
            audio, sample_rate = wave.numpy(), self.device.default_rate
        try:
            sd.play(audio, sample_rate, device=self.device.index)
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioDeviceError(
                f"cannot play on {self.device.label()}: {exception_reason(exc)}; {NO_OUTPUT_HINT}"
            ) from None

    def stop(self) -> None:
        import_sounddevice("output").stop()


def open_player() -> SoundDevicePlayer:
    """A player on the default output device (else the first one).

    Raises
    ------
    AudioDeviceError
        If PortAudio is missing or there is no output device, saying so in one line.
    """
    devices = list_output_devices()
    if not devices:
        raise AudioDeviceError(f"no audio output device found; {NO_OUTPUT_HINT}")
    return SoundDevicePlayer(next((d for d in devices if d.is_default), devices[0]))


@dataclass(frozen=True)
class UtteranceAudio:
    """One utterance's samples at the file's own rate (mono float32) and where they came from."""

    id: str
    path: Path
    samples: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


def utterance_audio(dataset: Dataset, utt_id: str) -> UtteranceAudio:
    """Read the audio of utterance ``utt_id`` of ``dataset`` as it is on disk (not resampled).

    Raises
    ------
    DataError
        If ``dataset`` has no such utterance or its audio cannot be read.
    """
    found = next((u for u in dataset.utterances if u.id == utt_id), None)
    if found is None:
        raise DataError(
            f"DATA {dataset.source} has no utterance {utt_id!r} any more; the run was made on "
            "another version of it"
        )
    audio_info(found.audio_path)  # a missing or unreadable file: one clear AudioReadError
    try:
        data, rate = sf.read(str(found.audio_path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioReadError(
            f"cannot read audio {found.audio_path}: {exception_reason(exc)}"
        ) from None
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return UtteranceAudio(utt_id, found.audio_path, np.ascontiguousarray(mono), int(rate))
