"""The ``none`` and ``dynamic`` schemes."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import rules
from .base import APPLIES, Verdict, register

if TYPE_CHECKING:
    from ..plan import QuantSettings


class NoneScheme:
    name = "none"
    label = "none (float)"
    description = "Leave the subtree in float32; excludes it from an enclosing scheme."
    wraps_root = False
    needs_calibration = False

    def verdict(self, module: nn.Module) -> Verdict:
        return APPLIES

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        return module

    def finalize(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        return module


DYNAMIC_TYPE_NAMES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "LSTM": nn.LSTM,
    "GRU": nn.GRU,
    "LSTMCell": nn.LSTMCell,
    "RNNCell": nn.RNNCell,
    "GRUCell": nn.GRUCell,
}


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


register(NoneScheme())
register(DynamicScheme())
