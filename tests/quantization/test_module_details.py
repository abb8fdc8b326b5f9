"""What a module is once quantized (quantization.module_details): never a float look-alike."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from speechquant.core.quantization.apply import apply_plan, set_engine
from speechquant.core.quantization.module_details import describe_module
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.schemes import get_scheme
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree, format_tree

from ..helpers import fixed_waves

W2V = "encoder.wav2vec2.model"


def _static_conv() -> nn.Module:
    torch.manual_seed(0)
    set_engine(QuantSettings().engine)
    scheme = get_scheme("static")
    settings = QuantSettings(static_qconfig="per-channel")
    wrapped = scheme.prepare(nn.Sequential(nn.Conv1d(2, 6, 3), nn.ReLU()), settings)
    with torch.no_grad():
        for _ in range(3):
            wrapped(torch.randn(1, 2, 50))
    return scheme.finalize(wrapped, settings)


def test_a_float_linear_is_its_class_with_float32_weights():
    details = describe_module(nn.Linear(8, 4), "lin")
    assert details.kind == "Linear" and details.scheme is None and details.packed_bytes == 0
    weight = details.weight
    assert weight is not None and weight.dtype == "float32" and weight.shape == (4, 8)
    assert weight.bytes == 4 * 8 * 4 and weight.quant is None and not weight.packed


@pytest.mark.parametrize(
    ("dtype", "stored", "width"), [("qint8", "qint8", 1), ("float16", "float16", 2)]
)
def test_a_dynamic_linear_shows_its_packed_weight(dtype, stored, width):
    scheme = get_scheme("dynamic")
    module = scheme.prepare(nn.Linear(8, 4), QuantSettings(dynamic_dtype=dtype))
    details = describe_module(module, "lin")
    label = "int8" if dtype == "qint8" else "float16"
    assert details.kind == f"dynamic {label} Linear" and details.scheme == "dynamic"
    weight = details.weight
    assert weight is not None and weight.packed and weight.dtype == stored
    assert weight.shape == (4, 8) and weight.bytes == 4 * 8 * width
    assert details.packed_bytes == 4 * 8 * width + 4 * 4  # the bias stays float32
    if dtype == "qint8":
        assert weight.quant is not None and weight.quant.scale is not None
        assert weight.quant.scale > 0 and "scale" in weight.text()
    assert any("on the fly" in line or "float16" in line for line in details.lines())


def test_a_dynamic_lstm_lists_every_packed_gate_matrix():
    module = get_scheme("dynamic").prepare(nn.LSTM(5, 3), QuantSettings())
    details = describe_module(module)
    assert details.kind == "dynamic int8 LSTM"
    names = {t.name for t in details.tensors if t.packed}
    assert {"weight_ih_l0", "weight_hh_l0"} <= names
    assert details.weight is not None and details.weight.shape in ((12, 5), (12, 3))
    assert build_tree(nn.ModuleDict({"rnn": module}))["rnn"].total_bytes >= 12 * 8


def test_a_static_conv_shows_weights_and_calibrated_output_params():
    wrapper = _static_conv()
    tree = build_tree(nn.ModuleDict({"block": wrapper}))
    kinds = {node.path: node.kind for node in tree.nodes()}
    assert kinds["block"] == "static int8 block"
    conv_path = next(p for p, k in kinds.items() if k == "static int8 Conv1d")
    quant_path = next(p for p, k in kinds.items() if k.startswith("static int8 input quantizer"))
    conv = tree[conv_path].details
    assert conv is not None and conv.scheme == "static"
    weight = conv.weight
    assert weight is not None and weight.dtype == "qint8" and weight.shape == (6, 2, 3)
    assert weight.quant is not None and weight.quant.channels == 6  # per-channel observer
    assert conv.output is not None and conv.output.scale is not None and conv.output.scale > 0
    assert tree[conv_path].total_bytes >= 6 * 2 * 3  # packed conv weights count in the size
    stub = tree[quant_path].details
    assert stub is not None and stub.output is not None and stub.output.dtype == "quint8"
    assert "zero point" in stub.output.text()


def test_bf16_modules_are_named_bf16():
    wrapper = get_scheme("bf16").prepare(nn.Sequential(nn.Linear(4, 4)), QuantSettings())
    tree = build_tree(nn.ModuleDict({"block": wrapper}))
    kinds = {node.kind for node in tree.nodes()}
    assert {"bf16 block", "bf16 Linear"} <= kinds
    linear = next(n for n in tree.nodes() if n.kind == "bf16 Linear").details
    assert linear is not None and linear.weight is not None and linear.weight.dtype == "bfloat16"


def test_the_tiny_replica_quantized_never_looks_float(tiny_model):
    float_tree = build_tree(tiny_model.mods)
    assert all(node.kind == node.class_name for node in float_tree.nodes())
    plan = make_preset("tutorial", float_tree)
    quantized = apply_plan(tiny_model, plan, fixed_waves(1, 0.5))
    tree = build_tree(quantized.mods)
    dynamic = [n for n in tree.nodes() if n.kind == "dynamic int8 Linear"]
    assert dynamic
    for node in dynamic:
        weight = node.details.weight
        float_weight = float_tree[node.path].details.weight
        assert weight.shape == float_weight.shape and weight.dtype == "qint8"
    assert any(n.kind.startswith("static int8 Conv") for n in tree.nodes())
    assert "dynamic int8 Linear" in format_tree(tree)
    assert tree.root.to_dict()["children"][0]["kind"]
