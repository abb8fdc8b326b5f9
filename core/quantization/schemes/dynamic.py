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


def has_meta_tensors(module: nn.Module) -> bool:
    """True if any parameter or buffer of ``module`` is on the meta device (no storage)."""
    return any(t.is_meta for t in (*module.parameters(), *module.buffers()))


def empty_dynamic_leaf(leaf: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The dynamically quantized module for ``leaf``, with placeholder weights to be loaded.

    Used when ``leaf``'s float weights are on the meta device (an export's skeleton): only the
    shapes are read, so its float weights are never materialized. Recurrent layers build their
    placeholder packed weights one layer at a time, as torch's constructors do.
    """
    import torch.ao.nn.quantized.dynamic as nnqd

    if isinstance(leaf, nn.Linear):
        return nnqd.Linear(
            leaf.in_features, leaf.out_features, bias_=leaf.bias is not None, dtype=dtype
        )
    if isinstance(leaf, (nn.LSTM, nn.GRU)):
        cls = nnqd.LSTM if isinstance(leaf, nn.LSTM) else nnqd.GRU
        return cls(
            leaf.input_size,
            leaf.hidden_size,
            leaf.num_layers,
            leaf.bias,
            leaf.batch_first,
            float(leaf.dropout),
            leaf.bidirectional,
            dtype=dtype,
        )
    if isinstance(leaf, nn.RNNCell):
        return nnqd.RNNCell(
            leaf.input_size, leaf.hidden_size, leaf.bias, leaf.nonlinearity, dtype=dtype
        )
    if isinstance(leaf, nn.LSTMCell):
        return nnqd.LSTMCell(leaf.input_size, leaf.hidden_size, leaf.bias, dtype=dtype)
    if isinstance(leaf, nn.GRUCell):
        return nnqd.GRUCell(leaf.input_size, leaf.hidden_size, leaf.bias, dtype=dtype)
    raise TypeError(f"{type(leaf).__name__} has no dynamically quantized version")


def quantize_dynamic_leaf(leaf: nn.Module, settings: QuantSettings) -> nn.Module:
    """Swap one Linear/LSTM/GRU module for its dynamically quantized version.

    A leaf whose weights are on the meta device gets the quantized structure only (see
    :func:`empty_dynamic_leaf`); its weights come from a state_dict loaded afterwards.
    """
    from torch.ao.quantization import quantize_dynamic

    dtype = torch.qint8 if settings.dynamic_dtype == "qint8" else torch.float16
    if has_meta_tensors(leaf):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return empty_dynamic_leaf(leaf, dtype)
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
