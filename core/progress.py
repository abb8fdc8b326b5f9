"""Progress reporting and cooperative cancellation for long-running core work.

Core functions accept ``progress: ProgressCallback | None`` and ``cancel: CancelToken | None``.
The CLI turns progress into tqdm bars; the GUI turns it into Qt signals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from speechquant.core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` steps finished in ``stage`` (total 0 means unknown)."""

    done: int
    total: int
    stage: str


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """A thread-safe flag that long work checks between utterances and batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def report(progress: ProgressCallback | None, done: int, total: int, stage: str) -> None:
    """Call ``progress`` if given."""
    if progress is not None:
        progress(Progress(done, total, stage))


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set."""
    if cancel is not None:
        cancel.raise_if_cancelled()
