"""One plan (or the float model) as measured on a fixed set of utterances, against float."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from speechquant.core.evaluation.results import BenchResult, Comparison
from speechquant.core.quantization.plan import Plan

OBJECTIVES = {"rtf": "rtf", "rtf-encoder": "rtf_encoder", "size": "model_bytes"}
"""Objective name -> the bench figure it minimizes (speed as time relative to the float model)."""


@dataclass(frozen=True)
class UtteranceChange:
    """One utterance whose transcript differs from the float model's."""

    id: str
    ref: str
    base_hyp: str
    hyp: str
    base_errors: int
    errors: int
    ref_words: int

    @property
    def delta(self) -> int:
        """Word errors added (negative: removed) against the float model."""
        return self.errors - self.base_errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delta": self.delta}


@dataclass
class Measurement:
    """One plan (or the float model) measured on the measurer's utterances."""

    label: str
    kind: str
    """``baseline``, ``single`` (one unit), ``loo`` (all but one), ``all``, ``candidate``…"""
    wer: float
    delta_wer: float
    rtf: float
    rtf_encoder: float | None
    model_bytes: int
    speedup: float
    """Paired end-to-end speed-up against the float model (NaN when not timed paired)."""
    encoder_speedup: float | None
    bytes_saved: int
    n_utterances: int
    unit: str | None = None
    scheme: str | None = None
    plan: Plan | None = None
    changes: list[UtteranceChange] = field(default_factory=list)
    """Utterances whose transcript changed, most word errors added first."""
    cached: bool = False
    run_id: int | None = None
    bench: BenchResult | None = field(default=None, repr=False)
    comparison: Comparison | None = None
    """Against the float model, with intervals; ``None`` for the float model itself."""

    @property
    def result(self) -> dict[str, Any]:
        """The full ``bench --json`` object."""
        return {} if self.bench is None else self.bench.to_json()

    @property
    def wer_ci(self) -> list[float] | None:
        return None if self.bench is None else self.bench.wer_ci

    def worst(self, n: int = 3) -> list[UtteranceChange]:
        """The ``n`` utterances that gained the most word errors."""
        return [c for c in self.changes if c.delta > 0][:n]

    def objective(self, name: str) -> float:
        """Lower is better: bytes, or time relative to the float model (1 / paired speed-up)."""
        if name == "size":
            return float(self.model_bytes)
        value = self.speedup if name == "rtf" else self.encoder_speedup
        if value is None or value != value or value <= 0:
            return float("inf")
        return 1.0 / value

    def delta_wer_high(self) -> float:
        """The upper end of the ΔWER interval (the point estimate where there is none)."""
        c = self.comparison
        return self.delta_wer if c is None or not c.delta_wer_ci else c.delta_wer_ci[1]

    def to_dict(self, changes: bool = True) -> dict[str, Any]:
        data = {
            key: getattr(self, key)
            for key in (
                "label", "kind", "unit", "scheme", "wer", "wer_ci", "delta_wer", "rtf",
                "rtf_encoder", "model_bytes", "speedup", "encoder_speedup", "bytes_saved",
                "n_utterances", "cached", "run_id",
            )
        }  # fmt: skip
        data["plan"] = self.plan.to_dict() if self.plan is not None else None
        data["comparison"] = None if self.comparison is None else self.comparison.to_json()
        load = self.bench.load if self.bench is not None else None
        data["load"] = None if load is None else load.to_json()
        if changes:
            data["changes"] = [c.to_dict() for c in self.changes]
        return data
