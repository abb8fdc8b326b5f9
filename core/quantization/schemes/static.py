"""Static (calibrated) int8 quantization with the tutorial's QuantStub/DeQuantStub wrapper."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from speechquant.core.machine import CpuInfo
from speechquant.core.quantization.schemes import rules
from speechquant.core.quantization.schemes.base import (
    APPLIES,
    Produced,
    Scheme,
    SchemeOption,
    Verdict,
    register,
)
from speechquant.core.quantization.settings import QuantSettings

#: The module types the scheme converts (inside its QuantStub/DeQuantStub wrapper).
STATIC_TARGETS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_STATIC_CLASS_NAMES = frozenset(t.__name__ for t in STATIC_TARGETS)
_STATIC_MODULES = "torch.ao.nn.quantized.modules"
_QUANTIZED_MODULES = "torch.ao.nn.quantized"
_SHARED_WITH_DYNAMIC = frozenset({"LinearPackedParams"})
#: Layers a converted subtree cannot run: torch has no kernel for them on quantized tensors.
NO_QUANTIZED_KERNEL: tuple[type[nn.Module], ...] = (nn.GLU, nn.SiLU)


class StaticQuantWrapper(nn.Module):
    """QuantStub -> module -> DeQuantStub; tuple outputs are dequantized element-wise."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant = QuantStub()
        self.model = model
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        x = self.quant(x)
        out = self.model(x, *args, **kwargs)
        if isinstance(out, tuple):
            return tuple(self.dequant(o) if isinstance(o, torch.Tensor) else o for o in out)
        return self.dequant(out)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)


#: Float layers that act element by element: inside a static block they run on the dense
#: order of a permuted (transposed) quantized input and hand the result back permuted alike.
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.GELU, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.Hardtanh, nn.ELU, nn.Sigmoid,
    nn.Tanh, nn.Dropout, nn.Identity,
)  # fmt: skip
#: The same for Hugging Face's activation modules, by module and class name.
_HF_ELEMENTWISE = ("transformers.activations", ("GELUActivation", "QuickGELUActivation"))
_INVERSE = "_speechquant_inverse_order"


def is_elementwise(module: nn.Module) -> bool:
    """Whether ``module`` applies one function to each element (and ignores their layout)."""
    cls = type(module)
    return isinstance(module, ELEMENTWISE) or (
        cls.__module__ == _HF_ELEMENTWISE[0] and cls.__name__ in _HF_ELEMENTWISE[1]
    )


def dense_order(x: torch.Tensor) -> list[int] | None:
    """The permutation that makes ``x`` contiguous without a copy, if there is one."""
    order = sorted(range(x.dim()), key=lambda d: -x.stride()[d])
    return order if x.permute(order).is_contiguous() else None


