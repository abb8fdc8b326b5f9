"""The user's own words about a stored run: a name, tags and a note (checked before storing)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from speechquant.core.errors import HistoryError, SpeechquantWarning

MAX_NAME = 80
MAX_TAG = 40
MAX_NOTE = 4000


@dataclass(frozen=True)
class RunNotes:
    """A run's name (None: unnamed), tags (in the order given, no repeats) and note."""

    name: str | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None


def clean_name(name: str) -> str | None:
    """A run name: one line of at most :data:`MAX_NAME` characters; "" clears it (None)."""
    text = str(name).strip()
    if "\n" in text or "\r" in text:
        raise HistoryError("a run name is one line; put longer text in the note")
    if len(text) > MAX_NAME:
        raise HistoryError(
            f"the run name is {len(text)} characters long; keep it to {MAX_NAME} (use the note)"
        )
    return text or None


def clean_tag(tag: str) -> str:
    text = str(tag).strip()
    if not text:
        raise HistoryError("a tag cannot be empty; give a word such as 'keep' or 'paper'")
    if any(c in text for c in ",\n\r"):
        raise HistoryError(f"the tag {text!r} holds a comma or a line break; give one tag per tag")
    if len(text) > MAX_TAG:
        raise HistoryError(f"the tag {text[:20]!r}… is longer than {MAX_TAG} characters")
    return text


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Each tag checked (see :func:`clean_tag`), repeats dropped, order kept."""
    if isinstance(tags, str):
        raise HistoryError("give tags as a list of strings, not one string")
    kept: list[str] = []
    for tag in tags:
        text = clean_tag(tag)
        if text not in kept:
            kept.append(text)
    return tuple(kept)


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed as ``"fast, keep"`` (empty pieces are skipped)."""
    return clean_tags(piece for piece in str(text).split(",") if piece.strip())


def clean_note(note: str) -> str | None:
    text = str(note).strip()
    if len(text) > MAX_NOTE:
        raise HistoryError(f"the note is {len(text)} characters long; keep it to {MAX_NOTE}")
    return text or None


def tags_from_json(run_id: int, text: str | None) -> tuple[str, ...]:
    """A run's stored tags; a damaged value is named in a warning and read as no tags."""
    try:
        value = json.loads(text) if text else []
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ValueError("not a list of strings")
    except ValueError as exc:
        warnings.warn(
            f"history run {run_id}: its tags are damaged ({exc}); set them again with "
            f"`speechquant history --tag {run_id} TAG`",
            SpeechquantWarning,
            stacklevel=3,
        )
        return ()
    return tuple(value)


def note_preview(note: str | None, width: int = 60) -> str:
    """A note's first line cut to ``width`` characters (``…`` marks a cut); "" for no note."""
    text = (note or "").strip()
    first = text.splitlines()[0] if text else ""
    if len(first) <= width and first == text:
        return first
    return first[: width - 1].rstrip() + "…"
