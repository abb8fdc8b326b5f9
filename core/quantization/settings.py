"""Scheme settings shared by every entry of a plan.

The fields' allowed values belong to the schemes that read them (``Scheme.options``); a plan
checks its settings against every registered scheme when it is built (``schemes.check_settings``).
Only the quantized engine, which several schemes share, and the decoder step, which no scheme
owns, are checked here.
"""

from __future__ import annotations

from dataclasses import dataclass

from speechquant.core.errors import PlanError

ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")
#: The dynamic scheme's default targets: every type it can convert.
DEFAULT_DYNAMIC_TARGETS = ("Linear", "LSTM", "GRU", "LSTMCell", "RNNCell", "GRUCell")
#: How the decoder steps after the first run (see ``decoder_step.py``): the searcher's own
#: code, or one TorchScript module (Whisper greedy search only).
DECODER_STEPS = ("native", "scripted")


@dataclass
class QuantSettings:
    """Scheme settings shared by every entry of a plan."""

    engine: str = "x86"
    dynamic_dtype: str = "qint8"
    dynamic_targets: tuple[str, ...] = DEFAULT_DYNAMIC_TARGETS
    static_qconfig: str = "tutorial"
    decoder_step: str = "native"

    def __post_init__(self) -> None:
        self.dynamic_targets = tuple(self.dynamic_targets)
        if self.engine not in ENGINES:
            raise PlanError(
                f"unknown quantized engine '{self.engine}'; use one of {', '.join(ENGINES)}"
            )
        if self.decoder_step not in DECODER_STEPS:
            raise PlanError(
                f"unknown decoder_step '{self.decoder_step}'; use one of {', '.join(DECODER_STEPS)}"
            )