def _slow_layout(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_quantized and not x.is_contiguous()


def _contiguous_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if not args or not _slow_layout(args[0]):
        return None
    return (args[0].contiguous(), *args[1:])


def _dense_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if not args or not _slow_layout(args[0]):
        return None
    order = dense_order(args[0])
    if order is None:
        return (args[0].contiguous(), *args[1:])
    dense = args[0].permute(order)
    setattr(dense, _INVERSE, sorted(range(len(order)), key=order.__getitem__))
    return (dense, *args[1:])


def _restore_order(module: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
    inverse = getattr(args[0], _INVERSE, None) if args else None
    if inverse is None or not isinstance(out, torch.Tensor):
        return None
    return out.permute(inverse)


def contiguous_float_leaves(block: nn.Module) -> int:
    """Keep torch's quantized kernels of the float leaf modules in ``block`` on dense input.

    Layers left float inside a static block (activations such as GELU, after a transposed
    normalization) run torch's quantized kernels, which on a non-contiguous tensor are many
    times slower than on a dense one; the values are the same either way. Element-wise layers
    run on the input's dense order (no copy) and give their output back in the input's layout;
    other float leaves get a contiguous copy. Returns the number of modules hooked.
    """
    hooked = 0
    for sub in block.modules():
        if sub._modules or type(sub).__module__.startswith(_QUANTIZED_MODULES):
            continue
        if is_elementwise(sub):
            sub.register_forward_pre_hook(_dense_input)
            sub.register_forward_hook(_restore_order)
        else:
            sub.register_forward_pre_hook(_contiguous_input)
        hooked += 1
    return hooked


def _plain_conv(conv: nn.Module) -> nn.Module:
    """``conv`` as its own class, holding the weight its weight-norm parametrization computes."""
    cls: type[nn.Module] = parametrize.type_before_parametrizations(conv)
    plain: nn.Module = object.__new__(cls)
    plain.__dict__ = conv.__dict__.copy()
    plain._modules = {k: v for k, v in conv._modules.items() if k != "parametrizations"}
    plain._parameters = dict(conv._parameters)
    weight = conv.weight  # computed by the parametrization
    assert isinstance(weight, torch.Tensor)
    with torch.no_grad():
        plain._parameters["weight"] = nn.Parameter(weight.detach().clone())
    return plain


def fold_weight_norm(block: nn.Module) -> int:
    """Replace each weight-norm parametrized conv inside ``block`` by a plain conv of its weight.

    Weight norm only reparametrizes the weight (``g * v / ||v||``); computed once, the conv gives
    the same output and can be quantized. The parametrized conv is replaced in ``block``'s own
    module dicts and never changed, so a model sharing it keeps computing its weight. Returns
    the number of convs folded.
    """
    folded = 0
    for parent in list(block.modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, (nn.Conv1d, nn.Conv2d)) and parametrize.is_parametrized(child):
                parent._modules[name] = _plain_conv(child)
                folded += 1
    return folded


def _tutorial_qconfig(engine: str) -> Any:
    from torch.ao.quantization import default_qconfig

    return default_qconfig


def _per_channel_qconfig(engine: str) -> Any:
    from torch.ao.quantization import get_default_qconfig

    return get_default_qconfig(engine)


def _histogram_qconfig(engine: str) -> Any:
    from torch.ao.quantization import QConfig, default_per_channel_weight_observer
    from torch.ao.quantization.observer import HistogramObserver

    return QConfig(
        activation=HistogramObserver.with_args(reduce_range=True),
        weight=default_per_channel_weight_observer,
    )


QCONFIGS: dict[str, Callable[[str], Any]] = {
    "tutorial": _tutorial_qconfig,
    "per-channel": _per_channel_qconfig,
    "histogram": _histogram_qconfig,
}


class StaticScheme(Scheme):
    name = "static"
    label = "static"
    description = (
        "Weights and activations int8 with ranges calibrated on real utterances "
        "(QuantStub -> module -> DeQuantStub); needs calibration data."
    )
    wraps_root = True
    needs_calibration = True
    uses_engine = True
    options = (
        SchemeOption(
            "static_qconfig",
            tuple(QCONFIGS),
            "observers: tutorial (min-max, per-tensor), per-channel, histogram",
        ),
    )

    def verdict(self, module: nn.Module) -> Verdict:
        if rules.is_attention_projection(module):
            return Verdict(False, rules.ATTENTION_PROJECTION, True)
        if rules.has_attention(module):
            return Verdict(False, "attention blocks static quantization", blocking=True)
        unsupported = next(
            (m for m in module.modules() if isinstance(m, NO_QUANTIZED_KERNEL)), None
        )
        if unsupported is not None:
            name = type(unsupported).__name__
            return Verdict(False, f"{name} has no quantized kernel", True)
        if rules.has_recurrent(module):
            return Verdict(False, "recurrent layers (LSTM/GRU) block static quantization", True)
        if rules.has_batchnorm_after_linear(module):
            return Verdict(False, "BatchNorm after Linear blocks static quantization", True)
        if rules.has_embedding(module):
            return Verdict(False, "embeddings need weight-only quantization", True)
        if rules.has_quantized(module):
            return Verdict(False, "already quantized", True)
        if not rules.has_type(module, STATIC_TARGETS):
            return Verdict(False, "no Linear/Conv inside")
        return APPLIES

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        from torch.ao.quantization import prepare

        if isinstance(module, (nn.Conv1d, nn.Conv2d)) and parametrize.is_parametrized(module):
            module = _plain_conv(module)
        fold_weight_norm(module)
        wrapper = StaticQuantWrapper(module)
        wrapper.qconfig = QCONFIGS[settings.static_qconfig](settings.engine)  # type: ignore[assignment]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepare(wrapper, inplace=True)
        return wrapper

    def finalize(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        from torch.ao.quantization import convert

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            convert(module, inplace=True)
        contiguous_float_leaves(module)
        return module

    def produced(self, module: nn.Module) -> Produced | None:
        if isinstance(module, StaticQuantWrapper):
            return Produced(
                "static int8 block",
                "QuantStub -> module -> DeQuantStub: int8 inside, float32 at its boundary",
            )
        name = type(module).__name__
        if not type(module).__module__.startswith(_STATIC_MODULES) or name in _SHARED_WITH_DYNAMIC:
            return None
        if name == "Quantize":
            return Produced(
                "static int8 input quantizer (Quantize)",
                "float32 in, quint8 out with the calibrated scale and zero point",
            )
        if name == "DeQuantize":
            return Produced("static output dequantizer (DeQuantize)", "quint8 in, float32 out")
        return Produced(
            f"static int8 {name}",
            "int8 weights and activations; output scale and zero point fixed by calibration",
        )

    def kept_fraction(
        self, class_name: str, settings: QuantSettings, tied_head: bool = False
    ) -> float | None:
        return 0.25 if class_name in _STATIC_CLASS_NAMES else None

    def hardware_advice(self, cpu: CpuInfo) -> str | None:
        return rules.int8_cpu_hint(cpu)


register(StaticScheme())
