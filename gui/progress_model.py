"""Overall progress of a long job from core's nested progress reports (no Qt).

Core reports an outer count for jobs made of many measurements (``sensitivity`` i / n,
``search`` i / max plans) and, between those, the steps of each measurement (``benchmarking``,
``quantized`` …). :class:`OverallProgress` keeps the outer count as the overall fraction, with
the current step's own fraction filling the gap to the next unit, and estimates the time left
from the overall fraction; jobs without an outer count are tracked by their current step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

OUTER_STAGES = ("sensitivity", "search")
"""Stages core reports once per unit of a multi-measurement job."""


@dataclass(frozen=True)
class ProgressView:
    """What the run panel shows: the overall fraction and ETA, and the current step."""

    fraction: float | None
    """0..1, or None while unknown (a busy bar)."""
    overall: str
    """``"sensitivity 3 / 40"`` (or the step itself for single-step jobs)."""
    step: str
    """``"benchmarking 2 / 5"``; empty when the step is the overall stage."""
    eta_seconds: float | None


class OverallProgress:
    """Feed it every ``(done, total, stage)``; read :meth:`update`'s :class:`ProgressView`."""

    def __init__(self, now: float | None = None) -> None:
        self.start = time.monotonic() if now is None else now
        self.outer: tuple[str, int, int] | None = None
        self._first_fraction: tuple[float, float] | None = None
        self._last = 0.0
        self._track = ""

    def update(self, done: int, total: int, stage: str, now: float | None = None) -> ProgressView:
        now = time.monotonic() if now is None else now
        step_fraction = min(1.0, done / total) if total > 0 else None
        step = f"{stage} {done} / {total}" if total > 0 else stage
        if stage in OUTER_STAGES and total > 0:
            self.outer = (stage, done, total)
            step = ""
        fraction: float | None
        if self.outer is not None:
            name, outer_done, outer_total = self.outer
            within = step_fraction if (step and step_fraction is not None) else 0.0
            unit = min(outer_done, outer_total) + within * (outer_done < outer_total)
            fraction = min(1.0, unit / outer_total)
            overall = f"{name} {outer_done} / {outer_total}"
        else:
            fraction = step_fraction
            overall, step = step, ""
        track = self.outer[0] if self.outer is not None else stage
        return ProgressView(fraction, overall, step, self._eta(fraction, track, now))

    def _eta(self, fraction: float | None, track: str, now: float) -> float | None:
        """Time left from the pace since the tracked stage began (None until it moves)."""
        if fraction is None:
            return None
        restart = track != self._track or fraction < self._last
        self._track, self._last = track, fraction
        if self._first_fraction is None or restart:
            self._first_fraction = (now, fraction)
            return None
        started, first = self._first_fraction
        gained = fraction - first
        if fraction >= 1.0:
            return 0.0
        if gained <= 0 or now <= started:
            return None
        return (now - started) / gained * (1.0 - fraction)
