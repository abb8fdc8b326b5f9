"""Building a model skeleton without weight storage, and filling it from a state_dict.

Loading an export must not materialize the float weights it is about to replace: the skeleton's
parameters live on the meta device (shapes only), the plan's quantized structure is built from
those shapes, and the exported state is then *assigned* (not copied) into the modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built inside get their parameters on the meta device (shapes, no storage).

    Buffers stay real (non-persistent ones, such as filter banks, are not in a state_dict), and
    each parameter's transient initial tensor is dropped as soon as it is registered, so building
    a model allocates no float weights. Patches ``nn.Module.register_parameter`` for the duration:
    build only one model at a time (the GUI's single job slot guarantees it).
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None and not param.is_meta and type(param) is nn.Parameter:
            module._parameters[name] = nn.Parameter(
                param.to("meta"), requires_grad=param.requires_grad
            )

    nn.Module.register_parameter = register  # type: ignore[method-assign,assignment]
    try:
        with _MetaWhereMixed():
            yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


class _MetaWhereMixed(TorchFunctionMode):
    """Runs an op on the meta device when it mixes meta and real tensors.

    Constructors that infer shapes with a dummy forward (SpeechBrain's ``Sequential``) then get
    meta outputs of the right shape instead of a device error.
    """

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        leaves = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
        if any(x.is_meta for x in leaves) and not all(x.is_meta for x in leaves):
            args, kwargs = tree_map(_to_meta, (args, kwargs))
        return func(*args, **kwargs)


def _to_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and not value.is_meta:
        return value.to("meta")
    return value


def shared_parameters(mods: nn.Module) -> list[list[tuple[nn.Module, str]]]:
    """Groups of (module, name) slots that hold one Parameter object (tied weights)."""
    slots: dict[int, list[tuple[nn.Module, str]]] = {}
    seen: set[int] = set()
    for module in mods.modules():
        if id(module) in seen:
            continue
        seen.add(id(module))
        for name, param in module._parameters.items():
            if param is not None:
                slots.setdefault(id(param), []).append((module, name))
    return [group for group in slots.values() if len(group) > 1]


def assign_state(mods: nn.Module, state: Mapping[str, Any]) -> Any:
    """Load ``state`` by assignment (no copy into meta storage), keeping tied weights tied.

    Returns ``load_state_dict``'s missing/unexpected keys.
    """
    ties = shared_parameters(mods)
    result = mods.load_state_dict(state, strict=False, assign=True)
    for group in ties:
        first_module, first_name = group[0]
        param = first_module._parameters[first_name]
        for module, name in group[1:]:
            module._parameters[name] = param
    return result


def meta_tensors(mods: nn.Module) -> list[str]:
    """Names of parameters and buffers still on the meta device (not filled by a state)."""
    return [
        name for name, tensor in (*mods.named_parameters(), *mods.named_buffers()) if tensor.is_meta
    ]
