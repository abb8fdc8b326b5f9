"""Bootstrap intervals on hand-made per-utterance counts with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechquant.core.evaluation.stats import (
    delta_wer_interval,
    one_word_points,
    speedup_interval,
    wer_interval,
)


def test_identical_utterances_give_a_point_interval():
    ci = wer_interval([1] * 10, [10] * 10)
    assert ci.low == ci.high == pytest.approx(10.0)


def test_wer_interval_matches_the_normal_approximation():
    # 400 utterances of 10 words, errors 0..4: the bootstrap interval of a ratio of means is
    # close to +-1.96 standard errors of the mean error rate
    errors = np.tile([0, 1, 2, 3, 4], 80)
    words = np.full(400, 10)
    ci = wer_interval(errors.tolist(), words.tolist())
    se = 100 * errors.std() / 10 / math.sqrt(len(errors))
    assert ci.low == pytest.approx(20 - 1.96 * se, abs=0.15 * se * 1.96)
    assert ci.high == pytest.approx(20 + 1.96 * se, abs=0.15 * se * 1.96)


def test_a_constant_extra_error_is_significant_with_p_worse_one():
    base = [0, 1, 2, 0, 1, 0, 3, 0, 1, 0]
    plan = [e + 1 for e in base]
    d = delta_wer_interval(base, plan, [10] * 10)
    assert d.delta == pytest.approx(10.0)
    assert d.interval.low == d.interval.high == pytest.approx(10.0)
    assert d.p_worse == 1.0 and d.significant


def test_one_changed_utterance_of_ten():
    # the plan adds one error on one utterance: a resample is "worse" exactly when it draws that
    # utterance, with probability 1 - (1 - 1/10)^10 = 0.6513; the interval includes zero
    base = [0] * 10
    plan = [0] * 9 + [1]
    d = delta_wer_interval(base, plan, [10] * 10)
    assert d.delta == pytest.approx(1.0)
    assert d.p_worse == pytest.approx(1 - 0.9**10, abs=0.03)
    assert d.interval.low == 0.0 and not d.significant


def test_no_difference_is_never_worse():
    d = delta_wer_interval([1, 2, 0], [1, 2, 0], [5, 5, 5])
    assert d.delta == 0.0 and d.p_worse == 0.0 and not d.significant


def test_seeded_and_reproducible():
    args = ([0, 3, 1, 2, 0, 5], [1, 2, 2, 2, 1, 4], [8, 9, 7, 10, 6, 12])
    assert delta_wer_interval(*args) == delta_wer_interval(*args)
    assert delta_wer_interval(*args, seed=1) != delta_wer_interval(*args, seed=2)


def test_speedup_of_exactly_half_the_time():
    base = [0.4, 0.9, 1.3, 0.2]
    s = speedup_interval(base, [t / 2 for t in base])
    assert s.ratio == pytest.approx(2.0)
    assert s.interval.low == pytest.approx(2.0) and s.interval.high == pytest.approx(2.0)
    assert s.significant


def test_noisy_equal_speed_is_not_significant():
    rng = np.random.default_rng(5)
    base = rng.uniform(0.5, 1.5, 50)
    plan = base * rng.uniform(0.8, 1.2, 50)  # same speed, +-20 % noise per utterance
    s = speedup_interval(base.tolist(), plan.tolist())
    assert s.interval.low < 1 < s.interval.high and not s.significant


def test_speedup_interval_is_the_summed_time_ratio():
    # the ratio is of sums, so one long utterance weighs more than a short one
    s = speedup_interval([1.0, 9.0], [1.0, 3.0])
    assert s.ratio == pytest.approx(10 / 4)
    assert s.interval.low == pytest.approx(1.0) and s.interval.high == pytest.approx(3.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one value per utterance"):
        wer_interval([1, 2], [3])
    with pytest.raises(ValueError, match="positive"):
        speedup_interval([1.0], [0.0])


def test_one_word_points():
    assert one_word_points(166) == pytest.approx(0.6, abs=0.01)
