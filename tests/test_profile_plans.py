"""benchmarks/profile_plans.py's pieces: the stage probes and the Whisper variants it times."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

PROFILING = Path(__file__).resolve().parent.parent / "benchmarks" / "profiling"
sys.path.insert(0, str(PROFILING))

from candidates import (  # noqa: E402
    InferenceModeModel,
    captured_step,
    decoder_threads,
    lean_suppression,
)
from stage_clock import breakdown, instrumented  # noqa: E402

from speechquant.core.data.datasets import iter_loaded, open_dataset  # noqa: E402
from speechquant.core.quantization.apply import apply_plan  # noqa: E402
from speechquant.core.quantization.plan import Plan  # noqa: E402

#: A plan that changes one decoder layer only: the variant gets its own searcher and Whisper.
ONE_LAYER = Plan(entries={"whisper.model.decoder.layers.0.fc1": "dynamic"}, name="one layer")
#: One int8 decoder layer and the int8 tied head, which the captured step needs.
TIED_HEAD = Plan(
    entries={
        "whisper.model.decoder.layers.0.fc1": "dynamic",
        "whisper.model.decoder.embed_tokens": "dynamic",
    },
    name="tied head",
)


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.mods.modules())


def _profiled(model, wav):
    with instrumented(model) as found:
        begin = time.perf_counter()
        text = model.transcribe(wav)
        found.wall = time.perf_counter() - begin
    return text, found


@pytest.fixture(scope="module")
def short_speech(speech_dir):
    dataset = open_dataset(speech_dir / "manifest.csv")
    dataset.utterances = [u for u in dataset.utterances if u.id == "LJ001-0002"]
    return next(wav for _, wav in iter_loaded(dataset, 16000))


def test_ctc_stages_are_timed_and_probes_leave_no_trace(tiny_model) -> None:
    wav = 0.1 * torch.randn(24000, generator=torch.Generator().manual_seed(0))
    hooks = _hook_count(tiny_model)
    expected = tiny_model.transcribe(wav)
    text, found = _profiled(tiny_model, wav)
    assert text == expected
    assert _hook_count(tiny_model) == hooks
    rows = {r.label: r for r in breakdown(found)}
    for stage in ("conv front end", "feature projection", "transformer encoder", "ctc_lin"):
        assert rows[stage].seconds > 0, stage
    assert rows["positional conv"].part_of == "transformer encoder"
    assert rows["positional conv"].seconds < rows["transformer encoder"].seconds
    top = sum(r.seconds for r in rows.values() if r.part_of is None)
    assert top == pytest.approx(found.wall)
    assert rows["rest (normalisation, CTC greedy, tokenizer, glue)"].seconds > 0


@pytest.mark.slow
@pytest.mark.realdata
def test_whisper_steps_are_counted_and_use_the_key_value_cache(demo_whisper, short_speech):
    whisper, searcher = demo_whisper.mods["whisper"], demo_whisper.mods["decoder"]
    hooks = _hook_count(demo_whisper)
    expected = demo_whisper.transcribe(short_speech)
    with torch.no_grad():
        _, tokens = demo_whisper.asr.transcribe_batch(short_speech.unsqueeze(0), torch.ones(1))
    text, found = _profiled(demo_whisper, short_speech)
    assert text == expected
    assert len(found.steps) == len(tokens[0]) + 1  # every token, then the end of text
    assert found.steps[0].tokens_in == searcher.sample_begin
    assert {s.tokens_in for s in found.steps[1:]} == {1}
    rows = {r.label: r for r in breakdown(found)}
    for stage in ("features (pad to 30 s, log-mel)", "encoder forward", "decoder layers"):
        assert rows[stage].seconds > 0, stage
    assert rows["logits head"].seconds > 0
    assert (
        rows["decoder layers"].seconds + rows["logits head"].seconds < rows["decoder steps"].seconds
    )
    assert _hook_count(demo_whisper) == hooks
    for owner, name in (
        (whisper, "_get_mel"),
        (whisper, "forward_decoder"),
        (searcher, "forward_step"),
    ):
        assert name not in vars(owner), name


@pytest.mark.slow
@pytest.mark.realdata
def test_lean_suppression_gives_speechbrains_logits(demo_whisper, short_speech):
    variant = lean_suppression(apply_plan(demo_whisper, ONE_LAYER), demo_whisper)
    reference = apply_plan(demo_whisper, ONE_LAYER)
    searcher = variant.mods["decoder"]
    assert "forward_step" in vars(searcher)
    assert "forward_step" not in vars(demo_whisper.mods["decoder"])
    with torch.no_grad():
        states = variant.asr.encode_batch(short_speech.unsqueeze(0), torch.ones(1))
        memory = searcher.reset_mem(1, states.device)
        bos = torch.full((1,), searcher.bos_index, dtype=torch.long)
        want = type(searcher).forward_step(searcher, bos, memory, states, None)
        searcher.kv_cache = None
        got = searcher.forward_step(bos, memory, states, None)
    assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])
    assert torch.isinf(got[0][0, searcher.eos_index])  # the first step suppresses the end token
    assert variant.transcribe(short_speech) == reference.transcribe(short_speech)


@pytest.mark.slow
@pytest.mark.realdata
def test_thread_and_inference_mode_variants_change_only_their_own_search(
    demo_whisper, short_speech
):
    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("needs at least 2 torch threads to see the search run at 1")
    seen: list[tuple[int, bool]] = []

    def record(module, args, kwargs):
        seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled()))

    one_thread = decoder_threads(apply_plan(demo_whisper, ONE_LAYER), demo_whisper, 1)
    inference = InferenceModeModel.of(apply_plan(demo_whisper, ONE_LAYER))
    expected = demo_whisper.transcribe(short_speech)
    for model, want in ((one_thread, (1, False)), (inference, (threads, True))):
        decoder = model.mods["decoder"].model.model.decoder
        handle = decoder.register_forward_pre_hook(record, with_kwargs=True)
        try:
            seen.clear()
            assert model.transcribe(short_speech) == expected
        finally:
            handle.remove()
        assert seen and set(seen) == {want}
        assert torch.get_num_threads() == threads
    seen.clear()
    handle = demo_whisper.mods["whisper"].model.decoder.register_forward_pre_hook(
        record, with_kwargs=True
    )
    try:
        demo_whisper.transcribe(short_speech)
    finally:
        handle.remove()
    assert set(seen) == {(threads, False)}


def _step_logits(model, wav) -> list[torch.Tensor]:
    searcher = model.mods["decoder"]
    step = searcher.forward_step
    seen: list[torch.Tensor] = []

    def recording(*args, **kwargs):
        out = step(*args, **kwargs)
        seen.append(out[0].clone())
        return out

    searcher.forward_step = recording
    try:
        model.transcribe(wav)
    finally:
        searcher.forward_step = step
    return seen


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("how", ["step-eager", "step-script"])
def test_captured_step_gives_the_plans_logits_bit_for_bit(demo_whisper, short_speech, how):
    reference = apply_plan(demo_whisper, TIED_HEAD)
    variant = captured_step(apply_plan(demo_whisper, TIED_HEAD), demo_whisper, how, short_speech)
    assert "forward_step" not in vars(demo_whisper.mods["decoder"])
    decoder_calls: list[int] = []
    decoder = variant.mods["decoder"].model.model.decoder
    handle = decoder.register_forward_pre_hook(lambda *_: decoder_calls.append(1))
    try:
        with torch.no_grad():
            want = _step_logits(reference, short_speech)
            got = _step_logits(variant, short_speech)
    finally:
        handle.remove()
    assert len(decoder_calls) == 1  # the first step only: the later ones ran the captured step
    assert len(want) == len(got) > 2
    for k, (a, b) in enumerate(zip(want, got, strict=True)):
        assert torch.equal(a, b), k
    assert variant.mods["decoder"].kv_cache is None  # dropped after the clip
    assert variant.transcribe(short_speech) == reference.transcribe(short_speech)


@pytest.mark.slow
@pytest.mark.realdata
def test_captured_step_refuses_a_float_head(demo_whisper) -> None:
    from captured_step import TokenStep

    with pytest.raises(SystemExit, match="int8 tied head"):
        TokenStep(demo_whisper.mods["whisper"].model.decoder)
