"""``decoder_step = "scripted"``: the later Whisper decoder steps as one TorchScript module."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from speechquant.core.data.audio import load_audio
from speechquant.core.data.datasets import open_dataset
from speechquant.core.errors import PlanError
from speechquant.core.export.loader import load_quantized
from speechquant.core.export.writer import export_model
from speechquant.core.quantization import decoder_step
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree

HEAD = "whisper.model.decoder.embed_tokens"

pytestmark = pytest.mark.slow


def _scripted(plan: Plan) -> Plan:
    return replace(plan, settings=replace(plan.settings, decoder_step="scripted"))


@pytest.fixture(scope="module")
def best(demo_whisper) -> Plan:
    plan = make_preset("all-dynamic", build_tree(demo_whisper.mods))
    plan.entries[HEAD] = "dynamic"
    return plan


@pytest.fixture(scope="module")
def waves(demo_whisper) -> list[torch.Tensor]:
    dataset = open_dataset("demo")
    return [load_audio(u.audio_path, demo_whisper.sample_rate) for u in list(dataset)[:3]]


class CountingLayers:
    """Counts the calls of a searcher's scripted layers, passing them through."""

    def __init__(self, layers) -> None:
        self.layers, self.calls = layers, 0

    def __call__(self, *args):
        self.calls += 1
        return self.layers(*args)


def test_scripted_steps_transcribe_as_the_searcher_does(demo_whisper, best, waves):
    native = apply_plan(demo_whisper, best)
    scripted = apply_plan(demo_whisper, _scripted(best))
    searcher = scripted.mods["decoder"]
    assert isinstance(searcher.__dict__["scripted_layers"], torch.jit.ScriptModule)
    counter = CountingLayers(searcher.__dict__["scripted_layers"])
    searcher.__dict__["scripted_layers"] = counter
    native_steps = CountingLayers(native.mods["decoder"].forward_step)
    native.mods["decoder"].forward_step = native_steps
    for wav in waves:
        want, got = native.transcribe(wav), scripted.transcribe(wav)
        assert got == want and len(want.split()) > 2
    # every step after each utterance's first went through the scripted layers
    assert counter.calls == native_steps.calls - len(waves) > 20
    assert "scripted_layers" not in {name for name, _ in searcher.named_modules()}


def test_a_float_plan_with_scripted_steps_leaves_the_float_model_alone(demo_whisper, waves):
    variant = apply_plan(demo_whisper, _scripted(Plan()))
    assert not variant.plan.is_float() and Plan().is_float()
    assert variant.mods is not demo_whisper.mods
    assert variant.mods["decoder"] is not demo_whisper.mods["decoder"]
    assert "forward_step" not in vars(demo_whisper.mods["decoder"])
    assert variant.mods["whisper"] is demo_whisper.mods["whisper"]  # weights shared, not copied
    assert variant.transcribe(waves[0]) == demo_whisper.transcribe(waves[0])


def test_a_capture_that_does_not_reproduce_the_step_is_refused(demo_whisper, best, monkeypatch):
    own = decoder_step._logits
    monkeypatch.setattr(decoder_step, "_logits", lambda decoder, states: own(decoder, states) + 0.5)
    with pytest.raises(PlanError, match="does not reproduce the decoder") as info:
        apply_plan(demo_whisper, _scripted(best))
    assert "set decoder_step to native" in str(info.value) and "\n" not in str(info.value)


def test_models_without_a_whisper_searcher_are_refused_in_one_line(tiny_model):
    plan = _scripted(make_preset("all-dynamic", build_tree(tiny_model.mods)))
    with pytest.raises(PlanError) as info:
        apply_plan(tiny_model, plan)
    message = str(info.value)
    assert "has no Whisper greedy searcher" in message and "set decoder_step to native" in message
    assert "\n" not in message


def test_the_setting_in_plan_files(tmp_path):
    native = Plan(entries={"a": "dynamic"})
    assert "decoder_step" not in native.to_dict()["settings"]  # plans stay as they were
    scripted = _scripted(native)
    path = tmp_path / "plan.json"
    scripted.save(path)
    assert json.loads(path.read_text())["settings"]["decoder_step"] == "scripted"
    assert Plan.load(path).settings.decoder_step == "scripted"
    with pytest.raises(PlanError, match="unknown decoder_step 'fast'; use one of native, scripted"):
        QuantSettings(decoder_step="fast")


def test_an_export_reloads_with_its_steps_scripted(demo_whisper, best, waves, tmp_path: Path):
    plan = _scripted(best)
    variant = apply_plan(demo_whisper, plan)
    folder = export_model(variant, tmp_path / "export")
    loaded = load_quantized(folder)
    assert loaded.plan.settings.decoder_step == "scripted"
    assert isinstance(loaded.mods["decoder"].__dict__["scripted_layers"], torch.jit.ScriptModule)
    assert loaded.transcribe(waves[1]) == variant.transcribe(waves[1])


def test_cli_plan_writes_and_checks_the_setting(demo_whisper, tmp_path, capsys):
    from speechquant.core.cli.main import main

    out = tmp_path / "plan.json"
    args = ["plan", "demo:whisper-tiny-en", "--preset", "all-dynamic", "--decoder-step", "scripted"]
    assert main([*args, "-o", str(out)]) == 0
    assert Plan.load(out).settings.decoder_step == "scripted"
    assert main(["plan", "demo:whisper-tiny-en", "--check", str(out)]) == 0
    capsys.readouterr()
    wav2vec2 = ["plan", "replica:wav2vec2-tiny", "--preset", "all-dynamic"]
    assert main([*wav2vec2, "--decoder-step", "scripted"]) != 0
    err = capsys.readouterr().err
    assert "decoder_step 'scripted' does not apply to replica:wav2vec2-tiny" in err
