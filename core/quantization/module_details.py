"""What one module is, read from the module itself: class, the scheme that made it, its weights'
dtype and shape, the bytes its packed weights take, and its quantization parameters.

A quantized module (torch.ao) keeps its weights in packed params that ``parameters()`` does not
list, and its class name is often the float one's (a dynamic int8 ``Linear`` is called
``Linear``). :func:`describe_module` reads the packed weights and names the module through the
scheme registry (``Scheme.produced``), so a quantized model or an export never looks float.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from speechquant.core.formatting import format_bytes
from speechquant.core.quantization.schemes import all_schemes

_QSCHEMES = {
    torch.per_tensor_affine: "per-tensor affine",
    torch.per_tensor_symmetric: "per-tensor symmetric",
    torch.per_channel_affine: "per-channel affine",
    torch.per_channel_symmetric: "per-channel symmetric",
    torch.per_channel_affine_float_qparams: "per-channel affine (float qparams)",
}


@dataclass(frozen=True)
class QuantParams:
    """How a tensor maps to integers: one scale and zero point, or ranges over its channels."""

    qscheme: str
    dtype: str | None = None
    scale: float | None = None
    zero_point: int | None = None
    axis: int | None = None
    channels: int | None = None
    scale_range: tuple[float, float] | None = None
    zero_point_range: tuple[int, int] | None = None

    def text(self) -> str:
        parts = [self.dtype, self.qscheme] if self.dtype else [self.qscheme]
        if self.scale is not None:
            parts.append(f"scale {self.scale:.4g}, zero point {self.zero_point}")
        if self.scale_range is not None:
            parts.append(
                f"axis {self.axis}, {self.channels} channels, "
                f"scale {self.scale_range[0]:.4g}–{self.scale_range[1]:.4g}"
            )
        if self.zero_point_range is not None:
            low, high = self.zero_point_range
            parts.append(f"zero point {low}" if low == high else f"zero point {low}–{high}")
        return ", ".join(parts)


@dataclass(frozen=True)
class TensorDetails:
    """One weight, bias or buffer a module holds itself (not its children)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    bytes: int
    #: Held in packed params (torch.ao), which ``parameters()`` does not list.
    packed: bool = False
    quant: QuantParams | None = None

    def text(self) -> str:
        shape = "×".join(str(n) for n in self.shape) or "scalar"
        where = " packed" if self.packed else ""
        text = f"{self.name}: {self.dtype} [{shape}], {format_bytes(self.bytes)}{where}"
        return f"{text}; {self.quant.text()}" if self.quant is not None else text


@dataclass(frozen=True)
class ModuleDetails:
    """What one module is (see the module docstring)."""

    path: str
    class_name: str
    #: ``module.qualname`` of the class, e.g. ``torch.ao.nn.quantized.dynamic.modules.linear.Linear``.
    qualified_class: str
    #: ``"dynamic int8 Linear"``, ``"static int8 Conv1d"``, ``"bf16 Linear"``; float: the class name.
    kind: str
    #: The registered scheme that made this module; None for a float module.
    scheme: str | None
    note: str
    tensors: tuple[TensorDetails, ...]
    #: The fixed quantization of the module's output (static modules and Quantize).
    output: QuantParams | None = None

    @property
    def packed_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors if t.packed)

    @property
    def weight(self) -> TensorDetails | None:
        """The main weight: one named ``weight`` (or starting with it), else the largest."""
        named = [t for t in self.tensors if t.name.split(".")[-1].startswith("weight")]
        pool = named or list(self.tensors)
        return max(pool, key=lambda t: t.bytes) if pool else None

    def lines(self) -> list[str]:
        """The details as readable lines (the desktop app's module panel, ``speechquant tree``)."""
        lines = [self.kind, f"class: {self.qualified_class}"]
        if self.note:
            lines.append(self.note)
        lines += [t.text() for t in self.tensors]
        if self.packed_bytes:
            lines.append(f"packed weights: {format_bytes(self.packed_bytes)}")
        if self.output is not None:
            lines.append(f"output: {self.output.text()}")
        if not self.tensors:
            lines.append("no weights of its own")
        return lines


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def quant_params(tensor: torch.Tensor) -> QuantParams | None:
    """The quantization of a quantized tensor (None for a float one)."""
    if not tensor.is_quantized:
        return None
    qscheme = tensor.qscheme()
    name = _QSCHEMES.get(qscheme, str(qscheme))
    if qscheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return QuantParams(
            name, scale=float(tensor.q_scale()), zero_point=int(tensor.q_zero_point())
        )
    scales = tensor.q_per_channel_scales().float()
    points = tensor.q_per_channel_zero_points()
    return QuantParams(
        name,
        axis=int(tensor.q_per_channel_axis()),
        channels=int(scales.numel()),
        scale_range=(float(scales.min()), float(scales.max())),
        zero_point_range=(int(points.min()), int(points.max())),
    )


