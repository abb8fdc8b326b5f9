"""Reading audio files as mono float32 waveforms at the rate a model expects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as taf

from speechquant.core.errors import DataError


class AudioReadError(DataError):
    """An audio file that cannot be used: missing, unreadable, corrupt, empty or non-finite."""


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says, without decoding its samples."""

    duration: float
    sample_rate: int
    channels: int
    frames: int


def _read_error(path: Path, error: BaseException) -> AudioReadError:
    reason = getattr(error, "error_string", None) or str(error)
    reason = " ".join(reason.split()).rstrip(".") or type(error).__name__
    return AudioReadError(
        f"cannot read audio {path}: {reason} (re-encode it as WAV or FLAC, e.g. with sox)"
    )


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioReadError(f"audio file {path} does not exist")
    if not path.is_file():
        raise AudioReadError(f"audio path {path} is not a file")


def audio_info(path: str | Path) -> AudioInfo:
    """Read duration, sample rate and channel count from the file header.

    Raises
    ------
    AudioReadError
        If the file is missing or soundfile cannot parse its header.
    """
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as error:
        raise _read_error(path, error) from error
    frames = int(info.frames)
    rate = int(info.samplerate)
    return AudioInfo(
        duration=frames / rate if rate else 0.0,
        sample_rate=rate,
        channels=int(info.channels),
        frames=frames,
    )


def load_audio(path: str | Path, target_rate: int) -> torch.Tensor:
    """Load an audio file as a 1-D float32 waveform at ``target_rate``.

    Any sample format soundfile decodes is accepted (integer PCM of any width, float,
    FLAC, OGG, MP3 where libsndfile supports it). Multi-channel audio is averaged to mono
    and the result is resampled with :func:`torchaudio.functional.resample`.

    Parameters
    ----------
    path
        The audio file.
    target_rate
        The sample rate of the returned waveform, in Hz.

    Returns
    -------
    torch.Tensor
        Shape ``(samples,)``, dtype float32, values nominally in ``[-1, 1]``.

    Raises
    ------
    AudioReadError
        If the file is missing, unreadable or corrupt, holds no samples, or holds
        NaN/infinite samples.
    """
    if target_rate <= 0:
        raise ValueError(f"target_rate must be positive, got {target_rate}")
    path = Path(path)
    _check_exists(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as error:
        raise _read_error(path, error) from error
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioReadError(f"audio file {path} is empty (0 samples)")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioReadError(f"audio file {path} contains NaN or infinite samples")
    waveform = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))
    if int(rate) != target_rate:
        waveform = taf.resample(waveform, int(rate), target_rate)
    if waveform.numel() == 0:
        raise AudioReadError(f"audio file {path} is too short to resample to {target_rate} Hz")
    return waveform.contiguous()
