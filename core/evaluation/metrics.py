"""Word error rate with SpeechBrain's aligner, after a switchable text normalizer.

Normalizers (chosen by name, applied to reference and hypothesis alike):

``whisper`` (default)
    Whisper's English normalizer from ``transformers``: lowercases, removes punctuation and
    bracketed/parenthesized text and fillers (um, uh, hmm), expands contractions and
    titles ("Mr." → "mister", "can't" → "can not") and writes numbers as digits
    ("twenty five" → "25"). British/American spelling mapping is not applied (the
    mapping file is not available offline).
``basic``
    Lowercase, punctuation and symbols to spaces (apostrophes inside words kept), whitespace
    collapsed.
``none``
    Text is only split on whitespace.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Normalizer = Callable[[str], str]
Op = Literal["correct", "substitution", "deletion", "insertion"]

_SPEECHBRAIN_OPS: dict[str, Op] = {
    "=": "correct",
    "S": "substitution",
    "D": "deletion",
    "I": "insertion",
}


@functools.lru_cache(maxsize=1)
def _whisper_normalizer() -> Normalizer:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    normalizer: Normalizer = EnglishTextNormalizer({})
    return normalizer


def whisper_normalize(text: str) -> str:
    """Normalize English text the way Whisper's evaluation does (see module docstring)."""
    return " ".join(_whisper_normalizer()(text).split())


_NOT_WORD = re.compile(r"[^\w\s']|_")
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def basic_normalize(text: str) -> str:
    """Lowercase, replace punctuation and symbols by spaces, collapse whitespace."""
    text = _NOT_WORD.sub(" ", text.lower().replace("\u2019", "'"))
    text = _STRAY_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def no_normalize(text: str) -> str:
    """Only collapse whitespace."""
    return " ".join(text.split())


NORMALIZERS: dict[str, Normalizer] = {
    "whisper": whisper_normalize,
    "basic": basic_normalize,
    "none": no_normalize,
}
DEFAULT_NORMALIZER = "whisper"


def get_normalizer(name: str) -> Normalizer:
    """The normalizer registered under ``name`` (one of :data:`NORMALIZERS`).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    try:
        return NORMALIZERS[name]
    except KeyError:
        known = ", ".join(NORMALIZERS)
        raise ValueError(f"unknown text normalizer {name!r}; choose one of: {known}") from None


@dataclass(frozen=True)
class WordOp:
    """One aligned position: a reference word, a hypothesis word, or both."""

    op: Op
    ref: str | None
    hyp: str | None


@dataclass(frozen=True)
class UtteranceScore:
    """Edit counts and word alignment of one utterance (texts after normalization)."""

    id: str
    ref: str
    hyp: str
    insertions: int
    deletions: int
    substitutions: int
    ref_words: int
    ops: tuple[WordOp, ...]

    @property
    def errors(self) -> int:
        return self.insertions + self.deletions + self.substitutions

    @property
    def wer(self) -> float:
        """Percent; see :func:`_percent` for utterances whose reference normalizes to nothing."""
        return _percent(self.errors, self.ref_words)


@dataclass(frozen=True)
class WerResult:
    """Corpus-level WER (percent) with its edit counts and per-utterance details."""

    wer: float
    insertions: int
    deletions: int
    substitutions: int
    ref_words: int
    normalizer: str
    utterances: tuple[UtteranceScore, ...]

    @property
    def errors(self) -> int:
        return self.insertions + self.deletions + self.substitutions

    def summary(self) -> dict[str, Any]:
        """The keys ``bench --json`` reports: wer, insertions, deletions, substitutions, ref_words."""
        return {
            "wer": self.wer,
            "insertions": self.insertions,
            "deletions": self.deletions,
            "substitutions": self.substitutions,
            "ref_words": self.ref_words,
        }


def _percent(errors: int, ref_words: int) -> float:
    if ref_words:
        return 100.0 * errors / ref_words
    return 0.0 if errors == 0 else 100.0


def _resolve(normalizer: str | Normalizer) -> tuple[str, Normalizer]:
    if isinstance(normalizer, str):
        return normalizer, get_normalizer(normalizer)
    for name, registered in NORMALIZERS.items():
        if registered is normalizer:
            return name, normalizer
    return getattr(normalizer, "__name__", "custom"), normalizer


def _ops(detail: dict[str, Any]) -> tuple[WordOp, ...]:
    ref_tokens: list[str] = detail["ref_tokens"]
    hyp_tokens: list[str] = detail["hyp_tokens"]
    ops = []
    for symbol, ref_index, hyp_index in detail["alignment"] or []:
        ops.append(
            WordOp(
                op=_SPEECHBRAIN_OPS[symbol],
                ref=None if ref_index is None else ref_tokens[ref_index],
                hyp=None if hyp_index is None else hyp_tokens[hyp_index],
            )
        )
    return tuple(ops)


def compute_wer(
    items: Iterable[tuple[str, str, str]],
    normalizer: str | Normalizer = DEFAULT_NORMALIZER,
) -> WerResult:
    """Score ``(id, reference, hypothesis)`` triples with SpeechBrain's ``ErrorRateStats``.

    Both texts are normalized, split on whitespace and aligned at word level. The corpus
    WER is total edits over total reference words, in percent. Where no reference words
    remain (every reference normalized to nothing), WER is 0 without edits and 100 with.

    Parameters
    ----------
    items
        ``(id, ref, hyp)`` per utterance; ids should be unique.
    normalizer
        A name from :data:`NORMALIZERS` or any ``str -> str`` callable.
    """
    from speechbrain.utils.metric_stats import ErrorRateStats

    name, normalize = _resolve(normalizer)
    ids: list[str] = []
    refs: list[list[str]] = []
    hyps: list[list[str]] = []
    for utt_id, ref, hyp in items:
        ids.append(utt_id)
        refs.append(normalize(ref).split())
        hyps.append(normalize(hyp).split())

    utterances: list[UtteranceScore] = []
    if ids:
        stats = ErrorRateStats()
        stats.append(ids, hyps, refs)
        for detail, ref_words, hyp_words in zip(stats.scores, refs, hyps, strict=True):
            utterances.append(
                UtteranceScore(
                    id=str(detail["key"]),
                    ref=" ".join(ref_words),
                    hyp=" ".join(hyp_words),
                    insertions=int(detail["insertions"]),
                    deletions=int(detail["deletions"]),
                    substitutions=int(detail["substitutions"]),
                    ref_words=len(ref_words),
                    ops=_ops(detail),
                )
            )
    insertions = sum(u.insertions for u in utterances)
    deletions = sum(u.deletions for u in utterances)
    substitutions = sum(u.substitutions for u in utterances)
    ref_total = sum(u.ref_words for u in utterances)
    return WerResult(
        wer=_percent(insertions + deletions + substitutions, ref_total),
        insertions=insertions,
        deletions=deletions,
        substitutions=substitutions,
        ref_words=ref_total,
        normalizer=name,
        utterances=tuple(utterances),
    )


def word_errors(
    ref: str, hyp: str, normalizer: str | Normalizer = DEFAULT_NORMALIZER
) -> list[WordOp]:
    """Aligned ``(op, ref word, hyp word)`` pairs of one utterance, for marking errors in a view.

    Deletions have ``hyp=None`` and insertions ``ref=None``.
    """
    return list(compute_wer([("utterance", ref, hyp)], normalizer).utterances[0].ops)
