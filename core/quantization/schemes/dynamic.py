"""The ``dynamic`` scheme: int8 (or float16) weights, activations quantized on the fly."""

from __future__ import annotations

import warnings
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
    SchemeOption,
    Verdict,
    register,
)
from speechquant.core.quantization.settings import QuantSettings

#: The module types the scheme converts, by the names ``QuantSettings.dynamic_targets`` holds.
DYNAMIC_TYPE_NAMES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "LSTM": nn.LSTM,
    "GRU": nn.GRU,
    "LSTMCell": nn.LSTMCell,
    "RNNCell": nn.RNNCell,
    "GRUCell": nn.GRUCell,
}
DYNAMIC_DTYPES = ("qint8", "float16")
_DYNAMIC_MODULES = "torch.ao.nn.quantized.dynamic"
_KEPT = {"qint8": 0.25, "float16": 0.5}


def placeholder_linear(
    in_features: int, out_features: int, *, bias: bool, dtype: torch.dtype
) -> nn.Module:
    """A dynamic int8/float16 Linear of this shape whose packed weight is a 1x1 placeholder.

    torch's constructor would pack a full-size placeholder (the layer's size allocated and
    written) only for the exported state to replace it. Loading a state that lacks the packed
    weight reports it as a missing key, so the placeholder never survives a load.
    """
    import torch.ao.nn.quantized.dynamic as nnqd

    module = nnqd.Linear(1, 1, bias_=bias, dtype=dtype)
    module.in_features, module.out_features = in_features, out_features
    return module


