"""One rule marks a difference n.s.: its stored 95 % interval includes no change (0 for ΔWER,
1 for a speed-up); without an interval nothing is claimed."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from speechquant.core.evaluation.results import Comparison
from speechquant.core.evaluation.tables import (
    NOT_SIGNIFICANT,
    Significance,
    delta_text,
    interval_significant,
    significance,
    speedup_text,
)


def _comparison(**changes) -> Comparison:
    base = Comparison(
        delta_wer=2.0, delta_wer_ci=[0.5, 3.5], p_worse=0.99, speedup=1.4, speedup_ci=[1.2, 1.6],
        speedup_encoder=1.8, speedup_encoder_ci=[1.5, 2.1], size_ratio=3.9, significant_wer=True,
        significant_speed=True, baseline_started_at=None, paired=True,
    )  # fmt: skip
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("interval", "no_change", "expected"),
    [
        ([0.5, 3.5], 0.0, True),
        ([-3.5, -0.5], 0.0, True),
        ([-1.0, 5.0], 0.0, False),
        ([0.0, 2.0], 0.0, False),
        ([-2.0, 0.0], 0.0, False),
        ((1.05, 1.2), 1.0, True),
        ([0.9, 1.3], 1.0, False),
        ([1.0, 1.3], 1.0, False),
        ([0.8, 1.0], 1.0, False),
        ([0.0, 0.0], 0.0, False),
    ],
)
def test_an_interval_is_significant_when_it_excludes_no_change(interval, no_change, expected):
    assert interval_significant(interval, no_change) is expected


@pytest.mark.parametrize(
    "interval",
    [None, [], [1.2], [1.2, 1.5, 1.8], [None, 1.5], [1.2, None], [math.nan, 1.5],
     [1.2, math.inf], ["1.2", "1.5"], [True, False], "1.2-1.5", 1.3],
)  # fmt: skip
def test_anything_but_two_finite_ends_is_no_interval(interval):
    assert interval_significant(interval, 1.0) is None


def test_a_typed_comparison_and_its_stored_json_get_the_same_verdicts():
    noise = _comparison(delta_wer_ci=[-1.0, 5.0], speedup_ci=[0.9, 1.3],
                        speedup_encoder_ci=[1.0, 1.2])  # fmt: skip
    expected = Significance(wer=False, speed=False, encoder=False)
    assert significance(noise) == expected
    assert significance(noise.to_json()) == expected
    assert significance(_comparison()) == Significance(wer=True, speed=True, encoder=True)


def test_an_interval_touching_no_change_is_not_significant():
    touching = _comparison(delta_wer_ci=[0.0, 3.5], speedup_ci=[1.0, 1.6],
                           speedup_encoder_ci=[0.7, 1.0])  # fmt: skip
    assert significance(touching) == Significance(wer=False, speed=False, encoder=False)


def test_without_an_interval_nothing_is_claimed_whatever_the_flag():
    for flag in (True, False):
        bare = _comparison(delta_wer_ci=None, speedup_ci=None, speedup_encoder_ci=None,
                           significant_wer=flag, significant_speed=flag)  # fmt: skip
        assert significance(bare) == Significance(wer=None, speed=None, encoder=None)
        assert significance(bare.to_json()) == Significance(wer=None, speed=None, encoder=None)


def test_the_interval_decides_where_a_stored_flag_disagrees():
    stored = _comparison().to_json()
    stored.update(delta_wer_ci=[-1.0, 5.0], significant_wer=True, significant_speed=False)
    assert significance(stored) == Significance(wer=False, speed=True, encoder=True)


def test_old_stored_runs_without_the_keys():
    assert significance(None) == Significance(wer=None, speed=None, encoder=None)
    assert significance({}) == Significance(wer=None, speed=None, encoder=None)
    old = {"delta_wer": 0.5, "delta_wer_ci": [-1.0, 2.0], "speedup": 1.8}
    assert significance(old) == Significance(wer=False, speed=None, encoder=None)
    flags_only = {"delta_wer": 0.5, "significant_wer": False, "significant_speed": False}
    assert significance(flags_only) == Significance(wer=None, speed=None, encoder=None)


def test_delta_text_marks_by_the_interval_only():
    assert delta_text(_comparison()) == "+2.00 [+0.50, +3.50]"
    noise = _comparison(delta_wer_ci=[-1.0, 5.0], significant_wer=True)
    assert delta_text(noise) == f"+2.00 [-1.00, +5.00] {NOT_SIGNIFICANT}"
    assert delta_text(_comparison(delta_wer_ci=None, significant_wer=False)) == "+2.00 -"


def test_speedup_text_marks_only_a_false_verdict():
    assert speedup_text(1.1, [0.9, 1.3], False) == f"1.10x [0.90x, 1.30x] {NOT_SIGNIFICANT}"
    assert speedup_text(1.1, [1.05, 1.2], True) == "1.10x [1.05x, 1.20x]"
    assert speedup_text(1.1, None, None) == "1.10x -"
    assert speedup_text(None, [0.9, 1.3], False) == "-"
