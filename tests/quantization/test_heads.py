"""The tied output projection of Whisper as its own quantization target (quantization.heads)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from speechquant.core.data.datasets import iter_loaded, open_dataset
from speechquant.core.errors import PlanError
from speechquant.core.evaluation.bench import model_bytes
from speechquant.core.export.loader import load_quantized
from speechquant.core.export.writer import export_model
from speechquant.core.quantization.apply import apply_plan, clone_structure
from speechquant.core.quantization.heads import (
    TiedHeadEmbedding,
    _whisper_forward_decoder,
    bind_heads,
    tied_head_paths,
)
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.tree import build_tree
from speechquant.core.quantization.validation import validate_plan
from speechquant.core.search.units import default_units

from ..helpers import fixed_waves
from ..toy_models import TOY_HEAD, toy_decoder_inputs, toy_whisper

HEAD = "whisper.model.decoder.embed_tokens"


@pytest.fixture(scope="module")
def toy():
    return toy_whisper()


def test_toy_head_is_found_and_takes_only_the_schemes_that_support_it(toy):
    assert tied_head_paths(toy.mods) == {TOY_HEAD: "whisper"}
    node = build_tree(toy.mods)[TOY_HEAD]
    assert node.is_tied_head
    assert {name for name, v in node.verdicts.items() if v.applies} == {"none", "dynamic", "bf16"}
    assert node.verdicts["static"].reason == "tied output projection: use bf16 or dynamic"
    with pytest.raises(PlanError, match="tied output projection: use bf16 or dynamic"):
        validate_plan(Plan(entries={TOY_HEAD: "static"}), build_tree(toy.mods))


@pytest.mark.parametrize(("scheme", "stored"), [("dynamic", torch.int8), ("bf16", torch.bfloat16)])
def test_toy_head_quantized_by_its_own_entry_only(toy, scheme, stored):
    inherited = apply_plan(toy, Plan(entries={"whisper.model.decoder": "dynamic"}))
    assert isinstance(inherited.mods["whisper"].model.decoder.embed_tokens, nn.Embedding)
    variant = apply_plan(toy, Plan(entries={TOY_HEAD: scheme}))
    head = variant.mods["whisper"].model.decoder.embed_tokens
    assert isinstance(head, TiedHeadEmbedding) and head.scheme == scheme
    assert head.rows.dtype == stored
    assert "forward_decoder" in vars(variant.mods["whisper"])
    assert "forward_decoder" not in vars(toy.mods["whisper"])
    assert isinstance(toy.mods["whisper"].model.decoder.embed_tokens, nn.Embedding)

    states, ids = toy_decoder_inputs()
    weight = toy.mods["whisper"].model.decoder.embed_tokens.weight
    with torch.no_grad():
        want, _, _ = toy.mods["whisper"].forward_decoder(states, ids)
        got, _, _ = variant.mods["whisper"].forward_decoder(states, ids)
        rows = head(ids)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0) > 0.99
    torch.testing.assert_close(rows, weight[ids], atol=0.02, rtol=0.02)


def test_toy_rebound_step_equals_speechbrain_with_an_exact_projection(toy):
    clone = clone_structure(toy.mods["whisper"])
    embedding = clone.model.decoder.embed_tokens
    embedding.project = lambda states: states @ torch.transpose(embedding.weight, 0, 1)
    states, ids = toy_decoder_inputs(seed=3)
    with torch.no_grad():
        want, _, _ = toy.mods["whisper"].forward_decoder(states, ids)
        got, _, _ = _whisper_forward_decoder(clone, states, ids)
    assert torch.equal(want, got)
    assert bind_heads(clone) == 0  # a float embedding is never rebound


def test_toy_dynamic_head_state_round_trips(toy):
    variant = apply_plan(toy, Plan(entries={TOY_HEAD: "dynamic"}))
    head = variant.mods["whisper"].model.decoder.embed_tokens
    assert not any(
        key.startswith("rows") or key.startswith("row_scales") for key in head.state_dict()
    )
    again = apply_plan(toy_whisper(seed=1), Plan(entries={TOY_HEAD: "dynamic"}))
    other = again.mods["whisper"].model.decoder.embed_tokens
    other.load_state_dict(head.state_dict())
    ids = torch.arange(10).unsqueeze(0)
    assert torch.equal(other(ids), head(ids))


def _decoder_inputs(model) -> tuple[torch.Tensor, torch.Tensor]:
    whisper = model.mods["whisper"]
    with torch.no_grad():
        states = model.asr.encode_batch(fixed_waves(1, 1.0, seed=4)[0].unsqueeze(0), torch.ones(1))
    ids = torch.tensor([[whisper.model.config.decoder_start_token_id, 50362, 440, 1310]])
    return states, ids


@pytest.mark.slow
def test_whisper_head_is_found_and_takes_dynamic_or_bf16_only(demo_whisper):
    assert tied_head_paths(demo_whisper.mods) == {HEAD: "whisper"}
    verdicts = build_tree(demo_whisper.mods)[HEAD].verdicts
    assert verdicts["dynamic"].applies and verdicts["bf16"].applies
    assert not verdicts["static"].applies and "use bf16 or dynamic" in verdicts["static"].reason
    with pytest.raises(PlanError, match="tied output projection"):
        validate_plan(Plan(entries={HEAD: "static"}), build_tree(demo_whisper.mods))
    units = {u.name: u for u in default_units(demo_whisper.mods)}
    assert units["decoder.embed_tokens"].paths == (HEAD,)
    assert set(units["decoder.embed_tokens"].schemes) == {"dynamic", "bf16"}


@pytest.mark.slow
def test_rebound_decoder_step_matches_speechbrain_exactly(demo_whisper):
    """With an exact float projection the rebound step must equal SpeechBrain's own."""
    original = demo_whisper.mods["whisper"]
    clone = clone_structure(original)
    embedding = clone.model.decoder.embed_tokens
    embedding.project = lambda states: states @ torch.transpose(embedding.weight, 0, 1)
    states, ids = _decoder_inputs(demo_whisper)
    with torch.no_grad():
        want_logits, _, want_cache = original.forward_decoder(states, ids)
        got_logits, _, got_cache = _whisper_forward_decoder(clone, states, ids)
        assert torch.equal(want_logits, got_logits)
        longer = torch.cat([ids, want_logits[:, -1:].argmax(-1)], dim=1)
        want_next, _, _ = original.forward_decoder(states, longer, past_key_values=want_cache)
        got_next, _, _ = _whisper_forward_decoder(clone, states, longer, past_key_values=got_cache)
    assert torch.equal(want_next, got_next)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["dynamic", "bf16"])
