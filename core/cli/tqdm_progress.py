"""Turn core progress callbacks into tqdm bars on stderr, and Ctrl-C into a cancel."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm

from speechquant.core.progress import Progress


class TqdmProgress:
    """A progress callback that keeps one tqdm bar per stage."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and not _quiet()
        self._bar: tqdm | None = None
        self._stage = ""

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        if progress.stage != self._stage or self._bar is None:
            self.close()
            self._stage = progress.stage
            self._bar = tqdm(
                total=progress.total or None,
                desc=progress.stage,
                file=sys.stderr,
                leave=False,
                unit="step",
            )
        if self._bar.total != (progress.total or None):
            self._bar.total = progress.total or None
        self._bar.n = progress.done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _quiet() -> bool:
    import os

    return os.environ.get("SPEECHQUANT_NO_PROGRESS", "") not in ("", "0")
