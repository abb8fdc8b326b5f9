"""Audio sources that behave like a microphone without audio hardware: an array, a file.

They implement :class:`~speechquant.core.live.microphone.AudioSource`, so the segmenter, the live
loop, the CLI (``listen --input FILE``) and the GUI run on them exactly as on a device; tests use
them to drive everything without PortAudio.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from speechquant.core.errors import AudioDeviceError
from speechquant.core.live.microphone import BLOCK_SECONDS


class ArraySource:
    """A waveform served block by block like a microphone (tests, files, replays).

    Parameters
    ----------
    samples
        Mono audio at ``sample_rate``.
    realtime
        Pace blocks at the audio's own speed (as a microphone would); otherwise serve them as
        fast as they are read.
    fail_after
        Simulate a device that disappears after this many seconds of audio: the blocks before
        it are served, then ``read``/``drain`` raise :class:`AudioDeviceError`.
    """

    def __init__(
        self,
        samples: np.ndarray,
        sample_rate: int,
        block_seconds: float = BLOCK_SECONDS,
        realtime: bool = False,
        fail_after: float | None = None,
        name: str = "array",
    ) -> None:
        self.samples = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        self._rate = int(sample_rate)
        self.block = max(1, int(round(block_seconds * self._rate)))
        self.realtime = realtime
        self._name = name
        self._end = self.samples.size
        self._fail_at: int | None = None
        if fail_after is not None:
            self._fail_at = self._end = min(self._end, int(fail_after * self._rate))
        self._pos = 0
        self._started_at: float | None = None
        self._stopped = False

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def name(self) -> str:
        return self._name

    @property
    def exhausted(self) -> bool:
        # a pending simulated failure is still to be reported by read/drain
        return self._stopped or (self._pos >= self._end and self._fail_at is None)

    def start(self) -> None:
        self._pos = 0
        self._stopped = False
        self._started_at = time.monotonic()

    def stop(self) -> None:
        self._stopped = True

    def _check_started(self) -> None:
        if self._started_at is None:
            raise AudioDeviceError(f"source '{self._name}' was read before start()")

    def _take(self) -> np.ndarray:
        block = self.samples[self._pos : min(self._pos + self.block, self._end)].copy()
        self._pos += block.size
        return block

    def _check_failure(self) -> None:
        if self._fail_at is not None and self._pos >= self._fail_at and not self._stopped:
            self._fail_at = None
            self._stopped = True
            raise AudioDeviceError(
                f"input device '{self._name}' stopped delivering audio (simulated unplug); "
                "the recording so far is kept"
            )

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        self._check_started()
        if self._stopped or self._pos >= self._end:
            self._check_failure()
            return None
        if self.realtime and self._started_at is not None:
            due = min(self._pos + self.block, self._end) / self._rate
            wait = due - (time.monotonic() - self._started_at)
            if wait > 0:
                if timeout is not None and wait > timeout:
                    time.sleep(timeout)
                    return None
                time.sleep(wait)
        return self._take()

    def drain(self) -> list[np.ndarray]:
        self._check_started()
        due = self._end
        if self.realtime and self._started_at is not None:
            due = int((time.monotonic() - self._started_at) * self._rate)
        blocks = []
        while not self._stopped and self._pos < self._end:
            if min(self._pos + self.block, self._end) > due:
                break
            blocks.append(self._take())
        if not blocks:
            self._check_failure()
        return blocks

    def __enter__(self) -> ArraySource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FileSource(ArraySource):
    """An audio file served like a microphone (any format :func:`.audio.load_audio` reads).

    ``sample_rate`` None keeps the file's own rate.
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: int | None = None,
        block_seconds: float = BLOCK_SECONDS,
        realtime: bool = False,
        fail_after: float | None = None,
    ) -> None:
        from speechquant.core.data.audio import audio_info, load_audio

        rate = sample_rate or audio_info(path).sample_rate
        wave = load_audio(path, rate).numpy()
        super().__init__(
            wave, rate, block_seconds, realtime=realtime, fail_after=fail_after, name=str(path)
        )
