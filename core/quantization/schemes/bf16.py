"""bfloat16 weights and compute, float32 at the module's boundary."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from speechquant.core.machine import CpuInfo
from speechquant.core.quantization.heads import TiedHeadEmbedding
from speechquant.core.quantization.schemes import rules
from speechquant.core.quantization.schemes.base import (
    APPLIES,
    Produced,
    Scheme,
    Verdict,
    register,
)
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


def _in_bf16(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        out = method(*cast_floats(args, torch.bfloat16), **cast_floats(kwargs, torch.bfloat16))
        return cast_floats(out, torch.float32)

    return call


def _entry_method(module: nn.Module, name: str, value: Any) -> bool:
    """A method of ``module``'s own class (not ``nn.Module``'s API): another entry point.

    SpeechBrain drives some modules through methods other than ``forward`` (a searcher calls
    ``AttentionalRNNDecoder.forward_step`` and ``TransformerASR.decode``, the encoder wrapper
    calls ``TransformerASR.encode``); those cross the module's boundary too.
    """
    if not inspect.ismethod(value) or value.__self__ is not module:
        return False
    owner = next((c for c in type(module).__mro__ if name in c.__dict__), nn.Module)
    return owner is not nn.Module and not name.startswith("_")


class Bf16Wrapper(nn.Module):
    """Runs ``module`` in bfloat16: inputs cast in, outputs cast back to float32.

    ``forward`` and the module's own methods (see :func:`_entry_method`) cast at the boundary.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.to(torch.bfloat16)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return _in_bf16(self.module)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self._modules["module"]
            assert inner is not None
            value = getattr(inner, name)
            return _in_bf16(value) if _entry_method(inner, name, value) else value


class Bf16TiedHead(TiedHeadEmbedding):
    """A tied output embedding in bfloat16: rows and projection share one bfloat16 matrix."""

    rows: torch.Tensor

    def __init__(self, embedding: nn.Module, scheme: str = "bf16") -> None:
        super().__init__(embedding, scheme)
        assert isinstance(embedding, nn.Embedding)
        self.register_buffer("rows", embedding.weight.detach().float().to(torch.bfloat16))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.rows[ids].float()

    def project(self, states: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(states.to(torch.bfloat16), self.rows).float()


class Bf16Scheme(Scheme):
    name = "bf16"
    label = "bf16"
    description = (
        "Weights and compute in bfloat16 (fast only on CPUs with AVX512-BF16, AMX or ARM BF16); "
        "float32 in and out of the module."
    )
    wraps_root = True
    supports_tied_head = True

    def verdict(self, module: nn.Module) -> Verdict:
        if rules.is_attention_projection(module):
            return Verdict(False, rules.ATTENTION_PROJECTION, True)
        if rules.has_quantized(module):
            return Verdict(False, "already quantized", True)
        if not rules.has_float_params(module):
            return Verdict(False, "no float weights inside")
        reason = rules.float32_inside(module)
        if reason is not None:
            return Verdict(False, reason, True)
        return APPLIES

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        return Bf16Wrapper(module)

    def produced(self, module: nn.Module) -> Produced | None:
        if isinstance(module, Bf16Wrapper):
            return Produced("bf16 block", "bfloat16 weights and compute; float32 at its boundary")
        if isinstance(module, TiedHeadEmbedding) and module.scheme == self.name:
            return Produced(
                "bf16 tied output embedding",
                "one bfloat16 matrix for the lookup and the projection",
            )
        own = [
            t
            for t in (*module.parameters(recurse=False), *module.buffers(recurse=False))
            if t.is_floating_point()
        ]
        if own and all(t.dtype == torch.bfloat16 for t in own):
            return Produced(f"bf16 {type(module).__name__}", "bfloat16 weights and compute")
        return None

    def kept_fraction(
        self, class_name: str, settings: QuantSettings, tied_head: bool = False
    ) -> float | None:
        return 0.5  # every float tensor of the subtree, halved

    def tied_head(self, embedding: nn.Embedding, settings: QuantSettings) -> nn.Module:
        return Bf16TiedHead(embedding, self.name)

    def hardware_advice(self, cpu: CpuInfo) -> str | None:
        if cpu.native_bf16:
            return None
        missing = "ARM BF16" if cpu.arch in ("aarch64", "arm64") else "AVX512-BF16 or AMX"
        return f"emulated on this CPU (no {missing}), expect it slower than float32"


register(Bf16Scheme())
