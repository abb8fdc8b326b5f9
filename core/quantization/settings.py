"""Scheme settings shared by every entry of a plan.

The fields' allowed values belong to the schemes that read them (``Scheme.options``); a plan
checks its settings against every registered scheme when it is built (``schemes.check_settings``).
Only the quantized engine, which several schemes share, is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass

from speechquant.core.errors import PlanError

ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")
#: The dynamic scheme's default targets: every type it can convert.
DEFAULT_DYNAMIC_TARGETS = ("Linear", "LSTM", "GRU", "LSTMCell", "RNNCell", "GRUCell")


@dataclass
class QuantSettings:
    """Scheme settings shared by every entry of a plan."""

    engine: str = "x86"
    dynamic_dtype: str = "qint8"
    dynamic_targets: tuple[str, ...] = DEFAULT_DYNAMIC_TARGETS
    static_qconfig: str = "tutorial"

    def __post_init__(self) -> None:
        self.dynamic_targets = tuple(self.dynamic_targets)
        if self.engine not in ENGINES:
            raise PlanError(
                f"unknown quantized engine '{self.engine}'; use one of {', '.join(ENGINES)}"
            )
