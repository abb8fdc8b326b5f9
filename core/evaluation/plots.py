"""A WER-vs-RTF chart as a PNG file (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechquant.core.evaluation.pareto import pareto_front


def plot_wer_vs_rtf(results: Sequence[dict[str, Any]], out: Path, title: str | None = None) -> Path:
    """Scatter every result (the first is the float baseline) with the Pareto front drawn.

    Results that carry ``wer_ci`` get their WER's 95 % interval as error bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [(r.get("plan") or {}).get("name", "float32") for r in results]
    points = [(float(r["rtf"]), float(r["wer"])) for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    try:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs[1:], ys[1:], s=50, color="tab:blue", label="quantized", zorder=3)
        ax.scatter(
            [xs[0]], [ys[0]], s=90, marker="*", color="tab:red", label="float32 baseline", zorder=4
        )
        intervals: list[Sequence[float]] = [r.get("wer_ci") or [] for r in results]
        if all(len(ci) == 2 for ci in intervals):
            lower = [y - float(ci[0]) for y, ci in zip(ys, intervals, strict=True)]
            upper = [float(ci[1]) - y for y, ci in zip(ys, intervals, strict=True)]
            ax.errorbar(
                xs,
                ys,
                yerr=[lower, upper],
                fmt="none",
                ecolor="tab:gray",
                elinewidth=1,
                capsize=3,
                label="WER 95 % interval",
                zorder=2,
            )
        front = pareto_front(points)
        ax.plot(
            [xs[i] for i in front],
            [ys[i] for i in front],
            "--",
            color="tab:gray",
            label="Pareto front",
        )
        for name, (x, y) in zip(names, points, strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
        ax.set_xlabel("RTF (transcribe seconds / audio seconds, lower is faster)")
        ax.set_ylabel("WER (%)")
        ax.set_title(title or f"{results[0]['source']}: WER vs RTF")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
