"""Errors that speechquant reports to its users as one clear line."""

from __future__ import annotations


class SpeechquantError(Exception):
    """A user-facing error: the message names the thing and the fix, on one line."""


class SourceError(SpeechquantError):
    """A model SOURCE that cannot be opened."""


class PlanError(SpeechquantError):
    """A plan that does not fit the model or cannot be read."""


class DataError(SpeechquantError):
    """A DATA argument that does not exist or holds nothing usable."""


class CalibrationError(SpeechquantError):
    """Static quantization asked for without (enough) calibration data."""


class ExportError(SpeechquantError):
    """An export folder that is missing, tampered with or does not fit this machine."""


class HistoryError(SpeechquantError):
    """A results store that cannot be read or written safely."""


class AudioDeviceError(SpeechquantError):
    """No usable audio input (PortAudio missing, no device, device busy or gone)."""


class Cancelled(SpeechquantError):
    """Raised inside long work when the user cancelled it."""


class SpeechquantWarning(UserWarning):
    """Something the user should know that does not stop the work (shown by the CLI and GUI)."""
