"""Turning results into history rows and back: the columns a run is stored under, and damaged
rows found while reading, skipped and named in a warning (never a crash)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

from speechquant.core.errors import HistoryError, SpeechquantWarning

UTTERANCE_KEYS = ("id", "ref", "hyp", "seconds", "audio_seconds")


def number_field(data: Mapping[str, Any], key: str, kind: type = float) -> Any:
    """``data[key]`` as ``int``/``float`` (missing or ``None`` gives ``None``); a clear error otherwise."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HistoryError(
            f"run field {key!r} holds {value!r}, not a number; pass bench --json as is"
        )
    return kind(value)


def plan_columns(result: Mapping[str, Any]) -> tuple[str | None, str]:
    """The ``plan_name`` and ``plan_summary`` columns of a result."""
    plan = result.get("plan")
    name: str | None = None
    if isinstance(plan, Mapping):
        name = str(plan.get("name") or plan.get("preset") or "custom")
    schemes = result.get("scheme_summary") or {}
    parts = [f"{scheme}×{count}" for scheme, count in sorted(schemes.items()) if count]
    return name, ", ".join(parts) or "float"


def data_of(settings_json: str | None) -> str | None:
    """The ``data`` entry of a run's stored settings (older runs and other callers lack it)."""
    try:
        settings = json.loads(settings_json) if settings_json else None
    except ValueError:
        return None
    data = settings.get("data") if isinstance(settings, dict) else None
    return None if data is None else str(data)


def utterance_row(run_id: int, idx: int, utt: Mapping[str, Any]) -> tuple[Any, ...]:
    if not isinstance(utt, Mapping) or "id" not in utt:
        raise HistoryError(
            f"utterance {idx} of the run has no 'id'; pass the bench --json object unchanged"
        )
    extra = {k: v for k, v in utt.items() if k not in UTTERANCE_KEYS}
    return (
        run_id,
        idx,
        str(utt["id"]),
        None if utt.get("ref") is None else str(utt["ref"]),
        None if utt.get("hyp") is None else str(utt["hyp"]),
        number_field(utt, "seconds"),
        number_field(utt, "audio_seconds"),
        json.dumps(extra, default=str) if extra else None,
    )


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
