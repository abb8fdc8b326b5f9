"""The scheme interface and the registry every front end reads (CLI choices, GUI combo boxes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import nn

from speechquant.core.errors import PlanError
from speechquant.core.quantization.settings import QuantSettings


@dataclass(frozen=True)
class Verdict:
    """Whether a scheme applies to a module; ``reason`` says why not.

    ``blocking`` is True when applying it would fail (attention, BatchNorm after Linear, weight
    norm), False when it would merely do nothing (no Linear/Conv inside).
    """

    applies: bool
    reason: str = ""
    blocking: bool = False


APPLIES = Verdict(True)


class Scheme(Protocol):
    """One way of treating a module subtree."""

    name: str
    label: str
    description: str
    #: Wrapping schemes replace the subtree's root; leaf schemes swap modules inside it.
    wraps_root: bool
    needs_calibration: bool

    def verdict(self, module: nn.Module) -> Verdict:
        """Whether this scheme applies to ``module`` (judged on its whole subtree)."""
        ...

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        """Return the replacement of ``module`` (a private copy that may be changed in place)."""
        ...

    def finalize(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        """Finish after calibration (static quantization converts observers); others return it."""
        ...


_REGISTRY: dict[str, Scheme] = {}


def register(scheme: Scheme) -> Scheme:
    _REGISTRY[scheme.name] = scheme
    return scheme


def get_scheme(name: str) -> Scheme:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PlanError(
            f"unknown scheme '{name}'; use one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def scheme_names() -> list[str]:
    """Registered scheme names, ``none`` first."""
    return sorted(_REGISTRY, key=lambda name: (name != "none", name))


def all_schemes() -> list[Scheme]:
    return [_REGISTRY[name] for name in scheme_names()]
