"""Stored results load whatever version of the comparison they were stored with."""

from __future__ import annotations

import pytest

from speechquant.core.errors import HistoryError
from speechquant.core.evaluation.results import Comparison

OLD = {"delta_wer": 0.4, "size_ratio": 3.1, "speedup": 1.6, "paired": True}
"""A comparison as stored before the intervals, p_worse and the encoder speed-up existed."""


def test_a_comparison_stored_without_the_later_keys_loads():
    comparison = Comparison.from_json(OLD)
    assert comparison.delta_wer == 0.4 and comparison.size_ratio == 3.1
    assert comparison.speedup == 1.6 and comparison.paired
    assert comparison.delta_wer_ci is None and comparison.speedup_ci is None
    assert comparison.speedup_encoder is None and comparison.p_worse is None
    assert comparison.warnings == []
    assert Comparison.from_json(comparison.to_json()) == comparison


def test_unknown_keys_of_a_newer_comparison_are_ignored():
    comparison = Comparison.from_json({**OLD, "speedup_decoder": 1.2})
    assert comparison.speedup == 1.6


@pytest.mark.parametrize("key", ["delta_wer", "size_ratio"])
def test_a_comparison_without_its_core_figures_is_refused_in_one_line(key):
    broken = {k: v for k, v in OLD.items() if k != key}
    with pytest.raises(HistoryError, match=f"stored comparison lacks {key}; re-run the plan"):
        Comparison.from_json(broken)
