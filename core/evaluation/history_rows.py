"""Damaged history rows: found while reading, skipped and named in a warning (never a crash)."""

from __future__ import annotations

import warnings
from typing import Any

from speechquant.core.errors import SpeechquantWarning


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_NUMERIC_SUMMARY = {7: "threads", 8: "wer", 9: "rtf", 10: "rtf_encoder", 11: "model_bytes"}


def damaged(run_id: int, reason: str) -> None:
    warnings.warn(f"history run {run_id} skipped: {reason}", SpeechquantWarning, stacklevel=3)


def summary_usable(row: tuple[Any, ...]) -> bool:
    """A listing row whose numeric columns hold numbers (else it is skipped and named)."""
    for index, name in _NUMERIC_SUMMARY.items():
        if row[index] is not None and not is_number(row[index]):
            damaged(
                row[0],
                f"its {name} holds {row[index]!r}, not a number; delete it with "
                f"`speechquant history --delete {row[0]}`",
            )
            return False
    return True
