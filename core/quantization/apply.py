"""Apply a plan to a model without touching the caller's float model.

Only what the plan changes is copied: wrapped subtrees (static, bf16) are deep-copied and
converted, dynamic layers are swapped one by one, and every container on the way is
shallow-copied. Untouched modules are shared with the float model, so a quantized variant costs
little more memory than its quantized layers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from speechquant.core.errors import CalibrationError, PlanError
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check, report
from speechquant.core.quantization.decoder_step import (
    check_decoder_step,
    script_decoder_step,
    whisper_searchers,
)
from speechquant.core.quantization.heads import bind_heads, tied_head_paths
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import FLOAT_SCHEME, get_scheme
from speechquant.core.quantization.schemes.rules import CONTAINERS, has_meta_tensors
from speechquant.core.quantization.scorers import rebound_scorer
from speechquant.core.quantization.tree import build_tree
from speechquant.core.quantization.validation import validate_plan


def set_engine(engine: str) -> None:
    """Select the quantized engine, with a clear error where this machine lacks it."""
    supported = torch.backends.quantized.supported_engines
    if engine not in supported:
        raise PlanError(
            f"quantized engine '{engine}' is not available here; this torch supports "
            f"{', '.join(e for e in supported if e != 'none')}"
        )
    torch.backends.quantized.engine = engine


def clone_structure(module: nn.Module) -> nn.Module:
    """A private copy of ``module``'s structure whose tensors share storage with the original.

    Schemes may add, swap or re-type modules and parameters of the copy (quantize, ``.to()``)
    without touching the original, yet no float weight is duplicated: the copy holds new
    ``Parameter`` objects over the same storage. Weight-norm parametrized modules are deep-copied.
    """
    if parametrize.is_parametrized(module):
        return copy.deepcopy(module)
    clone = module.__class__.__new__(module.__class__)
    clone.__dict__ = module.__dict__.copy()
    clone._parameters = {
        name: None if p is None else nn.Parameter(p.data, requires_grad=p.requires_grad)
        for name, p in module._parameters.items()
    }
    clone._buffers = dict(module._buffers)
    clone._modules = {
        name: None if child is None else clone_structure(child)
        for name, child in module._modules.items()
    }
    _own_hooks(clone, module)
    return clone


#: The hook registries of an ``nn.Module`` (each a dict in its ``__dict__``).
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _own_hooks(clone: nn.Module, module: nn.Module) -> None:
    """Give ``clone`` its own copies of ``module``'s hook registries (the same hooks in them).

    A copied ``__dict__`` would share them: a hook registered on the copy would also run on the
    original, and the other way round.
    """
    for hooks in HOOK_DICTS:
        if hooks in module.__dict__:
            setattr(clone, hooks, type(module.__dict__[hooks])(module.__dict__[hooks]))


def _materialize(module: nn.Module) -> nn.Module:
    """Zero-filled storage for a meta-device subtree that a scheme must run on (static convert).

    Only this subtree is given storage; the state loaded afterwards overwrites it.
    """
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in (*module.parameters(), *module.buffers()):
            tensor.zero_()
    return module


@dataclass
class _Rebuild:
    plan: Plan
    root: nn.Module
    heads: dict[str, str] = field(default_factory=dict)
    memo: dict[int, nn.Module] = field(default_factory=dict)
    wrapped: list[tuple[str, nn.Module]] = field(default_factory=list)
    #: The first path of each module (where a beam-search scorer's modules sit in the tree).
    paths: dict[int, str] = field(init=False)
    building: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.paths = {id(m): p for p, m in self.root.named_modules() if p}

    def module(self, module: nn.Module, path: str) -> nn.Module:
        key = id(module)
        if key in self.memo:
            return self.memo[key]
        top = bool(path) and "." not in path
        if top:
            self.building.add(path)
        result = self._rebuild(module, path)
        if top:
            self.building.discard(path)
        self.memo[key] = result
        return result

    def held(self, module: nn.Module) -> nn.Module:
        """What replaces a module a beam-search scorer holds: the rebuilt module at its path.

        Its top-level module is rebuilt first if need be, so a wrapping entry on any ancestor
        is honoured; inside the subtree being rebuilt the replacement is the memoized one.
        """
        path = self.paths.get(id(module))
        if path is None:
            return module
        top, _, rest = path.partition(".")
        if top in self.building:
            return self.memo.get(id(module), module)
        rebuilt = self.module(self.root._modules[top], top)  # type: ignore[arg-type]
        return rebuilt.get_submodule(rest) if rest else rebuilt

    def _rebuild(self, module: nn.Module, path: str) -> nn.Module:
        scheme_name, origin = self.plan.effective(path) if path else (FLOAT_SCHEME, None)
        scheme = get_scheme(scheme_name)
        if path in self.heads and origin == path and scheme.supports_tied_head:
            if not isinstance(module, nn.Embedding):
                raise PlanError(f"the tied output projection '{path}' is not an Embedding")
            return scheme.tied_head(module, self.plan.settings)
        if origin == path and scheme.wraps_root:
            if isinstance(module, CONTAINERS):
                return self._copy_with(
                    module,
                    {
                        name: self._wrap(child, f"{path}.{name}", scheme_name)
                        for name, child in module.named_children()
                    },
                )
            return self._wrap(module, path, scheme_name)
        if not scheme.wraps_root and scheme.is_target(module, self.plan.settings):
            return scheme.prepare(clone_structure(module), self.plan.settings)
        children = {
            name: self.module(child, f"{path}.{name}" if path else name)
            for name, child in module.named_children()
            if name != "parametrizations"
        }
        scorer = rebound_scorer(module, self.held)
        if scorer is None and all(module._modules[name] is new for name, new in children.items()):
            return module
        clone = self._copy_with(module, children)
        if scorer is not None:
            clone.__dict__["scorer"] = scorer
        return clone

    def _wrap(self, module: nn.Module, path: str, scheme_name: str) -> nn.Module:
        scheme = get_scheme(scheme_name)
        clone = clone_structure(module)
        if scheme.needs_calibration and has_meta_tensors(clone):
            clone = _materialize(clone)
        wrapped = scheme.prepare(clone, self.plan.settings)
        self.wrapped.append((scheme_name, wrapped))
        return wrapped

    @staticmethod
    def _copy_with(module: nn.Module, children: dict[str, nn.Module]) -> nn.Module:
        clone = module.__class__.__new__(module.__class__)
        clone.__dict__ = module.__dict__.copy()
        _own_hooks(clone, module)
        clone._modules = dict(module._modules)
        for name, child in children.items():
            clone._modules[name] = child
        return clone


def apply_plan(
    model: LoadedModel,
    plan: Plan,
    calibration: Iterable[torch.Tensor] | None = None,
    *,
    structure_only: bool = False,
    validate: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> LoadedModel:
    """Return a quantized variant of ``model`` following ``plan``; ``model`` stays as it was.

    Parameters
    ----------
    calibration
        Waveforms (1-D, at the model's rate) run through the variant's own transcribe path to
        calibrate static subtrees. Required when the plan has a ``static`` entry.
    structure_only
        Build the converted structure without calibration (used to reload exported weights).
    validate
        Check the plan against the model first (turned off only to verify the rules by trial).
    """
    if validate:
        validate_plan(plan, build_tree(model.mods))
    set_engine(plan.settings.engine)
    report(progress, 0, 1, "quantizing")
    rebuild = _Rebuild(plan, model.mods, heads=tied_head_paths(model.mods))
    with torch.no_grad():
        mods = rebuild.module(model.mods, "")
    assert isinstance(mods, nn.ModuleDict)
    bind_heads(mods)
    mods.eval()
    variant = model.with_mods(mods, plan)
    calibrated = [m for name, m in rebuild.wrapped if get_scheme(name).needs_calibration]
    if calibrated and not structure_only:
        _calibrate(variant, calibration, progress, cancel)
    for name, module in rebuild.wrapped:
        get_scheme(name).finalize(module, plan.settings)
    if plan.settings.decoder_step == "scripted" and not structure_only:
        script_decoder_steps(variant, shared=model.mods)
    report(progress, 1, 1, "quantized")
    return variant


def script_decoder_steps(variant: LoadedModel, shared: nn.ModuleDict | None = None) -> None:
    """Run the later decoder steps of ``variant``'s Whisper searchers scripted (``decoder_step``).

    A searcher that is still the object in ``shared`` (the float model's) is copied first, so
    the float model keeps its own steps. Raises :class:`PlanError` in one line where the model
    has no such searcher or the capture is refused (see :func:`script_decoder_step`).
    """
    check_decoder_step("scripted", variant.mods, variant.source)
    if shared is not None and variant.mods is shared:
        variant.asr.mods = _Rebuild._copy_with(shared, {})
    for name in whisper_searchers(variant.mods):
        searcher: nn.Module = variant.mods[name]
        if shared is not None and shared._modules.get(name) is searcher:
            searcher = _Rebuild._copy_with(searcher, {})
            variant.mods._modules[name] = searcher
        script_decoder_step(searcher, variant.source)


def _calibrate(
    variant: LoadedModel,
    calibration: Iterable[torch.Tensor] | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    waves = list(calibration) if calibration is not None else []
    if not waves:
        raise CalibrationError(
            "the plan has static entries, which need calibration utterances; give calibration "
            "data, or choose dynamic/bf16 for those modules"
        )
    for i, wav in enumerate(waves):
        check(cancel)
        report(progress, i, len(waves), "calibrating")
        variant.transcribe(wav)
    report(progress, len(waves), len(waves), "calibrating")
