"""Audio input from a microphone over ``sounddevice`` (see :mod:`.file_source` for files).

``sounddevice`` (and with it the PortAudio library) is imported only when a microphone is listed
or opened, so everything else works on machines without PortAudio. The PortAudio callback only
copies each block into a bounded :class:`queue.Queue`; consumers (the GUI's timer, the CLI's
loop) drain it with :meth:`AudioSource.read` or :meth:`AudioSource.drain`, which return mono
float32 blocks at :attr:`AudioSource.sample_rate`.

Sample rates: a microphone is opened at the preferred rate (normally the model's) when the device
accepts it, else at the device's default rate; segments are resampled to each model's rate when
they are transcribed (see :mod:`.live`), once per utterance, so block edges never click.

A failing device (unplugged, audio server gone, silent for too long) is reported by ``read`` and
``drain`` as :class:`~speechquant.core.errors.AudioDeviceError`, but only after every block that
arrived before the failure has been handed out, so the recording so far is never lost.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speechquant.core.errors import AudioDeviceError
from speechquant.core.live.devices import (
    AudioDevice,
    exception_reason,
    import_sounddevice,
    list_devices,
    mark_stream,
)

BLOCK_SECONDS = 0.03
QUEUE_SECONDS = 60.0
STALL_SECONDS = 3.0
CLOSE_TIMEOUT = 5.0
STARTUP_GRACE = 3.0  # extra wait for the first block (ALSA's PulseAudio device can take ~2 s)
NO_DEVICE_HINT = (
    "connect a microphone, or start an audio server (PulseAudio/PipeWire) that provides one"
)


def list_input_devices(refresh: bool = True) -> list[AudioDevice]:
    """Every device with input channels, the default one marked.

    Raises
    ------
    AudioDeviceError
        If PortAudio is missing or cannot enumerate devices.
    """
    return list_devices("input", refresh)


def resolve_device(spec: str | int | None, devices: list[AudioDevice] | None = None) -> AudioDevice:
    """The input device named by ``spec``: None/"" for the default, an index, or a name.

    A name matches exactly, else as a unique case-insensitive substring.

    Raises
    ------
    AudioDeviceError
        If there is no input device at all, or ``spec`` matches none or several.
    """
    devices = list_input_devices() if devices is None else devices
    if not devices:
        raise AudioDeviceError(f"no audio input device found; {NO_DEVICE_HINT}")
    names = "; ".join(d.label() for d in devices)
    text = "" if spec is None else str(spec).strip()
    if not text:
        return next((d for d in devices if d.is_default), devices[0])
    if text.lstrip("-").isdigit():
        for device in devices:
            if device.index == int(text):
                return device
        raise AudioDeviceError(f"no input device with index {text}; the inputs are: {names}")
    exact = [d for d in devices if d.name == text]
    if exact:
        return exact[0]
    partial = [d for d in devices if text.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    what = "several input devices match" if partial else "no input device matches"
    raise AudioDeviceError(f"{what} '{text}'; the inputs are: {names}")


@runtime_checkable
class AudioSource(Protocol):
    """What the segmenter, the live loop and the GUI read audio from."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def exhausted(self) -> bool:
        """True once no more audio will come (stopped, or the end of a file)."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        """The next mono float32 block, or None when none arrived within ``timeout``."""
        ...

    def drain(self) -> list[np.ndarray]:
        """Every block waiting now (may be empty), without blocking."""
        ...


def _mono(block: np.ndarray) -> np.ndarray:
    if block.ndim == 2:
        block = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
    return np.ascontiguousarray(block, dtype=np.float32)


class MicrophoneSource:
    """A live input device; ``start()`` opens it and ``stop()`` closes it.

    Parameters
    ----------
    device
        Index or name of the input device; None for the default one.
    sample_rate
        Preferred capture rate (normally the model's); the device's default rate is used where
        the device refuses it.
    block_seconds
        Audio per callback block.
    queue_seconds
        Capacity of the block queue; when the consumer falls this far behind, new blocks are
        dropped (and counted in :attr:`dropped`) rather than blocking the audio thread.
    stall_seconds
        A running stream that delivers nothing for this long is reported as failed.
    latency
        PortAudio's suggested input latency; "low" suits live transcription.
    """

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int | None = 16000,
        block_seconds: float = BLOCK_SECONDS,
        queue_seconds: float = QUEUE_SECONDS,
        stall_seconds: float = STALL_SECONDS,
        latency: str | float = "low",
    ) -> None:
        if block_seconds <= 0 or queue_seconds < block_seconds:
            raise ValueError("block_seconds must be positive and queue_seconds >= block_seconds")
        self.device_spec = device
        self.preferred_rate = sample_rate
        self.block_seconds = block_seconds
        self.stall_seconds = stall_seconds
        self.latency = latency
        self.device: AudioDevice | None = None
        self.dropped = 0
        self.overflows = 0
        self.close_timed_out = False
        self._rate = sample_rate or 16000
        self._queue: queue.Queue[np.ndarray] = queue.Queue(
            maxsize=max(1, int(queue_seconds / block_seconds))
        )
        self._stream: Any = None
        self._running = False
        self._stopping = False
        self._ended = threading.Event()
        self._failure: str | None = None
        self._last_block = 0.0
        self._flowing = False

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def name(self) -> str:
        return self.device.name if self.device else str(self.device_spec or "default input")

    @property
    def exhausted(self) -> bool:
        return not self._running and self._queue.empty()

    def _choose_format(self, sd: Any, device: AudioDevice) -> tuple[int, int]:
        """(rate, channels): the preferred rate in mono where the device accepts it."""
        rates = [r for r in (self.preferred_rate, device.default_rate) if r]
        for channels in [1] + ([2] if device.channels >= 2 else []):
            for rate in rates:
                try:
                    sd.check_input_settings(
                        device=device.index, samplerate=rate, channels=channels, dtype="float32"
                    )
                except (sd.PortAudioError, ValueError):
                    continue
                return int(rate), channels
        return device.default_rate, 1

    def start(self) -> None:
        """Open the device and start capturing.

        Raises
        ------
        AudioDeviceError
            If PortAudio is missing, there is no such device, or it cannot be opened (busy).
        """
        if self._running:
            return
        sd = import_sounddevice()
        # no re-listing here: a stream opened right after PortAudio re-initializes may get its
        # first block only ~2 s later (seen with ALSA's PulseAudio device)
        self.device = device = resolve_device(self.device_spec, list_input_devices(refresh=False))
        self._rate, channels = self._choose_format(sd, device)
        self._stopping = False
        self._failure = None
        self._ended.clear()
        try:
            self._stream = sd.InputStream(
                device=device.index,
                samplerate=self._rate,
                channels=channels,
                dtype="float32",
                blocksize=max(1, int(round(self.block_seconds * self._rate))),
                latency=self.latency,
                callback=self._callback,
                finished_callback=self._ended.set,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._close_stream()
            raise AudioDeviceError(
                f"cannot open input device '{device.name}': {exception_reason(exc)} (is it busy or "
                "unplugged? choose another device)"
            ) from None
        mark_stream(opened=True)
        self._running = True
        self._flowing = False
        self._last_block = time.monotonic()

    # Runs on PortAudio's thread: copy and enqueue, nothing else.
    def _callback(self, indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        if status:
            self.overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.dropped += 1

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return

        def close() -> None:
            # abort, not stop: stop waits for PortAudio's thread to finish its buffers, which
            # a vanished device may never let it do; captured input needs no draining
            with contextlib.suppress(Exception):
                stream.abort()
            with contextlib.suppress(Exception):
                stream.close()

        closer = threading.Thread(target=close, name="speechquant-audio-close", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT)
        self.close_timed_out = closer.is_alive()  # the app carries on; PortAudio keeps it

    def stop(self) -> None:
        """Stop capturing; blocks already captured stay readable."""
        self._stopping = True
        was_running, self._running = self._running, False
        self._close_stream()
        if was_running:
            mark_stream(opened=False)

    def _check_health(self) -> None:
        if not self._running or self._failure is not None:
            return
        if self._ended.is_set() and not self._stopping:
            self._failure = (
                f"input device '{self.name}' stopped delivering audio (unplugged, or the audio "
                "server went away); the recording so far is kept"
            )
        elif time.monotonic() - self._last_block > self.stall_seconds + (
            0.0 if self._flowing else STARTUP_GRACE
        ):
            self._failure = (
                f"input device '{self.name}' delivered no audio for {self.stall_seconds:g} s "
                "(unplugged or busy?); the recording so far is kept"
            )
        if self._failure is not None:
            self.stop()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            message, self._failure = self._failure, None
            raise AudioDeviceError(message)

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        try:
            block = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            self._check_health()
            self._raise_failure()
            return None
        self._last_block = time.monotonic()
        self._flowing = True
        return _mono(block)

    def drain(self) -> list[np.ndarray]:
        blocks = []
        while True:
            try:
                blocks.append(_mono(self._queue.get_nowait()))
            except queue.Empty:
                break
        if blocks:
            self._last_block = time.monotonic()
            self._flowing = True
            return blocks
        self._check_health()
        self._raise_failure()
        return blocks

    def __enter__(self) -> MicrophoneSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
