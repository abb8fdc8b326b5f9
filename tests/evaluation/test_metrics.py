from __future__ import annotations

import pytest

from speechquant.core.evaluation.metrics import (
    NORMALIZERS,
    WordOp,
    basic_normalize,
    compute_wer,
    get_normalizer,
    whisper_normalize,
    word_errors,
)


def test_substitution_and_deletion() -> None:
    result = compute_wer([("u1", "a b c d", "a x c")])
    assert result.substitutions == 1
    assert result.deletions == 1
    assert result.insertions == 0
    assert result.ref_words == 4
    assert result.wer == pytest.approx(50.0)
    ops = result.utterances[0].ops
    assert [op.op for op in ops] == ["correct", "substitution", "correct", "deletion"]
    assert ops[1] == WordOp("substitution", "b", "x")
    assert ops[3] == WordOp("deletion", "d", None)


def test_insertions_are_counted_and_can_exceed_100_percent() -> None:
    result = compute_wer([("u", "hello", "oh hello there my friend")])
    assert result.insertions == 4
    assert result.deletions == result.substitutions == 0
    assert result.wer == pytest.approx(400.0)


def test_corpus_wer_is_pooled_over_reference_words() -> None:
    result = compute_wer(
        [
            ("a", "one two three four five six seven eight nine ten", "one two three"),
            ("b", "good morning", "good morning"),
        ],
        normalizer="none",
    )
    assert result.deletions == 7
    assert result.ref_words == 12
    assert result.wer == pytest.approx(100 * 7 / 12)
    assert [u.id for u in result.utterances] == ["a", "b"]
    assert result.utterances[1].wer == 0.0


def test_empty_hypothesis_is_all_deletions() -> None:
    result = compute_wer([("u", "the cat sat", "")])
    assert result.deletions == 3
    assert result.wer == pytest.approx(100.0)
    assert all(op.hyp is None for op in result.utterances[0].ops)


def test_no_items_gives_zero() -> None:
    result = compute_wer([])
    assert result.wer == 0.0
    assert result.ref_words == 0
    assert result.utterances == ()


def test_reference_that_normalizes_to_nothing() -> None:
    assert compute_wer([("u", "Um.", "")]).wer == 0.0
    assert compute_wer([("u", "Um.", "hello")]).wer == 100.0


def test_default_normalizer_ignores_case_and_punctuation() -> None:
    result = compute_wer([("u", "Hello, World!", "hello world")])
    assert result.wer == 0.0
    assert result.normalizer == "whisper"
    assert result.utterances[0].ref == "hello world"


def test_none_normalizer_is_case_sensitive() -> None:
    result = compute_wer([("u", "Hello, World!", "hello world")], normalizer="none")
    assert result.substitutions == 2


def test_whisper_normalizer_behaviours() -> None:
    assert whisper_normalize("Mr. Smith arrived.") == "mister smith arrived"
    assert whisper_normalize("Dr. Jones can't come") == "doctor jones can not come"
    assert whisper_normalize("I paid twenty five dollars") == whisper_normalize("I paid $25")
    assert whisper_normalize("Um, I think [noise] so") == "i think so"
    assert whisper_normalize("  SPACED   out  ") == "spaced out"


def test_basic_normalizer_behaviours() -> None:
    assert basic_normalize("Hello, World!  It's   fine.") == "hello world it's fine"
    assert basic_normalize("well-known 'quoted' text") == "well known quoted text"
    assert basic_normalize("Mr. Smith") == "mr smith"
    assert basic_normalize("don\u2019t") == "don't"


def test_normalizer_registry() -> None:
    assert set(NORMALIZERS) == {"whisper", "basic", "none"}
    assert get_normalizer("basic") is basic_normalize
    with pytest.raises(ValueError, match="whisper, basic, none"):
        get_normalizer("fancy")
    assert compute_wer([("u", "A", "a")], normalizer=basic_normalize).normalizer == "basic"


def test_custom_callable_normalizer() -> None:
    result = compute_wer([("u", "A B", "a b")], normalizer=str.upper)
    assert result.wer == 0.0


def test_word_errors_marks_each_position() -> None:
    ops = word_errors("The quick brown fox", "the quick brown box jumps")
    assert [(op.op, op.ref, op.hyp) for op in ops] == [
        ("correct", "the", "the"),
        ("correct", "quick", "quick"),
        ("correct", "brown", "brown"),
        ("substitution", "fox", "box"),
        ("insertion", None, "jumps"),
    ]


def test_summary_has_bench_keys() -> None:
    summary = compute_wer([("u", "a b", "a")]).summary()
    assert summary == {
        "wer": 50.0,
        "insertions": 0,
        "deletions": 1,
        "substitutions": 0,
        "ref_words": 2,
    }
