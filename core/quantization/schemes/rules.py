"""Structural facts about module subtrees that decide which schemes apply."""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

DYNAMIC_TARGETS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.LSTM,
    nn.GRU,
    nn.LSTMCell,
    nn.RNNCell,
    nn.GRUCell,
)
STATIC_TARGETS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONTAINERS: tuple[type[nn.Module], ...] = (nn.ModuleList, nn.ModuleDict)


def is_quantized_module(module: nn.Module) -> bool:
    """True for modules already converted by torch.ao quantization."""
    return type(module).__module__.startswith("torch.ao.nn.quantized")


def has_type(module: nn.Module, types: tuple[type[nn.Module], ...]) -> bool:
    return any(isinstance(m, types) for m in module.modules())


def has_attention(module: nn.Module) -> bool:
    return any(
        isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("Attention")
        for m in module.modules()
    )


def has_weight_norm_conv(module: nn.Module) -> bool:
    return any(
        isinstance(m, (nn.Conv1d, nn.Conv2d)) and parametrize.is_parametrized(m)
        for m in module.modules()
    )


def has_batchnorm_after_linear(module: nn.Module) -> bool:
    """A BatchNorm1d that follows a Linear among siblings (SpeechBrain's Linear/BatchNorm stacks)."""
    for parent in module.modules():
        previous_linear = False
        for child in parent.children():
            linear_like = isinstance(child, nn.Linear) or any(
                isinstance(c, nn.Linear) for c in child.children()
            )
            batchnorm = isinstance(child, nn.BatchNorm1d) or any(
                isinstance(c, nn.BatchNorm1d) for c in child.children()
            )
            if batchnorm and previous_linear:
                return True
            previous_linear = linear_like
    return False


def has_embedding(module: nn.Module) -> bool:
    return has_type(module, (nn.Embedding, nn.EmbeddingBag))


def has_quantized(module: nn.Module) -> bool:
    return any(is_quantized_module(m) for m in module.modules())


def has_float_params(module: nn.Module) -> bool:
    return any(p.is_floating_point() for p in module.parameters())
