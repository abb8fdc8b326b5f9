"""bfloat16 weights and compute, float32 at the module's boundary."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from speechquant.core.quantization.schemes import rules
from speechquant.core.quantization.schemes.base import APPLIES, Verdict, register
from speechquant.core.quantization.settings import QuantSettings


def cast_floats(value: Any, dtype: torch.dtype) -> Any:
    """Cast floating tensors inside ``value`` (tensors, tuples, lists, dicts, ModelOutputs)."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(cast_floats(v, dtype) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(cast_floats(v, dtype) for v in value)
    if isinstance(value, dict):
        cast = {k: cast_floats(v, dtype) for k, v in value.items()}
        try:
            return type(value)(**cast)
        except TypeError:
            return cast
    return value


class Bf16Wrapper(nn.Module):
    """Runs ``module`` in bfloat16: inputs cast in, outputs cast back to float32."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.to(torch.bfloat16)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.module(*cast_floats(args, torch.bfloat16), **cast_floats(kwargs, torch.bfloat16))
        return cast_floats(out, torch.float32)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["module"], name)


class Bf16Scheme:
    name = "bf16"
    label = "bf16"
    description = (
        "Weights and compute in bfloat16 (fast on CPUs with AVX512-BF16/AMX); "
        "float32 in and out of the module."
    )
    wraps_root = True
    needs_calibration = False

    def verdict(self, module: nn.Module) -> Verdict:
        if rules.has_quantized(module):
            return Verdict(False, "already quantized", True)
        if not rules.has_float_params(module):
            return Verdict(False, "no float weights inside")
        return APPLIES

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        return Bf16Wrapper(module)

    def finalize(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        return module


register(Bf16Scheme())
