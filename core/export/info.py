"""What an opened export says about itself: its plan, where it came from, and the measurement
it was exported with (the ``metrics`` of its metadata.json, if any)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from speechquant.core.export.safety import FORMAT
from speechquant.core.formatting import format_bytes
from speechquant.core.machine import MachineInfo
from speechquant.core.model.loaded import LoadedModel


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = _number(value[0]), _number(value[1])
        if low is not None and high is not None:
            return (low, high)
    return None


@dataclass(frozen=True)
class StoredMetrics:
    """The benchmark result an export carries (figures absent from it are None)."""

    wer: float | None
    wer_ci: tuple[float, float] | None
    rtf: float | None
    n_utterances: int | None
    model_bytes: int | None
    delta_wer: float | None
    delta_wer_ci: tuple[float, float] | None
    speedup: float | None
    speedup_ci: tuple[float, float] | None
    machine: str | None
    started_at: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoredMetrics:
        found = data.get("comparison")
        comparison: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        machine = data.get("machine")
        n, size = _number(data.get("n_utterances")), _number(data.get("model_bytes"))
        started = data.get("started_at")
        return cls(
            wer=_number(data.get("wer")),
            wer_ci=_interval(data.get("wer_ci")),
            rtf=_number(data.get("rtf")),
            n_utterances=None if n is None else int(n),
            model_bytes=None if size is None else int(size),
            delta_wer=_number(comparison.get("delta_wer")),
            delta_wer_ci=_interval(comparison.get("delta_wer_ci")),
            speedup=_number(comparison.get("speedup")),
            speedup_ci=_interval(comparison.get("speedup_ci")),
            machine=MachineInfo.from_json(machine).label() if isinstance(machine, dict) else None,
            started_at=str(started) if started else None,
        )

    def text(self) -> str:
        """``WER 12.50 % [95 %: 10.1–15.2], RTF 0.250, ΔWER +0.40 … against float32, speed-up …``."""
        parts = []
        if self.wer is not None:
            wer_ci = self.wer_ci
            shown = f" [95 %: {wer_ci[0]:.1f}–{wer_ci[1]:.1f}]" if wer_ci else ""
            parts.append(f"WER {self.wer:.2f} %{shown}")
        if self.rtf is not None:
            parts.append(f"RTF {self.rtf:.3f}")
        if self.delta_wer is not None:
            ci = self.delta_wer_ci
            parts.append(
                f"ΔWER {self.delta_wer:+.2f}"
                + (f" [95 %: {ci[0]:+.1f}–{ci[1]:+.1f}]" if ci else "")
                + " against float32"
            )
        if self.speedup is not None:
            ci = self.speedup_ci
            parts.append(
                f"speed-up {self.speedup:.2f}×"
                + (f" [95 %: {ci[0]:.2f}–{ci[1]:.2f}]" if ci else "")
            )
        if self.model_bytes is not None:
            parts.append(format_bytes(self.model_bytes))
        text = ", ".join(parts) or "no figures"
        if self.n_utterances is not None:
            text += f" on {self.n_utterances} utterances"
        if self.machine:
            text += f" ({self.machine})"
        return text


@dataclass(frozen=True)
class ExportInfo:
    """An export folder's own account of itself (from its checked metadata.json)."""

    folder: str
    plan_name: str
    source: str
    created_at: str
    engine: str
    scheme_summary: dict[str, int]
    calibration_ids: tuple[str, ...]
    state_bytes: int
    load_warnings: tuple[str, ...]
    metrics: StoredMetrics | None

    def lines(self, with_warnings: bool = True) -> list[str]:
        """Readable lines; ``with_warnings`` adds the load warnings (the CLI prints those itself)."""
        schemes = ", ".join(f"{k}×{v}" for k, v in sorted(self.scheme_summary.items()) if v)
        calibration = (
            f"calibrated on {len(self.calibration_ids)} utterances"
            if self.calibration_ids
            else "no calibration"
        )
        lines = [
            f"Export of plan {self.plan_name} ({schemes or 'no'} entries), quantized engine "
            f"{self.engine}, {calibration}, {format_bytes(self.state_bytes)} of weights",
            f"made from {self.source} on {self.created_at}",
            (
                f"stored measurement: {self.metrics.text()}"
                if self.metrics is not None
                else "stored measurement: none (no benchmark of this plan matched when it was "
                "exported)"
            ),
        ]
        return lines + [f"warning: {text}" for text in self.load_warnings if with_warnings]


def export_info(model: LoadedModel) -> ExportInfo | None:
    """The :class:`ExportInfo` of a model loaded from an export folder; None for other models."""
    meta = model.metadata
    if meta.get("format") != FORMAT:
        return None
    metrics = meta.get("metrics")
    summary = meta.get("scheme_summary")
    return ExportInfo(
        folder=model.source,
        plan_name=str(meta.get("plan_name") or (model.plan.name if model.plan else "?")),
        source=str(meta.get("source", "?")),
        created_at=str(meta.get("created_at", "?")),
        engine=str(meta.get("quantized_engine", "?")),
        scheme_summary=(
            {str(k): int(v) for k, v in summary.items() if _number(v) is not None}
            if isinstance(summary, dict)
            else {}
        ),
        calibration_ids=tuple(str(i) for i in meta.get("calibration_ids") or []),
        state_bytes=int(_number(meta.get("state_bytes")) or 0),
        load_warnings=tuple(str(w) for w in meta.get("load_warnings") or []),
        metrics=StoredMetrics.from_json(metrics) if isinstance(metrics, dict) else None,
    )
