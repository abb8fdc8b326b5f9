"""Disjoint calibration, search and evaluation utterances for plan search."""

from __future__ import annotations

from dataclasses import dataclass

from speechquant.core.data.datasets import Dataset, _source_key
from speechquant.core.errors import DataError
from speechquant.core.evaluation.bench import BenchSettings


@dataclass
class SearchSplits:
    """Disjoint search and evaluation utterances; calibration comes from neither."""

    search: Dataset
    evaluation: Dataset

    @property
    def union(self) -> Dataset:
        both = sorted([*self.search, *self.evaluation], key=lambda u: u.id)
        return Dataset(self.search.source, self.search.form, both, [])


@dataclass(frozen=True)
class SplitSizes:
    """How many utterances each split of a plan search gets from ``total``."""

    total: int
    calibration: int
    """Reserved from the same DATA for static entries (0 with separate calibration data)."""
    search: int
    evaluation: int

    def problem(self, source: str = "DATA") -> str | None:
        """Why these sizes cannot work (one line naming the settings to change), else None."""
        if self.search + self.evaluation + self.calibration <= self.total and self.evaluation >= 1:
            return None
        needs = f"{self.search} for searching, at least 1 for evaluation"
        if self.calibration:
            needs += f" and {self.calibration} for calibration"
        return (
            f"{source} has {self.total} utterances; the search needs {needs}; use fewer search "
            "utterances" + (" or calibration utterances" if self.calibration else "")
            + ", or more data"
        )  # fmt: skip


def split_sizes(
    total: int, search_n: int, eval_n: int | None, calib_n: int, own_calibration: bool
) -> SplitSizes:
    """The sizes :func:`make_splits` gives (calibration first, then search, the rest evaluation,
    capped at ``eval_n``); check them with :meth:`SplitSizes.problem`."""
    calibration = calib_n if own_calibration else 0
    rest = max(0, total - calibration - search_n)
    evaluation = rest if eval_n is None else min(rest, eval_n)
    return SplitSizes(total, calibration, search_n, evaluation)


def owns_calibration(dataset_source: str, bench: BenchSettings, calibrate: bool = True) -> bool:
    """True when calibration utterances come out of the searched DATA itself."""
    return calibrate and (
        bench.calib is None or _source_key(bench.calib) == _source_key(dataset_source)
    )


def make_splits(
    dataset: Dataset,
    search_n: int,
    eval_n: int | None,
    bench: BenchSettings,
    calibrate: bool = True,
) -> SearchSplits:
    """Reserve calibration (where ``calibrate`` and ``bench.calib`` names no other DATA), then
    spread the search split evenly over the rest; the evaluation split is what remains."""
    utterances = dataset.utterances
    own_calibration = owns_calibration(dataset.source, bench, calibrate)
    sizes = split_sizes(len(utterances), search_n, eval_n, bench.calib_n, own_calibration)
    problem = sizes.problem(f"DATA {dataset.source}")
    if problem:
        raise DataError(problem)
    rest = utterances[bench.calib_n :] if own_calibration else list(utterances)
    picked = sorted({round(i * len(rest) / search_n) for i in range(search_n)})
    search = [rest[i] for i in picked]
    chosen = {u.id for u in search}
    evaluation = [u for u in rest if u.id not in chosen]
    if eval_n is not None:
        evaluation = evaluation[:eval_n]
    return SearchSplits(
        Dataset(dataset.source, dataset.form, search, []),
        Dataset(dataset.source, dataset.form, evaluation, []),
    )
