"""Scheme settings shared by every entry of a plan, and the vocabularies they draw on."""

from __future__ import annotations

from dataclasses import dataclass

from speechquant.core.errors import PlanError

ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")
DYNAMIC_DTYPES = ("qint8", "float16")
#: Module types the dynamic scheme can target (implemented in ``schemes.dynamic``).
DYNAMIC_TARGET_NAMES = ("Linear", "LSTM", "GRU", "LSTMCell", "RNNCell", "GRUCell")
DEFAULT_DYNAMIC_TARGETS = DYNAMIC_TARGET_NAMES
#: Observer recipes of the static scheme (implemented in ``schemes.static``).
STATIC_QCONFIGS = ("tutorial", "per-channel", "histogram")


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
        if self.dynamic_dtype not in DYNAMIC_DTYPES:
            raise PlanError(
                f"unknown dynamic dtype '{self.dynamic_dtype}'; use one of {', '.join(DYNAMIC_DTYPES)}"
            )
        unknown = [t for t in self.dynamic_targets if t not in DYNAMIC_TARGET_NAMES]
        if unknown or not self.dynamic_targets:
            raise PlanError(
                f"unknown dynamic target types {unknown}; use some of {', '.join(DYNAMIC_TARGET_NAMES)}"
            )
        if self.static_qconfig not in STATIC_QCONFIGS:
            raise PlanError(
                f"unknown static qconfig '{self.static_qconfig}'; use one of {', '.join(STATIC_QCONFIGS)}"
            )
