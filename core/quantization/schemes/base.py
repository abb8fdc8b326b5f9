"""The scheme interface and the registry every front end reads.

Everything that differs between schemes lives on the scheme: which modules it converts, whether
its speed depends on the quantized engine, whether it can take a tied output projection, which
settings it reads (and their allowed values), how much of a layer's bytes it keeps (for size
estimates), whether the search tries it by default, and what it means on a given CPU. The CLI's
``choices=``, the GUI's combo boxes, the search defaults, plan validation and the size estimate
read these facts from the registry, so a new scheme is one new module in ``schemes/``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from torch import nn

from speechquant.core.errors import PlanError
from speechquant.core.machine import CpuInfo
from speechquant.core.quantization.settings import QuantSettings

#: The scheme that keeps a subtree float32 (and the plan's default for modules without an entry).
FLOAT_SCHEME = "none"


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


@dataclass(frozen=True)
class Produced:
    """What a module a scheme made is, as a reader of a quantized model should see it.

    ``kind`` names it (``"dynamic int8 Linear"``); ``note`` says how it computes (may be "").
    """

    kind: str
    note: str = ""


@dataclass(frozen=True)
class SchemeOption:
    """A :class:`QuantSettings` field a scheme reads, with its allowed values.

    ``multiple``: the field holds a non-empty tuple of the values (e.g. the dynamic target types).
    """

    field: str
    choices: tuple[str, ...]
    help: str
    multiple: bool = False


class Scheme(ABC):
    """One way of treating a module subtree.

    Subclass it, set the class attributes, implement :meth:`verdict` and :meth:`prepare`, override
    what else differs from the defaults, and :func:`register` an instance.
    """

    name: str
    label: str
    description: str
    #: Wrapping schemes replace the subtree's root; leaf schemes swap modules inside it.
    wraps_root: bool = False
    needs_calibration: bool = False
    #: Speed and numerics depend on torch's quantized engine (``QuantSettings.engine``).
    uses_engine: bool = False
    #: Tried by default in sensitivity analysis and the plan search.
    search_candidate: bool = True
    #: Can replace a tied output embedding named by its own plan entry (see ``quantization.heads``).
    supports_tied_head: bool = False
    #: The settings this scheme reads, checked by :meth:`check_settings`.
    options: tuple[SchemeOption, ...] = ()

    @abstractmethod
    def verdict(self, module: nn.Module) -> Verdict:
        """Whether this scheme applies to ``module`` (judged on its whole subtree)."""

    @abstractmethod
    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        """Return the replacement of ``module`` (a private copy that may be changed in place).

        Wrapping schemes get the subtree's root; leaf schemes get each module for which
        :meth:`is_target` holds.
        """

    def finalize(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        """Finish a wrapped subtree after calibration (static converts observers)."""
        return module

    def is_target(self, module: nn.Module, settings: QuantSettings) -> bool:
        """For leaf schemes: whether :meth:`prepare` swaps this module."""
        return False

    def produced(self, module: nn.Module) -> Produced | None:
        """How to name ``module`` when this scheme made it (in a quantized model or an export).

        None: ``module`` is not this scheme's output (the float scheme makes nothing).
        """
        return None

    def kept_fraction(
        self, class_name: str, settings: QuantSettings, tied_head: bool = False
    ) -> float | None:
        """The fraction of a module's own bytes kept under this scheme; None: left as is.

        Used by the size estimate, which sees only the module tree (class names, bytes).
        ``tied_head``: the module is a tied output embedding named by its own plan entry.
        """
        return None

    def tied_head(self, embedding: nn.Embedding, settings: QuantSettings) -> nn.Module:
        """The replacement of a tied output embedding (only where :attr:`supports_tied_head`)."""
        raise PlanError(f"scheme '{self.name}' cannot quantize a tied output projection")

    def check_settings(self, settings: QuantSettings) -> None:
        """Raise :class:`PlanError` if a field this scheme reads holds a value it cannot use."""
        for option in self.options:
            value = getattr(settings, option.field)
            values = tuple(value) if option.multiple else (value,)
            unknown = [v for v in values if v not in option.choices]
            if unknown or not values:
                allowed = ", ".join(option.choices)
                raise PlanError(
                    f"setting {option.field}={value!r} is not valid for the {self.name} scheme; "
                    f"use {'some' if option.multiple else 'one'} of {allowed}"
                )

    def hardware_advice(self, cpu: CpuInfo) -> str | None:
        """What this CPU means for the scheme's speed, judged from its features; None: nothing."""
        return None

    def advice(self, cpu: CpuInfo, measured_speedup: float | None = None) -> str | None:
        """A one-line warning when this scheme is slow on ``cpu``, or None.

        ``measured_speedup`` is float32 time over this scheme's time measured on this machine
        (above 1: faster). A measurement overrides what the CPU's features suggest.
        """
        if measured_speedup is not None:
            if not measured_speedup > 0:
                raise ValueError(f"measured_speedup must be positive, got {measured_speedup}")
            if measured_speedup < 1:
                hint = self.hardware_advice(cpu)
                reason = f"{hint.split(',')[0]}, " if hint else ""
                return (
                    f"{self.name}: {reason}{1 / measured_speedup:.1f}x slower than float32 here "
                    "(measured by speechquant doctor)"
                )
            return None
        hint = self.hardware_advice(cpu)
        return f"{self.name}: {hint}" if hint else None


