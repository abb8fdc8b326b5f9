"""Static int8 of a weight-norm parametrized conv: the weight is folded once, then quantized."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from speechquant.core.export.loader import load_quantized
from speechquant.core.export.writer import export_model
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import get_scheme
from speechquant.core.quantization.schemes.static import fold_weight_norm
from speechquant.core.quantization.tree import build_tree

from ..helpers import fixed_waves

POS_CONV = "encoder.wav2vec2.model.encoder.pos_conv_embed"


class NormedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(8, 8, 5, padding=2, groups=2), dim=2)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


def test_folding_gives_the_same_output_and_leaves_the_parametrized_conv_alone():
    torch.manual_seed(0)
    block = NormedConv().eval()
    original = block.conv
    copy_ = nn.Module()
    copy_._modules = {"conv": original, "act": block.act}
    x = torch.randn(2, 8, 30)
    expected = block(x)
    assert fold_weight_norm(copy_) == 1
    folded = copy_._modules["conv"]
    assert type(folded) is nn.Conv1d and not parametrize.is_parametrized(folded)
    assert torch.equal(folded(x), original(x))
    assert block.conv is original and parametrize.is_parametrized(original)
    assert torch.equal(block(x), expected)  # the parametrization still computes the weight
    assert fold_weight_norm(copy_) == 0


def test_the_replica_positional_conv_takes_static_and_the_float_model_is_unchanged(
    tiny_model, tmp_path
):
    tree = build_tree(tiny_model.mods)
    assert tree[POS_CONV].verdicts["static"].applies
    assert "static" in tree[POS_CONV].applicable()
    wave = fixed_waves(1, seed=4)[0]
    float_before = tiny_model.encode(wave)
    quantized = apply_plan(tiny_model, Plan({POS_CONV: "static"}), fixed_waves(2, seed=2))
    block = quantized.mods.get_submodule(POS_CONV)
    assert get_scheme("static").produced(block) is not None
    assert type(block.model.conv).__name__ == "Conv1d"
    assert type(block.model.conv).__module__.startswith("torch.ao.nn.quantized")
    original = tiny_model.mods.get_submodule(POS_CONV).conv
    assert parametrize.is_parametrized(original)
    assert torch.equal(tiny_model.encode(wave), float_before)
    out = quantized.encode(wave)
    relative = ((out - float_before).norm() / float_before.norm()).item()
    assert 0 < relative < 0.5
    reloaded = load_quantized(export_model(quantized, tmp_path / "export"))
    assert torch.equal(reloaded.encode(wave), out)
