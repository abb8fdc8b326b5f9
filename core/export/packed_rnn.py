"""Dynamically quantized LSTM/GRU layers and cells in an export's state, as plain tensors.

torch keeps their packed weights in torchbind objects (``CellParamsBase``,
``LinearPackedParamsBase``) and puts those objects in the ``state_dict``; ``torch.load`` with
``weights_only=True`` refuses them. So the exporter stores each such module's unpacked weights
and biases (int8 quantized or float tensors) under ``<path>._packed_rnn.<weight|bias>.<name>``
instead, and the loader packs them again into the module the plan built, then hands the packed
objects to ``load_state_dict`` under their usual keys. Packing is deterministic: the reloaded
layers compute exactly what the exported ones did.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from speechquant.core.errors import ExportError

INFIX = "._packed_rnn."


def _recurrent(mods: nn.Module) -> dict[str, Any]:
    from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase, RNNCellBase

    return {
        path: module
        for path, module in mods.named_modules()
        if isinstance(module, (RNNBase, RNNCellBase))
    }


def _packed_keys(path: str, module: nn.Module) -> list[str]:
    from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase

    if isinstance(module, RNNBase):
        return [
            f"{path}._all_weight_values.{i}.param" for i in range(len(module._all_weight_values))
        ]
    return [f"{path}._packed_weight_ih", f"{path}._packed_weight_hh"]


def plain_state(mods: nn.Module, state: Any) -> Any:
    """``state`` (changed in place) with every quantized RNN's packed objects as plain tensors."""
    for path, module in _recurrent(mods).items():
        for key in _packed_keys(path, module):
            state.pop(key, None)
        for kind, tensors in module._weight_bias().items():
            for name, tensor in tensors.items():
                state[f"{path}{INFIX}{kind}.{name}"] = tensor
    return state


def packed_state(mods: nn.Module, state: Mapping[str, Any], origin: str) -> Any:
    """``state`` with each quantized RNN's plain tensors packed again, under the usual keys.

    ``mods`` is the structure the plan built (its quantized RNNs hold placeholder weights); each
    is packed from the state here. Raises :class:`ExportError` when the tensors do not fit.
    """
    from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase

    result: Any = OrderedDict(state)
    meta = getattr(state, "_metadata", None)
    if meta is not None:
        result._metadata = meta
    for path, module in _recurrent(mods).items():
        prefix = f"{path}{INFIX}"
        found = {k[len(prefix) :]: result.pop(k) for k in list(result) if k.startswith(prefix)}
        nested: dict[str, dict[str, torch.Tensor]] = {"weight": {}, "bias": {}}
        for key, tensor in found.items():
            kind, _, name = key.partition(".")
            if kind not in nested or not isinstance(tensor, torch.Tensor):
                raise ExportError(
                    f"{origin} has an unknown entry '{prefix}{key}'; re-export the model"
                )
            nested[kind][name] = tensor
        try:
            if isinstance(module, RNNBase):
                module.set_weight_bias({**nested["weight"], **nested["bias"]})
            else:
                module.set_weight_bias(nested)
        except (KeyError, RuntimeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(
                f"{origin} does not fit the quantized recurrent layer '{path}' ({detail[:160]}); "
                "re-export the model"
            ) from None
        if isinstance(module, RNNBase):
            objects = [value.param for value in module._all_weight_values]
        else:
            objects = [module._packed_weight_ih, module._packed_weight_hh]
        result.update(zip(_packed_keys(path, module), objects, strict=True))
    return result
