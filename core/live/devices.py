"""Audio devices as PortAudio reports them, for input (:mod:`.microphone`) and output
(:mod:`.playback`).

``sounddevice`` (and with it the PortAudio library) is imported only when a device is listed or
opened, so everything else works on machines without PortAudio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from speechquant.core.errors import AudioDeviceError

Direction = Literal["input", "output"]

_open_streams = 0
_open_lock = threading.Lock()


def import_sounddevice(what: str = "input") -> Any:
    """Import ``sounddevice``; a missing PortAudio library becomes one clear error naming
    ``what`` is unavailable (audio input or output)."""
    try:
        import sounddevice
    except (OSError, ImportError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AudioDeviceError(
            f"audio {what} is unavailable: PortAudio could not be loaded ({reason}); install it "
            "(Debian/Ubuntu: apt-get install libportaudio2)"
        ) from None
    return sounddevice


def exception_reason(exc: BaseException) -> str:
    """``exc``'s message on one line without a final full stop (its type when it has none)."""
    text = " ".join(str(exc).split()).rstrip(".")
    return text or type(exc).__name__


@dataclass(frozen=True)
class AudioDevice:
    """One audio device as PortAudio reports it; ``channels`` are those of its ``direction``."""

    direction: Direction
    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: int
    is_default: bool = False

    def label(self) -> str:
        mark = " (default)" if self.is_default else ""
        rate = f", {self.default_rate} Hz" if self.direction == "input" else ""
        return f"{self.index}: {self.name}{mark} — {self.hostapi}{rate}"


def mark_stream(opened: bool) -> None:
    """Count a stream as opened (``True``) or closed (``False``), see :func:`refresh_devices`."""
    global _open_streams
    with _open_lock:
        _open_streams += 1 if opened else -1


def refresh_devices() -> None:
    """Make PortAudio enumerate the devices again (it lists them once, at initialization).

    Skipped while a stream is open, because re-initializing PortAudio would close it.
    """
    sd = import_sounddevice()
    with _open_lock:
        if _open_streams:
            return
        try:
            sd._terminate()
        finally:
            sd._initialize()


def query_devices(direction: Direction, refresh: bool = False) -> tuple[Any, Any, int]:
    """PortAudio's devices, its host APIs and the default device for ``direction``;
    ``refresh`` enumerates the devices again first.

    Raises
    ------
    AudioDeviceError
        If PortAudio is missing or cannot enumerate devices.
    """
    sd = import_sounddevice(direction)
    key = f"default_{direction}_device"
    try:
        if refresh:
            refresh_devices()
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default = sd.default.device[0 if direction == "input" else 1]
        if default is None or int(default) < 0:
            default = next((a[key] for a in hostapis if a[key] >= 0), -1)
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exception_reason(exc)}") from None
    return devices, hostapis, int(default)


def list_devices(direction: Direction, refresh: bool = False) -> list[AudioDevice]:
    """Every device with ``direction`` channels, the default one marked.

    Raises
    ------
    AudioDeviceError
        If PortAudio is missing or cannot enumerate devices.
    """
    devices, hostapis, default = query_devices(direction, refresh)
    channels = f"max_{direction}_channels"
    return [
        AudioDevice(
            direction=direction,
            index=int(info["index"]),
            name=str(info["name"]),
            hostapi=str(hostapis[info["hostapi"]]["name"]),
            channels=int(info[channels]),
            default_rate=int(round(float(info["default_samplerate"]))),
            is_default=int(info["index"]) == int(default),
        )
        for info in devices
        if int(info[channels]) > 0
    ]
