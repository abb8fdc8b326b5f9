"""Text for figures with their intervals, shared by the CLI tables and the benchmark scripts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from speechquant.core.evaluation.results import BenchResult, Comparison
from speechquant.core.evaluation.stats import Interval, one_word_points

NOT_SIGNIFICANT = "n.s."
"""Marks a difference whose 95 % interval includes no change."""


def interval_significant(interval: Any, no_change: float) -> bool | None:
    """Whether a stored 95 % interval excludes ``no_change``.

    Parameters
    ----------
    interval
        The stored ``[low, high]`` (a list or tuple of two finite numbers); anything else,
        e.g. ``None`` or an interval with a missing end, counts as no interval.
    no_change
        The value that means no difference: 0 for ΔWER, 1 for a speed-up.

    Returns
    -------
    bool or None
        True when the interval excludes ``no_change``; False when it includes it, ends
        included (a difference marked ``n.s.``); None when there is no interval to judge.
    """
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        return None
    if not all(_finite_number(end) for end in interval):
        return None
    return not Interval(float(interval[0]), float(interval[1])).contains(no_change)


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Significance:
    """What the stored 95 % intervals of one comparison say, per figure.

    Each field is True (the interval excludes no change), False (it includes no change: the
    figure is shown with ``n.s.``) or None (no interval stored: nothing is marked).
    """

    wer: bool | None
    """ΔWER: the interval against 0."""
    speed: bool | None
    """The end-to-end speed-up: the interval against 1."""
    encoder: bool | None
    """The encoder speed-up: the interval against 1."""


def significance(comparison: Comparison | Mapping[str, Any] | None) -> Significance:
    """Whether ΔWER and the speed-ups of a comparison are significant, from their intervals.

    The one rule every front end marks ``n.s.`` by: a difference is significant when its 95 %
    interval excludes no change (0 for ΔWER, 1 for a speed-up); see
    :func:`interval_significant`.

    Parameters
    ----------
    comparison
        A :class:`Comparison` or its stored JSON object (a run's ``comparison``; older runs may
        lack any key). The intervals are read from ``delta_wer_ci``, ``speedup_ci`` and
        ``speedup_encoder_ci``. The stored ``significant_wer`` / ``significant_speed`` flags
        are not read: they were derived from the same intervals when measured, mean nothing
        without one, and the interval decides where the two disagree.

    Returns
    -------
    Significance
        One verdict per figure; None for a figure without a stored interval.
    """
    if comparison is None:
        stored: Mapping[str, Any] = {}
    elif isinstance(comparison, Comparison):
        stored = comparison.to_json()
    else:
        stored = comparison
    return Significance(
        wer=interval_significant(stored.get("delta_wer_ci"), 0.0),
        speed=interval_significant(stored.get("speedup_ci"), 1.0),
        encoder=interval_significant(stored.get("speedup_encoder_ci"), 1.0),
    )


def ci_text(interval: Sequence[float] | None, spec: str = ".2f", suffix: str = "") -> str:
    if not interval:
        return "-"
    low, high = interval
    return f"[{low:{spec}}{suffix}, {high:{spec}}{suffix}]"


def delta_text(comparison: Comparison | None) -> str:
    """``+0.26 [-0.40, +1.10] n.s.``: ΔWER with its interval, marked when not significant."""
    if comparison is None:
        return "-"
    mark = f" {NOT_SIGNIFICANT}" if significance(comparison).wer is False else ""
    return f"{comparison.delta_wer:+.2f} {ci_text(comparison.delta_wer_ci, '+.2f')}{mark}"


def speedup_text(
    value: float | None, interval: Sequence[float] | None, significant: bool | None = None
) -> str:
    """``1.84x [1.71x, 1.97x]``; ``-`` when not paired; marked when ``significant`` is False
    (the speed-up's verdict from :func:`significance`; None marks nothing)."""
    if value is None or value != value:
        return "-"
    mark = f" {NOT_SIGNIFICANT}" if significant is False else ""
    return f"{value:.2f}x {ci_text(interval, '.2f', 'x')}{mark}"


def words_note(ref_words: int, n_utterances: int) -> str:
    return (
        f"one word = {one_word_points(ref_words):.2f} WER points on these {n_utterances} "
        f"utterances ({ref_words} words)"
    )


def format_comparison(results: Sequence[BenchResult]) -> str:
    """The compare table: the float model first, each plan with ΔWER and paired speed-ups."""
    base = results[0]
    header = (
        f"{'model':<16}{'WER % [95% CI]':>22}  {'ΔWER [95% CI]':<26}{'P(worse)':>9}"
        f"{'RTF':>9}  {'speed-up [95% CI]':<27}{'encoder [95% CI]':<27}{'size MB':>8}{'size x':>8}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        c = result.comparison
        wer = f"{result.wer:.2f} {ci_text(result.wer_ci)}"
        p_worse = "-" if c is None or c.p_worse is None else f"{c.p_worse:.2f}"
        speed, enc = "1.00x", "-"
        if c is not None:
            verdicts = significance(c)
            speed = speedup_text(c.speedup, c.speedup_ci, verdicts.speed)
            enc = speedup_text(c.speedup_encoder, c.speedup_encoder_ci, verdicts.encoder)
        size = 1.0 if c is None else c.size_ratio
        lines.append(
            f"{result.name[:15]:<16}{wer:>22}  {delta_text(c) if c else '-':<26}{p_worse:>9}"
            f"{result.rtf:>9.4f}  {speed:<27}{enc:<27}{result.model_bytes / 1e6:>8.1f}"
            f"{size:>7.2f}x"
        )
    lines.append(
        f"{words_note(base.ref_words, base.n_utterances)}; {NOT_SIGNIFICANT}: the 95 % interval "
        "includes no change; speed-ups from timing interleaved utterance by utterance"
    )
    return "\n".join(lines)


def trust_notes(results: Sequence[BenchResult]) -> list[str]:
    """Warnings a reader must see: busy machine, unpaired or cross-machine comparisons, and a
    cluster's timing node transcribing differently from its workers."""
    notes: list[str] = []
    for result in results:
        for text in (
            (result.load.warnings if result.load else [])
            + (result.comparison.warnings if result.comparison else [])
            + (result.cluster.warnings if result.cluster else [])
        ):
            if text not in notes:
                notes.append(text)
    return notes
