"""Progress reporting and cooperative cancellation for long-running core work.

Core functions accept ``progress: ProgressCallback | None`` and ``cancel: CancelToken | None``.
The CLI turns progress into tqdm bars; the GUI turns it into Qt signals.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from speechquant.core.errors import Cancelled, SpeechquantWarning


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


#: Loggers whose INFO/WARNING lines are third-party noise for speechquant's users.
NOISY_LOGGERS = ("speechbrain", "transformers", "huggingface_hub", "torch")


@contextmanager
def user_warnings(show: Callable[[str], None]) -> Iterator[None]:
    """Pass speechquant's own warnings to ``show`` (one line each); silence third-party noise.

    Inside the block every :class:`~speechquant.core.errors.SpeechquantWarning` (export version
    mismatches, skipped calibration items, ...) reaches ``show`` once per message, while other
    libraries' warnings (``past_key_values`` / ``TypedStorage`` deprecations and the like) and
    their INFO log lines are dropped. The CLI prints them to stderr; the GUI adds them to its log.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    shown: set[str] = set()

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = " ".join(str(message).split())
        if issubclass(category, SpeechquantWarning) and text not in shown:
            shown.add(text)
            show(text)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("always", SpeechquantWarning)
            warnings.showwarning = showwarning
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
