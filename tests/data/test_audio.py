from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechquant.core.data.audio import AudioReadError, audio_info, load_audio
from speechquant.core.errors import DataError


def sine(rate: int, seconds: float, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels == 1:
        return wave.astype(np.float32)
    return np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize(
    ("rate", "subtype", "suffix"),
    [
        (8000, "PCM_16", ".wav"),
        (16000, "FLOAT", ".wav"),
        (22050, "PCM_24", ".flac"),
        (44100, "PCM_32", ".wav"),
        (16000, "VORBIS", ".ogg"),
    ],
)
def test_load_resamples_to_target_rate(
    tmp_path: Path, rate: int, subtype: str, suffix: str
) -> None:
    path = tmp_path / f"a{suffix}"
    sf.write(path, sine(rate, 1.5), rate, subtype=subtype)
    wave = load_audio(path, 16000)
    assert wave.dtype == torch.float32
    assert wave.ndim == 1
    assert abs(wave.numel() - 24000) <= 2
    assert 0.3 < float(wave.abs().max()) < 0.7


def test_stereo_is_downmixed_by_mean(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = np.full(1000, 0.2, dtype=np.float32)
    right = np.full(1000, 0.6, dtype=np.float32)
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave = load_audio(path, 16000)
    assert wave.shape == (1000,)
    assert torch.allclose(wave, torch.full((1000,), 0.4))


def test_int16_stereo_44k_resampled_and_downmixed(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    sf.write(path, sine(44100, 2.0, channels=2), 44100, subtype="PCM_16")
    wave = load_audio(path, 16000)
    assert abs(wave.numel() - 32000) <= 2


def test_audio_info_reads_header(tmp_path: Path) -> None:
    path = tmp_path / "s.flac"
    sf.write(path, sine(22050, 2.0, channels=2), 22050)
    info = audio_info(path)
    assert info.sample_rate == 22050
    assert info.channels == 2
    assert info.frames == 44100
    assert info.duration == pytest.approx(2.0)


def test_corrupt_file_raises_one_line_audio_read_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(200)))
    with pytest.raises(AudioReadError) as caught:
        load_audio(path, 16000)
    message = str(caught.value)
    assert "broken.wav" in message
    assert "\n" not in message
    assert isinstance(caught.value, DataError)
    with pytest.raises(AudioReadError):
        audio_info(path)


def test_random_bytes_flac_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "noise.flac"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioReadError, match="noise.flac"):
        load_audio(path, 16000)


def test_zero_length_audio_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioReadError, match="empty"):
        load_audio(path, 16000)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(AudioReadError, match="does not exist"):
        load_audio(tmp_path / "nope.wav", 16000)


def test_non_finite_samples_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    data = np.zeros(100, dtype=np.float32)
    data[10] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")
    with pytest.raises(AudioReadError, match="NaN"):
        load_audio(path, 16000)
