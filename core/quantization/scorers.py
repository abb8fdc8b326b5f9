"""Beam-search scorers: modules a searcher calls that sit outside the module tree.

SpeechBrain's beam searchers (``S2SBeamSearcher`` and subclasses) keep a ``ScorerBuilder`` in
their ``scorer`` attribute. It is a plain object, not a module, and its scorers hold modules of
the model: ``RNNLMScorer.lm`` / ``TransformerLMScorer.lm`` (the language model, also
``mods.lm_model``) and ``CTCScorer.ctc_fc`` (the CTC head). Swapping a module in the tree does
not reach these references, so a quantized ``lm_model`` would leave decoding on the float one.

:func:`scorer_modules` lists those references; :func:`rebound_scorer` gives a copy of the
scorer whose references point at the replacements (the float model's scorer is not changed).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn


def _scorer(module: nn.Module) -> Any:
    scorer = module.__dict__.get("scorer")
    if scorer is None or isinstance(scorer, nn.Module):
        return None
    if not all(
        isinstance(getattr(scorer, k, None), dict) for k in ("full_scorers", "partial_scorers")
    ):
        return None
    return scorer


def _references(scorer: Any) -> Iterator[tuple[str, Any, str, nn.Module]]:
    for group in ("full_scorers", "partial_scorers"):
        for key, part in getattr(scorer, group).items():
            for attribute, value in vars(part).items():
                if isinstance(value, nn.Module):
                    yield group, key, attribute, value


def scorer_modules(module: nn.Module) -> list[nn.Module]:
    """The modules ``module``'s beam-search scorer holds (empty if it has no scorer)."""
    scorer = _scorer(module)
    return [] if scorer is None else [value for *_, value in _references(scorer)]


def rebound_scorer(module: nn.Module, replace: Callable[[nn.Module], nn.Module]) -> Any:
    """A copy of ``module``'s scorer with each held module ``m`` replaced by ``replace(m)``.

    Returns None when the scorer holds nothing that ``replace`` changes (or there is no scorer).
    """
    scorer = _scorer(module)
    if scorer is None:
        return None
    changes = [
        (group, key, attribute, new)
        for group, key, attribute, value in _references(scorer)
        if (new := replace(value)) is not value
    ]
    if not changes:
        return None
    clone = copy.copy(scorer)
    for group in ("full_scorers", "partial_scorers"):
        setattr(clone, group, {k: copy.copy(v) for k, v in getattr(scorer, group).items()})
    for group, key, attribute, value in changes:
        setattr(getattr(clone, group)[key], attribute, value)
    return clone
