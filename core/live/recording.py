"""Keeping what the microphone captured: a growing recording, WAV files and user datasets.

A user dataset is a folder ``data_dir()/datasets/NAME`` of audio files with ``.txt`` sidecars
holding the reference, the sidecar DATA form that every command and the GUI read.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from speechquant.core.errors import DataError
from speechquant.core.paths import data_dir

DATASET_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,63}$")


class Recording:
    """Audio appended block by block (from any thread), read back as one array."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)
        self._blocks: list[np.ndarray] = []
        self._samples = 0
        self._lock = threading.Lock()

    def append(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        with self._lock:
            self._blocks.append(block)
            self._samples += block.size

    def clear(self) -> None:
        with self._lock:
            self._blocks, self._samples = [], 0

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def duration(self) -> float:
        return self._samples / self.sample_rate

    def audio(self) -> np.ndarray:
        """Everything recorded so far, mono float32."""
        with self._lock:
            if len(self._blocks) > 1:
                self._blocks = [np.concatenate(self._blocks)]
            return self._blocks[0].copy() if self._blocks else np.zeros(0, dtype=np.float32)

    def tail(self, seconds: float) -> np.ndarray:
        """The last ``seconds`` of audio (for waveform displays)."""
        want = int(seconds * self.sample_rate)
        with self._lock:
            parts: list[np.ndarray] = []
            have = 0
            for block in reversed(self._blocks):
                parts.append(block)
                have += block.size
                if have >= want:
                    break
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts[::-1])[-want:] if want else np.zeros(0, dtype=np.float32)

    def save_wav(self, path: str | Path) -> Path:
        """Write the recording as 16-bit PCM WAV (raises DataError when empty)."""
        return write_wav(path, self.audio(), self.sample_rate)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio as a 16-bit PCM WAV file, atomically."""
    path = Path(path)
    if audio.size == 0:
        raise DataError("nothing was recorded; record something before saving")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), int(sample_rate), "PCM_16", format="WAV")
        tmp.replace(path)
    except (OSError, sf.SoundFileError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {path}: {exc}") from None
    return path


def datasets_dir() -> Path:
    """Where user datasets live: ``data_dir()/datasets``."""
    return data_dir() / "datasets"


def user_datasets() -> list[str]:
    """Names of the user datasets, sorted."""
    root = datasets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and DATASET_NAME.match(p.name))


def dataset_path(name: str) -> Path:
    """The folder of user dataset ``name`` (validated; not created)."""
    name = name.strip()
    if not DATASET_NAME.match(name):
        raise DataError(
            f"dataset name '{name}' is not usable; use letters, digits, '-', '_' or '.' "
            "(up to 64, starting with a letter or digit)"
        )
    return datasets_dir() / name


def save_to_dataset(
    audio: np.ndarray,
    sample_rate: int,
    reference: str,
    name: str,
    stem: str | None = None,
) -> Path:
    """Add one utterance (WAV + ``.txt`` reference) to user dataset ``name``; returns the WAV.

    The file is named ``stem`` or ``rec-YYYYmmdd-HHMMSS`` (with a counter where taken), so the
    dataset's sorted order is the recording order.

    Raises
    ------
    DataError
        If the name is unusable, the reference is empty, nothing was recorded, or the files
        cannot be written.
    """
    folder = dataset_path(name)
    text = " ".join(reference.split())
    if not text:
        raise DataError("type the reference text (what was said) before saving the recording")
    base = stem or time.strftime("rec-%Y%m%d-%H%M%S")
    if not DATASET_NAME.match(base):
        raise DataError(f"recording name '{base}' is not usable as a file name")
    target = folder / f"{base}.wav"
    n = 1
    while target.exists() or target.with_suffix(".txt").exists():
        n += 1
        target = folder / f"{base}-{n}.wav"
    write_wav(target, audio, sample_rate)
    try:
        target.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise DataError(f"cannot write {target.with_suffix('.txt')}: {exc}") from None
    return target


def peak_envelope(samples: np.ndarray, buckets: int) -> np.ndarray:
    """Min/max per bucket, interleaved (``2 * buckets`` values), for drawing long waveforms.

    Keeps every peak however far the audio is downsampled; shorter input is returned as is.
    """
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if buckets <= 0 or samples.size <= 2 * buckets:
        return samples.copy()
    usable = samples[: samples.size - samples.size % buckets].reshape(buckets, -1)
    out = np.empty(2 * buckets, dtype=np.float32)
    out[0::2] = usable.min(axis=1)
    out[1::2] = usable.max(axis=1)
    return out
