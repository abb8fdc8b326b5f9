"""How a plan search splits its DATA, and the message when the splits do not fit."""

from __future__ import annotations

from speechquant.core.search.splits import split_sizes


def test_split_sizes_of_the_shared_speech_set_and_the_demo_set() -> None:
    speech = split_sizes(74, 20, None, 10, own_calibration=True)
    assert (speech.calibration, speech.search, speech.evaluation) == (10, 20, 44)
    assert speech.problem() is None
    assert split_sizes(40, 20, 5, 10, own_calibration=True).evaluation == 5
    assert split_sizes(40, 20, None, 10, own_calibration=False).calibration == 0


def test_split_sizes_that_do_not_fit_name_the_settings_not_flags() -> None:
    problem = split_sizes(20, 20, None, 10, own_calibration=True).problem("DATA x.csv")
    assert problem is not None
    assert problem.startswith("DATA x.csv has 20 utterances; the search needs 20 for searching")
    assert "10 for calibration" in problem and "fewer search utterances" in problem
    assert "--" not in problem
