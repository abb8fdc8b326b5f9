"""The language of a Whisper model's decoder prompt.

A multilingual Whisper starts decoding from ``<|startoftranscript|><|xx|><|transcribe|>
<|notimestamps|>``, where ``<|xx|>`` names the language spoken; an English-only Whisper (``.en``)
has no language or task tokens and starts from ``<|startoftranscript|><|notimestamps|>``.
SpeechBrain builds the prompt from the tokenizer's prefix when the decoder is made;
:func:`set_language` changes the language of a loaded model and rebuilds the decoder's prompt.
"""

from __future__ import annotations

from typing import Any

from speechquant.core.errors import SourceError

ENGLISH = "en"
SOT = "<|startoftranscript|>"


def _whisper(asr: Any) -> Any:
    return getattr(getattr(asr, "mods", None), "whisper", None)


def _multilingual(whisper: Any) -> bool:
    """Whether it has language tokens (an encoder-only Whisper has no tokenizer at all)."""
    return getattr(whisper, "tokenizer", None) is not None and bool(whisper.is_multilingual)


def language_codes(tokenizer: Any) -> list[str]:
    """The language codes whose tokens a Whisper tokenizer has, in Whisper's order."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    sot = tokenizer.convert_tokens_to_ids(SOT)
    return [
        code
        for i, code in enumerate(LANGUAGES)
        if tokenizer.convert_tokens_to_ids(f"<|{code}|>") == sot + 1 + i
    ]


def known_languages(asr: Any) -> list[str]:
    """The language codes :func:`set_language` accepts for ``asr``, in Whisper's order.

    A multilingual Whisper's codes; ``["en"]`` for an English-only Whisper (it sends no language
    token, so ``en`` changes nothing); none for a model that is not Whisper or whose decoder has
    no prompt to set a language in.
    """
    whisper = _whisper(asr)
    if whisper is None:
        return []
    if not _multilingual(whisper):
        return [ENGLISH]
    if not hasattr(getattr(asr.mods, "decoder", None), "set_prompt"):
        return []
    return language_codes(whisper.tokenizer)


def language_name(code: str) -> str:
    """Whisper's English name of a language code (``de`` -> ``german``); the code if unknown."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return str(LANGUAGES.get(code, code))


def prompt_tokens(asr: Any) -> list[str]:
    """The decoder's start-of-transcript prompt as token strings (empty for non-Whisper models)."""
    whisper = _whisper(asr)
    initial = getattr(getattr(asr.mods, "decoder", None), "initial_tokens", None)
    if whisper is None or initial is None or getattr(whisper, "tokenizer", None) is None:
        return []
    return [str(t) for t in whisper.tokenizer.convert_ids_to_tokens(list(initial))]


def prompt_language(asr: Any) -> str | None:
    """The language code the decoder prompt carries; None without a language token.

    Read from the prompt the decoder sends, so English-only Whisper models (and models that are
    not Whisper) have none.
    """
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tokens = prompt_tokens(asr)
    if SOT not in tokens or tokens.index(SOT) + 1 == len(tokens):
        return None
    after = tokens[tokens.index(SOT) + 1]
    code = after[2:-2] if after.startswith("<|") and after.endswith("|>") else ""
    return code if code in LANGUAGES else None


def set_language(asr: Any, language: str, source: str) -> None:
    """Make the Whisper model in ``asr`` transcribe ``language`` (a code such as ``en``, ``de``).

    An English-only Whisper accepts ``en`` and stays as it is (it sends no language token).

    Raises
    ------
    SourceError
        If the model is not Whisper, is English-only and ``language`` is not ``en``, or does not
        know the language.
    """
    whisper = _whisper(asr)
    code = language.strip().lower()
    if whisper is None:
        raise SourceError(
            f"{source} is not a Whisper model, so it takes no language; leave the language out"
        )
    if not _multilingual(whisper):
        if code == ENGLISH:
            return
        raise SourceError(
            f"{source} is an English-only Whisper model and cannot transcribe language "
            f"'{language}'; leave the language out or use a multilingual Whisper (demo:whisper-base)"
        )
    known = language_codes(whisper.tokenizer)
    if code not in known:
        raise SourceError(
            f"{source} knows no language '{language}'; give one of its {len(known)} language "
            f"codes, such as {', '.join(known[:6])}"
        )
    decoder: Any = getattr(asr.mods, "decoder", None)
    if not hasattr(decoder, "set_prompt"):
        raise SourceError(
            f"the decoder of {source} ({type(decoder).__name__}) has no prompt to set a language "
            "in; use a SpeechBrain Whisper searcher (S2SWhisperGreedySearcher)"
        )
    whisper.set_language_token(code)
    decoder.set_prompt(decoder.prompt)  # rebuilds the initial tokens from the tokenizer's prefix
