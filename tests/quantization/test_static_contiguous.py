"""Float layers inside a static block run on dense quantized input, with unchanged values."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.ao.quantization import convert

from speechquant.core.export.loader import load_quantized
from speechquant.core.export.writer import export_model
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import get_scheme
from speechquant.core.quantization.schemes.static import dense_order, is_elementwise
from speechquant.core.quantization.settings import QuantSettings

from ..helpers import fixed_waves

W2V = "encoder.wav2vec2.model"


class Layout(nn.Module):
    """A float leaf that is not element-wise: it reads its input's memory layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ConvNormAct(nn.Module):
    """Conv over time, LayerNorm over channels on the transposed view, then GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 16, 3)
        self.norm = nn.LayerNorm(16)
        self.act = nn.GELU()
        self.layout = Layout()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x).transpose(-2, -1)).transpose(-2, -1)
        return self.act(x), self.layout(x)


def record_inputs(module: nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    module.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    return seen


def test_a_float_activation_in_a_static_block_sees_contiguous_input():
    torch.manual_seed(0)
    scheme, settings = get_scheme("static"), QuantSettings()
    prepared = scheme.prepare(ConvNormAct().eval(), settings)
    for _ in range(3):
        prepared(torch.randn(2, 8, 40))
    plain = convert(copy.deepcopy(prepared))
    block = scheme.finalize(prepared, settings)
    x = torch.randn(2, 8, 40)
    seen, seen_plain = record_inputs(block.model.act), record_inputs(plain.model.act)
    seen_layout = record_inputs(block.model.layout)
    (out, _), (out_plain, _) = block(x), plain(x)
    assert seen[0].is_quantized and seen[0].is_contiguous()
    assert seen_plain[0].is_quantized and not seen_plain[0].is_contiguous()
    assert seen[0].shape == (2, 38, 16), "the activation runs on the dense order, not a copy"
    assert seen_layout[0].is_contiguous() and seen_layout[0].shape == (2, 16, 38)
    assert torch.equal(out, out_plain) and out.stride() == out_plain.stride()


def test_dense_order_finds_permutations_and_refuses_gaps():
    x = torch.zeros(2, 3, 5)
    assert dense_order(x.transpose(-2, -1)) == [0, 2, 1]
    assert dense_order(x.permute(2, 0, 1)) == [1, 2, 0]
    assert dense_order(x[..., ::2]) is None
    assert is_elementwise(nn.GELU()) and not is_elementwise(nn.LayerNorm(3))


def test_the_replica_front_end_and_its_export_hook_the_activations(tiny_model, tmp_path):
    plan = Plan({f"{W2V}.feature_extractor": "static"})
    quantized = apply_plan(tiny_model, plan, fixed_waves(2))
    folder = export_model(quantized, tmp_path / "export")
    reloaded = load_quantized(folder)
    wave = fixed_waves(1, seed=4)[0]
    for model in (quantized, reloaded):
        layers = model.mods.get_submodule(f"{W2V}.feature_extractor").model.conv_layers
        seen = record_inputs(layers[0].activation)
        model.encode(wave)
        assert seen[0].is_quantized and seen[0].is_contiguous()
    assert torch.equal(quantized.encode(wave), reloaded.encode(wave))
