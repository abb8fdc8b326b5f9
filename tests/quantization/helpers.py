"""What the quantization tests of the CTC and encoder-decoder models share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
import torch

from speechquant.core.model.loaded import LoadedModel
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.tree import ModuleNode

from ..helpers import fixed_waves


def check_rules_agree_with_trying(
    model: LoadedModel,
    nodes: Iterable[ModuleNode],
    run: Callable[[Any, torch.Tensor], object],
) -> None:
    """Where a rule says a scheme applies to one of ``nodes``, ``run(variant, wave)`` works on
    the variant with only that node quantized; where it says it blocks, it fails. Enough of both
    must be tried."""
    wave = fixed_waves(1, seconds=0.5, seed=2)[0]
    checked = {"applies": 0, "blocks": 0}
    for node in nodes:
        for name in ("static", "dynamic", "bf16"):
            verdict = node.verdicts[name]
            if not verdict.applies and not verdict.blocking:
                continue
            plan = Plan({node.path: name})
            if verdict.applies:
                run(apply_plan(model, plan, [wave], validate=False), wave)
                checked["applies"] += 1
            else:
                with pytest.raises(Exception):  # noqa: B017,PT011
                    run(apply_plan(model, plan, [wave], validate=False), wave)
                checked["blocks"] += 1
    assert checked["applies"] > 20 and checked["blocks"] >= 3
