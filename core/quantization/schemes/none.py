"""The ``none`` scheme: keep a subtree in float32."""

from __future__ import annotations

from torch import nn

from speechquant.core.quantization.schemes.base import (
    APPLIES,
    FLOAT_SCHEME,
    Scheme,
    Verdict,
    register,
)
from speechquant.core.quantization.settings import QuantSettings


class NoneScheme(Scheme):
    name = FLOAT_SCHEME
    label = "none (float)"
    description = "Leave the subtree in float32; excludes it from an enclosing scheme."
    search_candidate = False

    def verdict(self, module: nn.Module) -> Verdict:
        return APPLIES

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        return module


register(NoneScheme())
