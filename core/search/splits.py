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
    own_calibration = calibrate and (
        bench.calib is None or _source_key(bench.calib) == _source_key(dataset.source)
    )
    rest = utterances[bench.calib_n :] if own_calibration else list(utterances)
    if len(rest) < search_n + 1:
        raise DataError(
            f"DATA {dataset.source} has {len(utterances)} utterances; the search needs "
            f"{search_n} for searching, at least 1 for evaluation"
            + (f" and {bench.calib_n} for calibration" if own_calibration else "")
            + "; use a smaller --search-n or --calib-n, or more data"
        )
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
