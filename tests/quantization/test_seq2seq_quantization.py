"""Quantizing the encoder-decoder replicas: RNN and conformer rules, presets, scorers, trials."""

from __future__ import annotations

import pytest
import torch
import torch.ao.nn.quantized.dynamic as nnqd
from torch import nn

from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import PRESETS, make_preset
from speechquant.core.quantization.schemes.bf16 import Bf16Wrapper
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree

from ..helpers import fixed_waves
from .helpers import check_rules_agree_with_trying

REPLICAS = ["crdnn_tiny", "conformer_tiny"]


def _tree(request, fixture):
    model = request.getfixturevalue(fixture)
    return model, build_tree(model.mods)


def test_recurrent_layers_take_dynamic_but_block_static(crdnn_tiny):
    tree = build_tree(crdnn_tiny.mods)
    for path in ("encoder.model.RNN", "lm_model.rnn", "decoder.dec.rnn"):
        assert tree[path].verdicts["dynamic"].applies, path
        static = tree[path].verdicts["static"]
        assert not static.applies and static.blocking, path
        assert "recurrent" in static.reason or "attention" in static.reason, path
    assert "recurrent" in tree["encoder.model.RNN"].verdicts["static"].reason


def test_conformer_attention_blocks_static(conformer_tiny):
    tree = build_tree(conformer_tiny.mods)
    layer = tree["transformer.encoder.layers.0"]
    assert layer.verdicts["static"].reason == "attention blocks static quantization"
    assert layer.verdicts["dynamic"].applies
    mha = tree["transformer.encoder.layers.0.mha_layer"]
    assert not mha.verdicts["static"].applies and mha.verdicts["static"].blocking
    assert "RelPosMHAXL" in mha.verdicts["bf16"].reason and mha.verdicts["bf16"].blocking
    assert tree["transformer.encoder.layers.0.ffn_module1"].verdicts["bf16"].applies
    conv = tree["transformer.encoder.layers.0.convolution_module"].verdicts["static"]
    assert conv.blocking and conv.reason == "GLU has no quantized kernel"


def test_location_attention_blocks_bf16(crdnn_tiny):
    tree = build_tree(crdnn_tiny.mods)
    verdict = tree["decoder.dec"].verdicts["bf16"]
    assert verdict.blocking and "location-aware attention" in verdict.reason
    assert tree["decoder.dec.rnn"].verdicts["bf16"].applies


def test_dynamic_lstm_and_gru_become_quantized_modules(crdnn_tiny):
    wav = fixed_waves(1, 1.0, seed=3)[0]
    plan = Plan({"encoder.model.RNN": "dynamic", "decoder.dec": "dynamic", "lm_model": "dynamic"})
    variant = apply_plan(crdnn_tiny, plan)
    mods = variant.mods
    assert type(mods.encoder.model.RNN.rnn) is nnqd.LSTM
    assert type(mods.lm_model.rnn.rnn) is nnqd.LSTM
    assert type(mods.decoder.dec.rnn.rnn_cells[0]) is nnqd.GRUCell
    assert type(mods.decoder.dec.attn.mlp_dec) is nnqd.Linear
    assert type(crdnn_tiny.mods.encoder.model.RNN.rnn) is nn.LSTM
    assert isinstance(variant.transcribe(wav), str)
    assert not torch.equal(variant.encode(wav), crdnn_tiny.encode(wav))


@pytest.mark.parametrize(("dtype", "weight_bytes"), [("qint8", 1), ("float16", 2)])
def test_quantized_lstm_and_gru_bytes_count_their_packed_weights(crdnn_tiny, dtype, weight_bytes):
    plan = Plan(
        {"encoder.model.RNN": "dynamic", "decoder.dec.rnn": "dynamic"},
        QuantSettings(dynamic_dtype=dtype),
    )
    tree = build_tree(apply_plan(crdnn_tiny, plan).mods)
    for path in ("encoder.model.RNN.rnn", "decoder.dec.rnn.rnn_cells.0"):
        float_rnn = crdnn_tiny.mods.get_submodule(path)
        weights = sum(p.numel() for n, p in float_rnn.named_parameters() if n.startswith("weight"))
        biases = sum(p.numel() for n, p in float_rnn.named_parameters() if n.startswith("bias"))
        assert tree[path].total_bytes == weights * weight_bytes + biases * 4


def test_float16_dynamic_lstm(crdnn_tiny):
    wav = fixed_waves(1, 1.0, seed=3)[0]
    plan = Plan({"encoder.model.RNN": "dynamic"}, QuantSettings(dynamic_dtype="float16"))
    variant = apply_plan(crdnn_tiny, plan)
    assert type(variant.mods.encoder.model.RNN.rnn) is nnqd.LSTM
    assert torch.allclose(variant.encode(wav), crdnn_tiny.encode(wav), atol=1e-2)


@pytest.mark.parametrize("fixture", REPLICAS)
def test_the_beam_search_scores_with_the_quantized_lm(fixture, request):
    model, _ = _tree(request, fixture)
    variant = apply_plan(model, Plan({"lm_model": "dynamic"}))
    scorers = variant.mods.decoder.scorer.full_scorers
    lm = next(s.lm for s in scorers.values() if hasattr(s, "lm"))
    assert lm is variant.mods.lm_model and lm is not model.mods.lm_model
    float_lm = next(
        s.lm for s in model.mods.decoder.scorer.full_scorers.values() if hasattr(s, "lm")
    )
    assert float_lm is model.mods.lm_model
    assert any(isinstance(m, (nnqd.Linear, nnqd.LSTM)) for m in lm.modules())


def test_the_ctc_scorer_follows_a_wrapped_ctc_head(conformer_tiny):
    variant = apply_plan(conformer_tiny, Plan({"asr_model.3": "bf16"}))
    ctc = variant.mods.decoder.scorer.full_scorers["ctc"].ctc_fc
    assert isinstance(ctc, Bf16Wrapper) and ctc is variant.mods.asr_model[3]
    assert (
        conformer_tiny.mods.decoder.scorer.full_scorers["ctc"].ctc_fc
        is conformer_tiny.mods.asr_model[3]
    )
    assert isinstance(variant.transcribe(fixed_waves(1, 1.0, seed=2)[0]), str)


@pytest.mark.parametrize("fixture", REPLICAS)
@pytest.mark.parametrize("preset", [name for name in PRESETS if name != "auto"])
def test_presets_apply_and_transcribe(fixture, preset, request):
    model, tree = _tree(request, fixture)
    plan = make_preset(preset, tree)
    if preset != "none":
        assert plan.entries
    waves = fixed_waves(2, 0.5, seed=6)
    variant = apply_plan(model, plan, waves)
    assert isinstance(variant.transcribe(waves[0]), str)


@pytest.mark.parametrize("fixture", REPLICAS)
def test_rules_agree_with_trying(fixture, request):
    """Where a rule says a scheme applies, transcribing works; where it blocks, it fails."""
    model, tree = _tree(request, fixture)
    nodes = [  # not those holding modules first reached elsewhere (asr_model, the searchers)
        node
        for node in tree.nodes()
        if len(list(node.walk())) == len(list(model.mods.get_submodule(node.path).modules()))
    ]
    check_rules_agree_with_trying(model, nodes, lambda variant, wave: variant.transcribe(wave))
