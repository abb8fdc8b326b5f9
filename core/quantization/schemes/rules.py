"""Facts the schemes share: structure of module subtrees, and what a CPU means for int8 kernels."""

from __future__ import annotations

from torch import nn

from speechquant.core.machine import CpuInfo

X86_ARCHES = ("x86_64", "AMD64", "i386", "i686")
CONTAINERS: tuple[type[nn.Module], ...] = (nn.ModuleList, nn.ModuleDict)


def is_quantized_module(module: nn.Module) -> bool:
    """True for modules already converted by torch.ao quantization."""
    return type(module).__module__.startswith("torch.ao.nn.quantized")


def has_type(module: nn.Module, types: tuple[type[nn.Module], ...]) -> bool:
    return any(isinstance(m, types) for m in module.modules())


#: Attention classes whose names do not end with "Attention" (SpeechBrain's conformer attention).
ATTENTION_CLASS_NAMES = frozenset({"RelPosMHAXL", "RoPEMHA"})
#: Recurrent layers: they take float inputs only, so a QuantStub before them cannot work.
RECURRENT: tuple[type[nn.Module], ...] = (
    nn.RNNBase,
    nn.RNNCellBase,
)


def has_attention(module: nn.Module) -> bool:
    return any(
        isinstance(m, nn.MultiheadAttention)
        or type(m).__name__.endswith("Attention")
        or type(m).__name__ in ATTENTION_CLASS_NAMES
        for m in module.modules()
    )


#: SpeechBrain modules that compute in float32 whatever their weights' type, so a bfloat16 subtree
#: holding them fails with a dtype mismatch: class name -> why.
FLOAT32_INSIDE = {
    "RelPosMHAXL": "relative-position attention (RelPosMHAXL) computes its softmax in float32",
    "LocationAwareAttention": "location-aware attention keeps its state in float32",
    "TransformerASR": "TransformerASR builds its attention masks in float32",
    "TransformerLM": "TransformerLM builds its attention masks in float32",
}


def float32_inside(module: nn.Module) -> str | None:
    """Why a bfloat16 copy of ``module`` cannot run (see :data:`FLOAT32_INSIDE`), or None."""
    for m in module.modules():
        reason = FLOAT32_INSIDE.get(type(m).__name__)
        if reason is not None:
            return reason
    return None


ATTENTION_PROJECTION = "the attention reads this projection's weight directly"


def is_attention_projection(module: nn.Module) -> bool:
    """``nn.MultiheadAttention``'s ``out_proj``: the attention reads its weight directly, so
    neither a wrapper nor a converted module can stand in for it."""
    return isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear)


def has_recurrent(module: nn.Module) -> bool:
    """An LSTM/GRU/RNN layer or cell inside (float or dynamically quantized)."""
    from torch.ao.nn.quantized.dynamic.modules import rnn as quantized_rnn

    return has_type(module, (*RECURRENT, quantized_rnn.RNNBase, quantized_rnn.RNNCellBase))


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


def int8_cpu_hint(cpu: CpuInfo) -> str | None:
    """The int8 schemes' hardware note: x86 without AVX2 has no fast fbgemm kernels."""
    if cpu.arch in X86_ARCHES and "avx2" not in cpu.features:
        return (
            "this CPU lacks AVX2, which the x86/fbgemm int8 kernels need; measure the speed "
            "before relying on it"
        )
    return None


def has_meta_tensors(module: nn.Module) -> bool:
    """True if any parameter or buffer of ``module`` is on the meta device (no storage)."""
    return any(t.is_meta for t in (*module.parameters(), *module.buffers()))