def tensor_details(
    name: str, tensor: torch.Tensor, packed: bool = False, stored: torch.dtype | None = None
) -> TensorDetails:
    """``stored``: the dtype a packed weight is kept in when unpacking gives another (float16
    weights unpack to float32)."""
    dtype = stored if stored is not None and tensor.is_floating_point() else tensor.dtype
    size = torch.empty((), dtype=dtype).element_size() if dtype != tensor.dtype else None
    return TensorDetails(
        name=name,
        dtype=dtype_name(dtype),
        shape=tuple(int(n) for n in tensor.shape),
        bytes=tensor.numel() * (size or tensor.element_size()),
        packed=packed,
        quant=quant_params(tensor),
    )


def packed_tensors(module: nn.Module) -> list[TensorDetails]:
    """The weights ``module`` itself keeps in packed params (invisible to ``parameters()``).

    A quantized Linear's packed params are its child ``LinearPackedParams``, which holds them;
    convolutions and recurrent layers hold theirs themselves.
    """
    unpack = getattr(type(module), "_weight_bias", None)
    if unpack is None or isinstance(getattr(module, "_packed_params", None), nn.Module):
        return []
    try:
        found = unpack(module)
    except Exception:  # a module whose packed params were never filled holds no weights
        return []
    stored = getattr(module, "dtype", None)
    if not isinstance(stored, torch.dtype):  # recurrent cells name it weight_dtype
        stored = getattr(module, "weight_dtype", None)
    stored = stored if isinstance(stored, torch.dtype) else None
    if isinstance(found, dict):
        pairs: Iterable[tuple[str, object]] = [
            pair for group in found.values() for pair in group.items()
        ]
    else:
        weight, bias = found
        pairs = [("weight", weight), ("bias", bias)]
    return [
        tensor_details(name, tensor, True, stored if name.startswith("weight") else None)
        for name, tensor in pairs
        if isinstance(tensor, torch.Tensor)
    ]


def _output_params(module: nn.Module) -> QuantParams | None:
    """The fixed output quantization of a static quantized module or a Quantize stub."""
    scale, point = getattr(module, "scale", None), getattr(module, "zero_point", None)
    if not type(module).__module__.startswith("torch.ao.nn.quantized.modules"):
        return None
    if isinstance(scale, torch.Tensor) and isinstance(point, torch.Tensor):
        dtype = getattr(module, "dtype", None)
        return QuantParams(
            "per-tensor affine",
            dtype=dtype_name(dtype) if isinstance(dtype, torch.dtype) else None,
            scale=float(scale.flatten()[0]),
            zero_point=int(point.flatten()[0]),
        )
    if isinstance(scale, float) and isinstance(point, int):
        return QuantParams("per-tensor affine", dtype="quint8", scale=scale, zero_point=point)
    return None


def describe_module(module: nn.Module, path: str = "") -> ModuleDetails:
    """The :class:`ModuleDetails` of ``module`` (its own tensors; children are not included,
    except the packed params child of a quantized Linear, whose weights are the Linear's)."""
    tensors = [
        tensor_details(name, tensor)
        for name, tensor in (
            *module.named_parameters(recurse=False),
            *module.named_buffers(recurse=False),
        )
        if tensor is not None
    ]
    tensors += packed_tensors(module)
    child = getattr(module, "_packed_params", None)
    if isinstance(child, nn.Module):
        tensors += packed_tensors(child)
    cls = type(module)
    kind, scheme, note = cls.__name__, None, ""
    for candidate in all_schemes():
        made = candidate.produced(module)
        if made is not None:
            kind, scheme, note = made.kind, candidate.name, made.note
            break
    else:
        if cls.__module__.startswith("torch.ao.nn.quantized") and tensors:
            kind = f"{cls.__name__} ({tensors[0].dtype} packed weights)"
    return ModuleDetails(
        path=path,
        class_name=cls.__name__,
        qualified_class=f"{cls.__module__}.{cls.__qualname__}",
        kind=kind,
        scheme=scheme,
        note=note,
        tensors=tuple(tensors),
        output=_output_params(module),
    )
