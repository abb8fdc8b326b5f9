"""The core engine on the tiny replica: tree, presets, plans, schemes, non-mutation, errors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from speechquant.core.errors import CalibrationError, PlanError, SourceError
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.schemes import get_scheme, scheme_names
from speechquant.core.quantization.schemes.bf16 import Bf16Wrapper
from speechquant.core.quantization.schemes.static import StaticQuantWrapper
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree, format_tree
from speechquant.core.quantization.validation import validate_plan
from speechquant.core.sources import open_model

from ..helpers import fixed_waves
from .helpers import check_rules_agree_with_trying

W2V = "encoder.wav2vec2.model"


@pytest.fixture(scope="module")
def tree(tiny_model):
    return build_tree(tiny_model.mods)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.mods.state_dict().items()}


def test_replica_has_the_reference_module_paths(tree):
    for path in (
        f"{W2V}.feature_extractor",
        f"{W2V}.feature_projection",
        f"{W2V}.encoder.pos_conv_embed",
        f"{W2V}.encoder.layers",
        "encoder.enc",
        "encoder.ctc_lin",
    ):
        assert path in tree, path
    assert tree["encoder.enc"].class_name == "Sequential"
    assert [c.name for c in tree["encoder.enc"].children][:4] == [
        "linear1",
        "bn1",
        "activation",
        "drop",
    ]


def test_tree_reasons_match_the_reference_rules(tree):
    assert (
        tree[f"{W2V}.encoder.layers"].verdicts["static"].reason
        == "attention blocks static quantization"
    )
    assert (
        tree["encoder.enc"].verdicts["static"].reason
        == "BatchNorm after Linear blocks static quantization"
    )
    assert tree[f"{W2V}.encoder.pos_conv_embed"].verdicts["static"].applies  # weight norm folds
    assert (
        tree[f"{W2V}.feature_extractor"].verdicts["dynamic"].reason == "no Linear/LSTM/GRU inside"
    )
    assert tree[f"{W2V}.feature_extractor"].verdicts["static"].applies
    assert tree[f"{W2V}.feature_projection"].applicable() == [
        "none",
        "bf16",
        "dynamic",
        "static",
    ] or set(tree[f"{W2V}.feature_projection"].applicable()) == {
        "none",
        "bf16",
        "dynamic",
        "static",
    }


def test_tree_counts_parameters_and_bytes(tiny_model, tree):
    total = sum(p.numel() for p in tiny_model.mods.parameters())
    assert sum(child.total_params for child in tree.root.children) == total
    enc = tree["encoder.enc"]
    assert enc.total_params == sum(c.total_params for c in enc.children)
    assert enc.total_bytes >= enc.total_params * 4
    text = format_tree(tree, max_depth=2)
    assert "feature_extractor" not in text and "wav2vec2" in text
    json.dumps(tree.root.to_dict())


def test_tutorial_preset_matches_the_tutorial(tiny_model, tree):
    plan = make_preset("tutorial", tree)
    assert plan.entries == {
        f"{W2V}.feature_extractor": "static",
        f"{W2V}.feature_projection": "static",
        f"{W2V}.encoder.layers": "dynamic",
        "encoder.enc": "dynamic",
    }
    before = _state(tiny_model)
    quantized = apply_plan(tiny_model, plan, fixed_waves(3))
    mods = quantized.mods
    layer = mods.encoder.wav2vec2.model.encoder.layers[0]
    assert (
        type(layer.attention.q_proj).__name__ == "Linear"
        and "dynamic" in type(layer.attention.q_proj).__module__
    )
    assert "dynamic" in type(mods.encoder.enc.linear1.w).__module__
    fe = mods.encoder.wav2vec2.model.feature_extractor
    assert isinstance(fe, StaticQuantWrapper)
    assert type(fe.model.conv_layers[0].conv).__module__.startswith("torch.ao.nn.quantized")
    fp = mods.encoder.wav2vec2.model.feature_projection
    assert isinstance(fp, StaticQuantWrapper)
    assert type(fp.model.projection).__module__.startswith("torch.ao.nn.quantized")
    assert isinstance(mods.encoder.ctc_lin.w, nn.Linear)
    assert type(mods.encoder.ctc_lin.w) is nn.Linear
    assert mods.encoder.wav2vec2.model.encoder.pos_conv_embed is (
        tiny_model.mods.encoder.wav2vec2.model.encoder.pos_conv_embed
    )
    text = quantized.transcribe(fixed_waves(1, seconds=1.5, seed=3)[0])
    assert isinstance(text, str)
    after = _state(tiny_model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert type(tiny_model.mods.encoder.enc.linear1.w) is nn.Linear
    assert (
        type(tiny_model.mods.encoder.wav2vec2.model.feature_extractor).__name__
        == "Wav2Vec2FeatureEncoder"
    )


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_dynamic_scheme_dtypes(tiny_model, dtype):
    plan = Plan({"encoder.enc": "dynamic"}, QuantSettings(dynamic_dtype=dtype))
    quantized = apply_plan(tiny_model, plan)
    w = quantized.mods.encoder.enc.linear2.w
    expected = torch.qint8 if dtype == "qint8" else torch.float16
    assert w._packed_params.dtype == expected
    wave = fixed_waves(1, seed=5)[0]
    out_q = quantized.encode(wave)
    out_f = tiny_model.encode(wave)
    assert out_q.shape == out_f.shape
    assert not torch.equal(out_q, out_f)
    assert torch.allclose(out_q.exp().sum(-1), torch.ones_like(out_q[..., 0]), atol=1e-3)


def test_dynamic_target_types_are_configurable(tiny_model):
    plan = Plan({"encoder": "dynamic"}, QuantSettings(dynamic_targets=("LSTM",)))
    quantized = apply_plan(tiny_model, plan)
    assert type(quantized.mods.encoder.enc.linear1.w) is nn.Linear


@pytest.mark.parametrize("qconfig", ["tutorial", "per-channel", "histogram"])
def test_static_scheme_qconfigs(tiny_model, qconfig):
    plan = Plan({f"{W2V}.feature_projection": "static"}, QuantSettings(static_qconfig=qconfig))
    quantized = apply_plan(tiny_model, plan, fixed_waves(2))
    projection = quantized.mods.encoder.wav2vec2.model.feature_projection.model.projection
    per_channel = projection.weight().qscheme() == torch.per_channel_affine
    assert per_channel == (qconfig != "tutorial")
    wave = fixed_waves(1, seed=9)[0]
    out_q, out_f = quantized.encode(wave), tiny_model.encode(wave)
    assert (out_q - out_f).abs().max() > 0
    assert torch.isfinite(out_q).all()


def test_bf16_scheme(tiny_model):
    plan = make_preset("bf16", build_tree(tiny_model.mods))
    quantized = apply_plan(tiny_model, plan)
    model = quantized.mods.encoder.wav2vec2.model
    assert isinstance(model, Bf16Wrapper)
    assert model.module.encoder.layers[0].attention.q_proj.weight.dtype == torch.bfloat16
    wave = fixed_waves(1, seed=4)[0]
    out_q, out_f = quantized.encode(wave), tiny_model.encode(wave)
    assert out_q.dtype == torch.float32
    assert (out_q - out_f).abs().max() > 0
    assert (out_q - out_f).abs().max() < 0.5
    assert tiny_model.mods.encoder.wav2vec2.model.encoder.layers[
        0
    ].attention.q_proj.weight.dtype == (torch.float32)


def test_all_dynamic_and_none_presets(tiny_model, tree):
    plan = make_preset("all-dynamic", tree)
    assert plan.entries == {"encoder": "dynamic"}
    quantized = apply_plan(tiny_model, plan)
    assert "dynamic" in type(quantized.mods.encoder.ctc_lin.w).__module__
    none = make_preset("none", tree)
    assert none.entries == {} and none.is_float()
    assert apply_plan(tiny_model, none).mods.encoder is tiny_model.mods.encoder


def test_none_excludes_a_subtree(tiny_model):
    plan = Plan({"encoder": "dynamic", "encoder.ctc_lin": "none"})
    quantized = apply_plan(tiny_model, plan)
    assert type(quantized.mods.encoder.ctc_lin.w) is nn.Linear
    assert "dynamic" in type(quantized.mods.encoder.enc.linear1.w).__module__


def test_plan_json_round_trip(tmp_path, tree):
    plan = make_preset("tutorial", tree, QuantSettings(engine="onednn", static_qconfig="histogram"))
    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = Plan.load(path)
    assert loaded == plan
    assert json.loads(path.read_text())["version"] == 1


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"encoder.nope": "dynamic"}, "does not have"),
        ({f"{W2V}.encoder.layers": "static"}, "attention blocks static quantization"),
        ({"encoder.enc": "static"}, "BatchNorm after Linear"),
        ({f"{W2V}.feature_extractor": "dynamic"}, "no Linear/LSTM/GRU inside"),
        (
            {
                f"{W2V}.feature_projection": "static",
                f"{W2V}.feature_projection.projection": "static",
            },
            "sits inside the static subtree",
        ),
    ],
)
def test_plan_validation_errors(tree, entries, message):
    with pytest.raises(PlanError, match=message):
        validate_plan(Plan(entries), tree)


def test_plan_file_errors(tmp_path):
    with pytest.raises(PlanError, match="does not exist"):
        Plan.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(PlanError, match="not valid JSON"):
        Plan.load(bad)
    bad.write_text(json.dumps({"format": "speechquant-plan", "version": 99, "entries": {}}))
    with pytest.raises(PlanError, match="version 99"):
        Plan.load(bad)
    bad.write_text(
        json.dumps({"format": "speechquant-plan", "version": 1, "entries": {"a": "magic"}})
    )
    with pytest.raises(PlanError, match="unknown scheme 'magic'"):
        Plan.load(bad)
    with pytest.raises(PlanError, match="unknown quantized engine"):
        QuantSettings(engine="tpu")


def test_static_without_calibration_is_an_error(tiny_model, tree):
    with pytest.raises(CalibrationError, match="calibration"):
        apply_plan(tiny_model, make_preset("tutorial", tree), calibration=None)


def test_engines_are_recorded_and_validated(tiny_model):
    for engine in ("x86", "onednn", "fbgemm", "qnnpack"):
        plan = Plan({"encoder.enc": "dynamic"}, QuantSettings(engine=engine))
        apply_plan(tiny_model, plan)
        assert torch.backends.quantized.engine == engine
    torch.backends.quantized.engine = "x86"


def test_rules_agree_with_trying(tiny_model, tree):
    """Where a rule says a scheme applies, applying it works; where it says it blocks, it fails."""
    check_rules_agree_with_trying(
        tiny_model, tree.nodes(), lambda variant, wave: variant.encode(wave)
    )


def test_scheme_registry():
    assert scheme_names()[0] == "none"
    assert {"none", "dynamic", "static", "bf16"} <= set(scheme_names())
    assert get_scheme("static").needs_calibration
    with pytest.raises(PlanError, match="unknown scheme"):
        get_scheme("int3")


def test_source_errors(tmp_path, monkeypatch):
    with pytest.raises(SourceError, match="does not exist"):
        open_model(str(tmp_path / "no-such-model"))
    with pytest.raises(SourceError, match="no hyperparams.yaml"):
        open_model(str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError, match="offline"):
        open_model("speechbrain/asr-wav2vec2-commonvoice-14-en")
    (tmp_path / "hyperparams.yaml").write_text("modules:\n  classifier: !new:torch.nn.Linear\n")
    with pytest.raises(SourceError, match="unsupported interface"):
        open_model(str(tmp_path))
    with pytest.raises(SourceError, match="unknown built-in"):
        open_model("replica:wav2vec2-huge")


def test_clone_structure_shares_storage_and_protects_the_original(tiny_model):
    from speechquant.core.quantization.apply import clone_structure

    original = tiny_model.mods.encoder.enc
    clone = clone_structure(original)
    assert clone is not original and clone.linear1.w is not original.linear1.w
    assert clone.linear1.w.weight.data_ptr() == original.linear1.w.weight.data_ptr()
    clone.to(torch.bfloat16)
    clone.linear2.w = nn.Identity()
    assert original.linear1.w.weight.dtype == torch.float32
    assert isinstance(original.linear2.w, nn.Linear)
    assert original.bn1.norm.running_mean.dtype == torch.float32


def test_a_variant_has_hook_registries_of_its_own():
    """Containers a plan copies must not share hooks with the float model's containers."""
    from ..toy_models import toy_decoder_inputs, toy_whisper

    model = toy_whisper()
    plan = Plan(entries={"whisper.model.decoder.layers.0.fc1": "dynamic"})
    variant = apply_plan(model, plan)
    ours, theirs = variant.mods["whisper"].model.decoder, model.mods["whisper"].model.decoder
    assert ours is not theirs
    calls: list[str] = []
    ours.register_forward_pre_hook(lambda m, a, k: calls.append("pre"), with_kwargs=True)
    ours.register_forward_hook(lambda m, a, out: calls.append("post"))
    theirs.register_forward_hook(lambda m, a, out: calls.append("float"))
    states, ids = toy_decoder_inputs()
    with torch.no_grad():
        variant.mods["whisper"].forward_decoder(states, ids)
        assert calls == ["pre", "post"]
        calls.clear()
        model.mods["whisper"].forward_decoder(states, ids)
    assert calls == ["float"]
