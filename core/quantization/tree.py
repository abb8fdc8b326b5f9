"""A headless view of a model's module hierarchy, with which schemes apply where and why not."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from speechquant.core.formatting import format_bytes
from speechquant.core.quantization.heads import tied_head_paths
from speechquant.core.quantization.schemes import (
    APPLIES,
    FLOAT_SCHEME,
    Scheme,
    Verdict,
    all_schemes,
)
from speechquant.core.quantization.schemes.rules import CONTAINERS


@dataclass
class ModuleNode:
    """One module under the model's ``mods``."""

    path: str
    name: str
    class_name: str
    own_params: int
    total_params: int
    total_bytes: int
    verdicts: dict[str, Verdict]
    children: list[ModuleNode] = field(default_factory=list)
    parent: ModuleNode | None = field(default=None, repr=False)
    is_container: bool = False
    #: An embedding that is also the model's output projection (see ``quantization.heads``).
    is_tied_head: bool = False

    @property
    def depth(self) -> int:
        return 0 if not self.path else self.path.count(".") + 1

    def applicable(self) -> list[str]:
        return [name for name, verdict in self.verdicts.items() if verdict.applies]

    def walk(self) -> Iterator[ModuleNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self, max_depth: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "class": self.class_name,
            "own_params": self.own_params,
            "params": self.total_params,
            "bytes": self.total_bytes,
            "schemes": {
                name: {"applies": v.applies, **({"reason": v.reason} if not v.applies else {})}
                for name, v in self.verdicts.items()
            },
        }
        if max_depth is None or self.depth < max_depth:
            data["children"] = [child.to_dict(max_depth) for child in self.children]
        return data


@dataclass
class ModuleTree:
    """The root stands for the whole ``mods`` dict (path ``""``); it takes no plan entry."""

    root: ModuleNode
    by_path: dict[str, ModuleNode]

    def __contains__(self, path: str) -> bool:
        return path in self.by_path

    def __getitem__(self, path: str) -> ModuleNode:
        return self.by_path[path]

    def nodes(self) -> Iterator[ModuleNode]:
        """Every node except the root, depth first."""
        for child in self.root.children:
            yield from child.walk()


def _tensor_bytes(module: nn.Module, recurse: bool) -> tuple[int, int]:
    params = sum(p.numel() for p in module.parameters(recurse=recurse))
    size = sum(p.numel() * p.element_size() for p in module.parameters(recurse=recurse))
    size += sum(b.numel() * b.element_size() for b in module.buffers(recurse=recurse))
    size += _packed_bytes(module, recurse)
    return params, size


def _packed_bytes(module: nn.Module, recurse: bool) -> int:
    """Bytes of quantized weights held in packed params (invisible to ``parameters()``)."""
    total = 0
    modules = module.modules() if recurse else iter([module])
    for m in modules:
        total += _packed_rnn_bytes(m)
        packed = getattr(m, "_packed_params", None)
        if packed is None or not hasattr(packed, "_weight_bias"):
            continue
        try:
            weight, bias = packed._weight_bias()
        except Exception:
            continue
        total += weight.numel() * weight.element_size()
        if bias is not None:
            total += bias.numel() * bias.element_size()
    return total


def _packed_rnn_bytes(module: nn.Module) -> int:
    """Bytes of a dynamically quantized LSTM/GRU (or cell): weights int8 or float16, biases float32."""
    import torch
    from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase, RNNCellBase

    if not isinstance(module, (RNNBase, RNNCellBase)):
        return 0
    dtype = getattr(module, "dtype", None) if isinstance(module, RNNBase) else module.weight_dtype
    unpacked = module._weight_bias()
    total = sum(
        t.numel() * (2 if dtype == torch.float16 else t.element_size())
        for t in unpacked["weight"].values()
    )
    return total + sum(
        t.numel() * t.element_size() for t in unpacked["bias"].values() if t is not None
    )


def _head_verdicts(schemes: list[Scheme]) -> dict[str, Verdict]:
    """A tied output embedding takes the schemes that support tied heads, or stays float."""
    takers = " or ".join(s.name for s in schemes if s.supports_tied_head) or "no scheme here"
    refused = Verdict(False, f"tied output projection: use {takers}", True)
    return {
        s.name: APPLIES if s.supports_tied_head or s.name == FLOAT_SCHEME else refused
        for s in schemes
    }


def build_tree(mods: nn.Module) -> ModuleTree:
    """Walk ``mods`` (shared submodules visited once) into a :class:`ModuleTree`."""
    schemes = all_schemes()
    heads = tied_head_paths(mods)
    seen: set[int] = set()
    by_path: dict[str, ModuleNode] = {}

    def visit(module: nn.Module, path: str, name: str, parent: ModuleNode | None) -> ModuleNode:
        seen.add(id(module))
        own, _ = _tensor_bytes(module, recurse=False)
        total, size = _tensor_bytes(module, recurse=True)
        tied_head = path in heads and isinstance(module, nn.Embedding)
        if tied_head:
            verdicts = _head_verdicts(schemes)
        else:
            verdicts = {s.name: s.verdict(module) for s in schemes} if path else {}
        node = ModuleNode(
            path=path,
            name=name,
            class_name=type(module).__name__,
            own_params=own,
            total_params=total,
            total_bytes=size,
            verdicts=verdicts,
            parent=parent,
            is_container=isinstance(module, CONTAINERS),
            is_tied_head=tied_head,
        )
        by_path[path] = node
        for child_name, child in module.named_children():
            if id(child) in seen or child_name == "parametrizations":
                continue
            child_path = f"{path}.{child_name}" if path else child_name
            node.children.append(visit(child, child_path, child_name, node))
        return node

    root = visit(mods, "", "(model)", None)
    return ModuleTree(root=root, by_path=by_path)


def format_tree(
    tree: ModuleTree, max_depth: int | None = None, advice: Mapping[str, str] | None = None
) -> str:
    """A readable indented table: module, class, params, size, schemes (and why not).

    ``advice`` (scheme -> warning, see ``schemes.scheme_advice``) is listed below the table.
    """
    rows: list[tuple[str, str, str, str, str]] = []
    for node in tree.nodes():
        if max_depth is not None and node.depth > max_depth:
            continue
        indent = "  " * (node.depth - 1)
        schemes = ", ".join(
            name if v.applies else f"no {name}: {v.reason}"
            for name, v in node.verdicts.items()
            if name != FLOAT_SCHEME
        )
        rows.append(
            (
                indent + node.name,
                node.class_name,
                f"{node.total_params:,}",
                format_bytes(node.total_bytes),
                schemes,
            )
        )
    header = ("module", "class", "params", "size", "schemes")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
        for row in [header, *rows]
    ]
    lines += [f"note: {text}" for text in (advice or {}).values()]
    return "\n".join(line.rstrip() for line in lines)
