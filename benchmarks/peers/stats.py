"""Medians with 95 % intervals for interleaved timing rounds (numpy only).

A system's RTF in one round is its total transcription time over the utterances' total audio
duration. The figure reported is the median of the rounds' RTFs; its interval is a percentile
bootstrap that resamples utterances (the same resample for every round, so each round's total
stays paired with the others) and takes the median over rounds again. A speed ratio between two
systems resamples the same utterances for both, so load that hit both in a round cancels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A median and its 95 % bootstrap interval."""

    median: float
    low: float
    high: float

    def text(self, digits: int = 4) -> str:
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}-{self.high:.{digits}f}]"


def _check(seconds: np.ndarray, durations: np.ndarray) -> None:
    if seconds.ndim != 2 or seconds.shape[1] != durations.shape[0] or seconds.size == 0:
        raise ValueError(
            f"seconds must be rounds x utterances matching {durations.shape[0]} durations, "
            f"got shape {seconds.shape}"
        )


def _resamples(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))


def rtf_interval(seconds: np.ndarray, durations: np.ndarray, seed: int = 0) -> Interval:
    """Median over rounds of the RTF, with a 95 % interval from resampling utterances.

    Parameters
    ----------
    seconds
        ``rounds x utterances`` transcription times.
    durations
        Audio seconds of each utterance.
    """
    seconds, durations = np.asarray(seconds, float), np.asarray(durations, float)
    _check(seconds, durations)
    point = float(np.median(seconds.sum(axis=1) / durations.sum()))
    picks = _resamples(durations.size, seed)
    totals = seconds[:, picks].sum(axis=2) / durations[picks].sum(axis=1)  # rounds x samples
    spread = np.median(totals, axis=0)
    low, high = np.percentile(spread, [2.5, 97.5])
    return Interval(point, float(low), float(high))


def speedup_interval(reference: np.ndarray, seconds: np.ndarray, seed: int = 0) -> Interval:
    """How many times faster ``seconds`` is than ``reference`` (both ``rounds x utterances``).

    Round ``r`` of one is paired with round ``r`` of the other (they ran back to back); the
    ratio of totals is taken per round, its median over rounds is the figure.
    """
    reference, seconds = np.asarray(reference, float), np.asarray(seconds, float)
    if reference.shape != seconds.shape:
        raise ValueError(
            f"paired timings need equal shapes, got {reference.shape} and {seconds.shape}"
        )
    _check(seconds, np.ones(seconds.shape[1]))
    point = float(np.median(reference.sum(axis=1) / seconds.sum(axis=1)))
    picks = _resamples(seconds.shape[1], seed)
    ratios = reference[:, picks].sum(axis=2) / seconds[:, picks].sum(axis=2)
    low, high = np.percentile(np.median(ratios, axis=0), [2.5, 97.5])
    return Interval(point, float(low), float(high))