_REGISTRY: dict[str, Scheme] = {}


def register(scheme: Scheme) -> Scheme:
    """Add ``scheme`` to the registry (a name may be registered once)."""
    if not isinstance(scheme, Scheme):
        raise TypeError(f"{scheme!r} is not a Scheme; subclass schemes.base.Scheme")
    for attribute in ("name", "label", "description"):
        if not isinstance(getattr(scheme, attribute, None), str):
            raise TypeError(
                f"scheme {type(scheme).__name__} must set the class attribute '{attribute}'"
            )
    if not scheme.name or scheme.name in _REGISTRY:
        raise PlanError(f"a scheme named '{scheme.name}' is already registered (or empty)")
    known = {f.name for f in fields(QuantSettings)}
    for option in scheme.options:
        if option.field not in known:
            raise PlanError(
                f"scheme '{scheme.name}' reads setting '{option.field}', which QuantSettings lacks; "
                "add the field there"
            )
    _REGISTRY[scheme.name] = scheme
    return scheme


def unregister(name: str) -> None:
    """Remove a scheme (tests register toy schemes and remove them again)."""
    if name == FLOAT_SCHEME:
        raise PlanError("the float scheme 'none' cannot be unregistered")
    _REGISTRY.pop(name, None)


def get_scheme(name: str) -> Scheme:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PlanError(
            f"unknown scheme '{name}'; use one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def scheme_names() -> list[str]:
    """Registered scheme names, ``none`` first."""
    return sorted(_REGISTRY, key=lambda name: (name != FLOAT_SCHEME, name))


def all_schemes() -> list[Scheme]:
    return [_REGISTRY[name] for name in scheme_names()]


def quantizing_schemes() -> tuple[str, ...]:
    """Every scheme but ``none``: what the search and sensitivity may be asked to try."""
    return tuple(name for name in scheme_names() if name != FLOAT_SCHEME)


def search_candidates() -> tuple[str, ...]:
    """The schemes sensitivity analysis and the plan search try by default."""
    return tuple(s.name for s in all_schemes() if s.name != FLOAT_SCHEME and s.search_candidate)


def uses_engine(name: str) -> bool:
    """Whether scheme ``name``'s speed depends on the quantized engine."""
    return get_scheme(name).uses_engine


def scheme_options() -> list[tuple[Scheme, SchemeOption]]:
    """Every setting a registered scheme reads, with the scheme that reads it."""
    return [(scheme, option) for scheme in all_schemes() for option in scheme.options]


def setting_choices(field_name: str) -> tuple[str, ...]:
    """The allowed values of a scheme setting (e.g. ``static_qconfig``), from the scheme that owns it."""
    for _, option in scheme_options():
        if option.field == field_name:
            return option.choices
    raise PlanError(f"no registered scheme reads the setting '{field_name}'")


def check_settings(settings: QuantSettings) -> None:
    """Every registered scheme checks the settings it reads."""
    for scheme in all_schemes():
        scheme.check_settings(settings)


def scheme_advice(
    cpu: CpuInfo, measured_speedups: Mapping[str, float] | None = None
) -> dict[str, str]:
    """Scheme name -> a warning about its speed on ``cpu``, for the schemes that have one.

    ``measured_speedups`` (scheme -> float32 time over the scheme's time, measured here) takes
    precedence over what the CPU's features suggest.
    """
    measured = measured_speedups or MappingProxyType({})
    found: dict[str, str] = {}
    for scheme in all_schemes():
        text = scheme.advice(cpu, measured.get(scheme.name))
        if text:
            found[scheme.name] = text
    return found