def test_quantized_head_is_close_smaller_and_leaves_the_float_model(demo_whisper, scheme):
    float_whisper = demo_whisper.mods["whisper"]
    base = apply_plan(demo_whisper, Plan(entries={"whisper": "dynamic"}))
    variant = apply_plan(demo_whisper, Plan(entries={"whisper": "dynamic", HEAD: scheme}))
    head = variant.mods["whisper"].model.decoder.embed_tokens
    assert isinstance(head, TiedHeadEmbedding) and head.scheme == scheme
    assert variant.mods["decoder"].model is variant.mods["whisper"]
    assert "forward_decoder" in vars(variant.mods["whisper"])
    assert isinstance(float_whisper.model.decoder.embed_tokens, nn.Embedding)
    assert "forward_decoder" not in vars(float_whisper)
    assert isinstance(base.mods["whisper"].model.decoder.embed_tokens, nn.Embedding)
    assert model_bytes(variant.mods) < model_bytes(base.mods) - 30e6

    states, ids = _decoder_inputs(demo_whisper)
    with torch.no_grad():
        want, _, _ = base.mods["whisper"].forward_decoder(states, ids)
        got, _, _ = variant.mods["whisper"].forward_decoder(states, ids)
    assert got.dtype == torch.float32 and got.shape == want.shape
    cosine = nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0)
    print(f"{scheme} head against a float head: cosine {cosine:.5f}")
    assert cosine > 0.99
    # The head may flip a position's top token only where the float head's lead over its
    # runner-up is within twice the head's largest logit error there (CPU kernels differ).
    error = (got - want).abs().amax(-1)
    top2 = want.topk(2, dim=-1).values
    decisive = (top2[..., 0] - top2[..., 1]) > 2 * error
    assert decisive.any(), "no position's top token is clear enough to check"
    assert torch.equal(got.argmax(-1)[decisive], want.argmax(-1)[decisive])


@pytest.mark.slow
def test_head_plan_transcribes_real_speech_like_float(demo_whisper, speech_dir):
    data = open_dataset(speech_dir / "manifest.csv", limit=6)
    variant = apply_plan(demo_whisper, Plan(entries={"whisper": "dynamic", HEAD: "dynamic"}))
    same = sum(
        variant.transcribe(wav) == demo_whisper.transcribe(wav)
        for _, wav in iter_loaded(data, demo_whisper.sample_rate)
    )
    assert same >= 4


@pytest.mark.slow
def test_head_export_round_trip_is_bitwise(demo_whisper, tmp_path):
    plan = Plan(entries={"whisper": "dynamic", HEAD: "dynamic"})
    variant = apply_plan(demo_whisper, plan)
    loaded = load_quantized(export_model(variant, tmp_path / "export"))
    assert isinstance(loaded.mods["whisper"].model.decoder.embed_tokens, TiedHeadEmbedding)
    wav = fixed_waves(1, 1.0, seed=5)[0]
    assert torch.equal(variant.encode(wav), loaded.encode(wav))
    assert variant.transcribe(wav) == loaded.transcribe(wav)
    states, ids = _decoder_inputs(demo_whisper)
    with torch.no_grad():
        want, _, _ = variant.mods["whisper"].forward_decoder(states, ids)
        got, _, _ = loaded.mods["whisper"].forward_decoder(states, ids)
    assert torch.equal(want, got)
