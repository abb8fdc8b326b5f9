"""Text for figures with their intervals, shared by the CLI tables and the benchmark scripts."""

from __future__ import annotations

from collections.abc import Sequence

from speechquant.core.evaluation.results import BenchResult, Comparison
from speechquant.core.evaluation.stats import one_word_points

NOT_SIGNIFICANT = "n.s."
"""Marks a difference whose 95 % interval includes no change."""


def ci_text(interval: Sequence[float] | None, spec: str = ".2f", suffix: str = "") -> str:
    if not interval:
        return "-"
    low, high = interval
    return f"[{low:{spec}}{suffix}, {high:{spec}}{suffix}]"


def delta_text(comparison: Comparison | None) -> str:
    """``+0.26 [-0.40, +1.10] n.s.``: ΔWER with its interval, marked when not significant."""
    if comparison is None:
        return "-"
    mark = "" if comparison.significant_wer else f" {NOT_SIGNIFICANT}"
    return f"{comparison.delta_wer:+.2f} {ci_text(comparison.delta_wer_ci, '+.2f')}{mark}"


def speedup_text(
    value: float | None, interval: Sequence[float] | None, significant: bool | None = None
) -> str:
    """``1.84x [1.71x, 1.97x]``; ``-`` when not paired; marked when the interval includes 1."""
    if value is None or value != value:
        return "-"
    mark = "" if significant or significant is None else f" {NOT_SIGNIFICANT}"
    return f"{value:.2f}x {ci_text(interval, '.2f', 'x')}{mark}"


def encoder_significant(comparison: Comparison) -> bool:
    ci = comparison.speedup_encoder_ci
    return bool(ci) and not (ci[0] <= 1.0 <= ci[1])


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
        speed = "1.00x" if c is None else speedup_text(c.speedup, c.speedup_ci, c.significant_speed)
        enc = "-"
        if c is not None:
            enc = speedup_text(c.speedup_encoder, c.speedup_encoder_ci, encoder_significant(c))
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