def empty_dynamic_leaf(leaf: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The dynamically quantized module for ``leaf``, with placeholder weights to be loaded.

    Used when ``leaf``'s float weights are on the meta device (an export's skeleton): only the
    shapes are read, so its float weights are never materialized. Linear layers get a 1x1
    packed placeholder (see :func:`placeholder_linear`); recurrent layers build their
    placeholder packed weights one layer at a time, as torch's constructors do.
    """
    import torch.ao.nn.quantized.dynamic as nnqd

    if isinstance(leaf, nn.Linear):
        return placeholder_linear(
            leaf.in_features, leaf.out_features, bias=leaf.bias is not None, dtype=dtype
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


def _flatten_parameters() -> None:
    """Nothing to flatten: a dynamically quantized RNN keeps packed weights."""


def _speechbrain_ready(quantized: nn.Module) -> nn.Module:
    """Give a quantized LSTM/GRU the ``flatten_parameters()`` SpeechBrain's wrappers call.

    ``speechbrain.nnet.RNN.LSTM``/``GRU`` call ``self.rnn.flatten_parameters()`` before every
    forward; torch's dynamically quantized LSTM/GRU do not have it.
    """
    from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase

    if isinstance(quantized, RNNBase) and not hasattr(quantized, "flatten_parameters"):
        quantized.flatten_parameters = _flatten_parameters  # type: ignore[assignment]
    return quantized


def quantize_dynamic_leaf(leaf: nn.Module, settings: QuantSettings) -> nn.Module:
    """Swap one Linear/LSTM/GRU module for its dynamically quantized version.

    A leaf whose weights are on the meta device gets the quantized structure only (see
    :func:`empty_dynamic_leaf`); its weights come from a state_dict loaded afterwards.
    """
    from torch.ao.quantization import quantize_dynamic

    dtype = torch.qint8 if settings.dynamic_dtype == "qint8" else torch.float16
    if rules.has_meta_tensors(leaf):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return _speechbrain_ready(empty_dynamic_leaf(leaf, dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        holder = nn.Sequential(leaf)
        quantize_dynamic(holder, {type(leaf)}, dtype=dtype, inplace=True)
    return _speechbrain_ready(holder[0])


class DynamicTiedHead(TiedHeadEmbedding):
    """A tied output embedding in int8: per-row scales, projection by a dynamic int8 Linear.

    The quantized matrix is saved once, in the packed projection; the lookup rows are rebuilt
    from it on load (from the loaded state's int8 matrix, without unpacking the projection).
    """

    rows: torch.Tensor
    row_scales: torch.Tensor

    def __init__(self, embedding: nn.Module, scheme: str = "dynamic") -> None:
        super().__init__(embedding, scheme)
        assert isinstance(embedding, nn.Embedding)
        weight = embedding.weight.detach()
        # On the meta device (an export's skeleton) only the structure is built: the state
        # loaded afterwards fills the packed projection, and the rows are rebuilt from it.
        self.projection = (
            _empty_dynamic_linear(*weight.shape)
            if weight.is_meta
            else _dynamic_linear(weight.float())
        )
        self.register_buffer("rows", torch.empty(0, dtype=torch.int8), persistent=False)
        self.register_buffer("row_scales", torch.empty(0), persistent=False)
        if not weight.is_meta:
            projection: Any = self.projection
            self._set_rows(projection.weight())

    def _set_rows(self, qweight: torch.Tensor) -> None:
        """Lookup rows and scales copied from the int8 matrix (never views of it)."""
        self.rows = qweight.int_repr()
        self.row_scales = qweight.q_per_channel_scales().to(torch.float32, copy=True)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        # The projection's (weight, bias), as torch's LinearPackedParams saves them; absent, the
        # projection is not loaded either and the rows still match it.
        packed = state_dict.get(prefix + "projection._packed_params._packed_params")
        if isinstance(packed, tuple) and packed and isinstance(packed[0], torch.Tensor):
            self._set_rows(packed[0])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.rows[ids].float() * self.row_scales[ids].unsqueeze(-1)

    def project(self, states: torch.Tensor) -> torch.Tensor:
        return self.projection(states.float())


def _empty_dynamic_linear(out_features: int, in_features: int) -> nn.Module:
    """A dynamic int8 Linear with a placeholder weight (an export's state replaces it)."""
    return placeholder_linear(in_features, out_features, bias=False, dtype=torch.qint8)


def _dynamic_linear(weight: torch.Tensor) -> nn.Module:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.weight = nn.Parameter(weight, requires_grad=False)
    linear.qconfig = per_channel_dynamic_qconfig  # type: ignore[assignment]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return DynamicLinear.from_float(linear)


class DynamicScheme(Scheme):
    """Dynamic quantization of the subtree's Linear/LSTM/GRU layers (weights int8 or float16)."""

    name = "dynamic"
    label = "dynamic"
    description = (
        "Weights quantized ahead of time, activations quantized on the fly "
        "(torch.ao quantize_dynamic); no calibration."
    )
    uses_engine = True
    supports_tied_head = True
    options = (
        SchemeOption("dynamic_dtype", DYNAMIC_DTYPES, "weight type of dynamic layers"),
        SchemeOption(
            "dynamic_targets", tuple(DYNAMIC_TYPE_NAMES), "module types converted", multiple=True
        ),
    )

    def verdict(self, module: nn.Module) -> Verdict:
        targets = tuple(DYNAMIC_TYPE_NAMES.values())
        if not any(type(m) in targets for m in module.modules()):
            return Verdict(False, "no Linear/LSTM/GRU inside")
        return APPLIES

    def is_target(self, module: nn.Module, settings: QuantSettings) -> bool:
        targets = tuple(DYNAMIC_TYPE_NAMES[name] for name in settings.dynamic_targets)
        return type(module) in targets and not rules.is_quantized_module(module)

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        if self.is_target(module, settings):
            return quantize_dynamic_leaf(module, settings)
        return module

    def produced(self, module: nn.Module) -> Produced | None:
        if isinstance(module, TiedHeadEmbedding) and module.scheme == self.name:
            return Produced(
                "dynamic int8 tied output embedding",
                "int8 rows with per-row scales; the projection is a dynamic int8 Linear",
            )
        if not type(module).__module__.startswith(_DYNAMIC_MODULES):
            return None
        packed = getattr(module, "_packed_params", None)
        owner = packed if isinstance(packed, nn.Module) else module
        if getattr(owner, "dtype", None) == torch.float16:
            return Produced(
                f"dynamic float16 {type(module).__name__}",
                "weights stored in float16; inputs and outputs float32",
            )
        return Produced(
            f"dynamic int8 {type(module).__name__}",
            "int8 weights; activations quantized to int8 on the fly, batch by batch",
        )

    def kept_fraction(
        self, class_name: str, settings: QuantSettings, tied_head: bool = False
    ) -> float | None:
        if tied_head:
            return 0.5  # int8 lookup rows plus the packed int8 projection
        if class_name in settings.dynamic_targets:
            return _KEPT[settings.dynamic_dtype]
        return None

    def tied_head(self, embedding: nn.Embedding, settings: QuantSettings) -> nn.Module:
        return DynamicTiedHead(embedding, self.name)

    def hardware_advice(self, cpu: CpuInfo) -> str | None:
        return rules.int8_cpu_hint(cpu)


register(DynamicScheme())
