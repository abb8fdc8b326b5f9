"""The ``dynamic`` scheme: int8 (or float16) weights, activations quantized on the fly."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from speechquant.core.quantization.schemes import rules
from speechquant.core.quantization.schemes.base import APPLIES, Verdict, register
from speechquant.core.quantization.settings import DYNAMIC_TARGET_NAMES, QuantSettings

DYNAMIC_TYPE_NAMES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "LSTM": nn.LSTM,
    "GRU": nn.GRU,
    "LSTMCell": nn.LSTMCell,
    "RNNCell": nn.RNNCell,
    "GRUCell": nn.GRUCell,
}
assert tuple(DYNAMIC_TYPE_NAMES) == DYNAMIC_TARGET_NAMES, "settings and the dynamic scheme disagree"


def quantize_dynamic_leaf(leaf: nn.Module, settings: QuantSettings) -> nn.Module:
    """Swap one Linear/LSTM/GRU module for its dynamically quantized version."""
    from torch.ao.quantization import quantize_dynamic

    dtype = torch.qint8 if settings.dynamic_dtype == "qint8" else torch.float16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        holder = nn.Sequential(leaf)
        quantize_dynamic(holder, {type(leaf)}, dtype=dtype, inplace=True)
    return holder[0]


class DynamicScheme:
    """Dynamic quantization of the subtree's Linear/LSTM/GRU layers (weights int8 or float16)."""

    name = "dynamic"
    label = "dynamic"
    description = (
        "Weights quantized ahead of time, activations quantized on the fly "
        "(torch.ao quantize_dynamic); no calibration."
    )
    wraps_root = False
    needs_calibration = False

    def verdict(self, module: nn.Module) -> Verdict:
        if not rules.has_type(module, rules.DYNAMIC_TARGETS):
            return Verdict(False, "no Linear/LSTM/GRU inside")
        return APPLIES

    def is_target(self, module: nn.Module, settings: QuantSettings) -> bool:
        targets = tuple(DYNAMIC_TYPE_NAMES[name] for name in settings.dynamic_targets)
        return type(module) in targets and not rules.is_quantized_module(module)

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        if self.is_target(module, settings):
            return quantize_dynamic_leaf(module, settings)
        return module

    def finalize(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        return module


register(DynamicScheme())
