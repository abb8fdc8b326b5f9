"""Bootstrap confidence intervals over utterances, seeded so a result is reproducible.

- WER of one model: resample utterances with replacement, recompute the corpus WER from the
  resampled word errors and reference words (total errors / total words).
- ΔWER of a plan against the float model: the paired bootstrap of Bisani and Ney ("Bootstrap
  estimates for confidence intervals in ASR performance evaluation", ICASSP 2004): the same
  resampled utterances for both models, both WERs recomputed from the word counts; also the
  share of resamples in which the plan has more errors (``p_worse``).
- Speed-up: the same resampling of the paired per-utterance timings, the ratio of the summed
  times (float over plan) recomputed per resample.

Intervals are the 2.5 and 97.5 percentiles of :data:`RESAMPLES` resamples drawn with
``numpy.random.default_rng(SEED)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A two-sided interval ``[low, high]``."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Ends included: the one rule for ``n.s.`` (``tables.interval_significant`` uses it)."""
        return self.low <= value <= self.high

    def to_json(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True)
class DeltaWer:
    """ΔWER (plan minus float, WER points) with its paired-bootstrap interval."""

    delta: float
    interval: Interval
    p_worse: float
    """Share of resamples where the plan made more word errors than the float model."""

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return not self.interval.contains(0.0)


@dataclass(frozen=True)
class SpeedUp:
    """Summed float time over summed plan time, with its paired-bootstrap interval."""

    ratio: float
    interval: Interval

    @property
    def significant(self) -> bool:
        """The interval excludes 1 (the plan is faster, or slower, beyond timing noise)."""
        return not self.interval.contains(1.0)


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _bounds(values: np.ndarray, level: float) -> Interval:
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return Interval(float(low), float(high))


def _percent(errors: np.ndarray, words: np.ndarray) -> np.ndarray:
    safe = np.where(words > 0, words, 1)
    return np.where(words > 0, 100.0 * errors / safe, np.where(errors > 0, 100.0, 0.0))


def _counts(errors: Sequence[float], ref_words: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(errors, dtype=float)
    r = np.asarray(ref_words, dtype=float)
    if e.shape != r.shape or e.ndim != 1 or not len(e):
        raise ValueError("errors and ref_words need one value per utterance, at least one")
    return e, r


def wer_interval(
    errors: Sequence[int],
    ref_words: Sequence[int],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> Interval:
    """Interval of the corpus WER (percent) from per-utterance word errors and reference words."""
    e, r = _counts(errors, ref_words)
    idx = _resamples(len(e), resamples, seed)
    return _bounds(_percent(e[idx].sum(axis=1), r[idx].sum(axis=1)), level)


def delta_wer_interval(
    base_errors: Sequence[int],
    errors: Sequence[int],
    ref_words: Sequence[int],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> DeltaWer:
    """Paired bootstrap of ΔWER = WER(plan) - WER(float) over the same utterances."""
    b, r = _counts(base_errors, ref_words)
    e, _ = _counts(errors, ref_words)
    idx = _resamples(len(e), resamples, seed)
    words = r[idx].sum(axis=1)
    deltas = _percent(e[idx].sum(axis=1), words) - _percent(b[idx].sum(axis=1), words)
    delta = float(_percent(np.array(e.sum()), np.array(r.sum())) - _percent(b.sum(), r.sum()))
    worse = float(np.mean(e[idx].sum(axis=1) > b[idx].sum(axis=1)))
    return DeltaWer(delta, _bounds(deltas, level), worse)


def speedup_interval(
    base_seconds: Sequence[float],
    seconds: Sequence[float],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> SpeedUp:
    """Paired bootstrap of sum(float time) / sum(plan time) over the same utterances."""
    b, t = _counts(base_seconds, seconds)
    if (t <= 0).any() or (b <= 0).any():
        raise ValueError("timings must be positive")
    idx = _resamples(len(t), resamples, seed)
    ratios = b[idx].sum(axis=1) / t[idx].sum(axis=1)
    return SpeedUp(float(b.sum() / t.sum()), _bounds(ratios, level))


def one_word_points(ref_words: int) -> float:
    """WER points one word error is worth on a split with ``ref_words`` reference words."""
    return 100.0 / ref_words if ref_words else float("inf")
