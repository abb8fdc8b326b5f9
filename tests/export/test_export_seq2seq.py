"""Exporting the encoder-decoder replicas: identical transcripts after reload, and refusals."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
import torch.ao.nn.quantized.dynamic as nnqd

from speechquant.core.errors import ExportError
from speechquant.core.export import safety
from speechquant.core.export.loader import load_quantized
from speechquant.core.export.writer import export_model
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree

from ..helpers import fixed_waves

CASES = [
    ("crdnn_tiny", "all-dynamic"),
    ("crdnn_tiny", "tutorial"),
    ("crdnn_tiny", "bf16"),
    ("crdnn_tiny", "float16-lstm"),
    ("conformer_tiny", "all-dynamic"),
    ("conformer_tiny", "tutorial"),
    ("conformer_tiny", "bf16"),
]


def _plan(preset: str, tree) -> Plan:
    if preset == "float16-lstm":
        return Plan(
            {"encoder.model.RNN": "dynamic", "lm_model": "dynamic"},
            QuantSettings(dynamic_dtype="float16"),
            name=preset,
        )
    return make_preset(preset, tree)


def _same(expected, actual, waves) -> None:
    for wav in waves:
        assert torch.equal(expected.encode(wav), actual.encode(wav))
        words, tokens = expected.asr.transcribe_batch(wav.unsqueeze(0), torch.tensor([1.0]))
        again, tokens_again = actual.asr.transcribe_batch(wav.unsqueeze(0), torch.tensor([1.0]))
        assert words == again and [list(t) for t in tokens] == [list(t) for t in tokens_again]


@pytest.mark.parametrize(("fixture", "preset"), CASES)
def test_round_trip_gives_identical_transcripts(fixture, preset, request, tmp_path):
    model = request.getfixturevalue(fixture)
    plan = _plan(preset, build_tree(model.mods))
    quantized = apply_plan(model, plan, fixed_waves(2, 0.5, seed=1))
    out = export_model(quantized, tmp_path / "export")
    loaded = load_quantized(out)
    assert loaded.interface == "EncoderDecoderASR" and loaded.plan.to_dict() == plan.to_dict()
    _same(quantized, loaded, fixed_waves(2, 1.5, seed=7))


def test_reloaded_lstm_and_gru_are_quantized_and_scored(crdnn_tiny, tmp_path):
    plan = make_preset("all-dynamic", build_tree(crdnn_tiny.mods))
    out = export_model(apply_plan(crdnn_tiny, plan), tmp_path / "export")
    mods = load_quantized(out).mods
    assert type(mods.encoder.model.RNN.rnn) is nnqd.LSTM
    assert type(mods.decoder.dec.rnn.rnn_cells[0]) is nnqd.GRUCell
    assert mods.decoder.scorer.full_scorers["rnnlm"].lm is mods.lm_model
    assert type(mods.lm_model.rnn.rnn) is nnqd.LSTM


def test_normalizer_statistics_travel_as_their_own_file(crdnn_tiny, tmp_path):
    plan = Plan({"lm_model": "dynamic"})
    out = export_model(apply_plan(crdnn_tiny, plan), tmp_path / "export")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["loadables"] == {"normalizer": "normalizer.ckpt", "tokenizer": "tokenizer.ckpt"}
    loaded = load_quantized(out)
    assert torch.equal(loaded.mods.normalizer.glob_mean, crdnn_tiny.mods.normalizer.glob_mean)
    assert loaded.mods.normalizer.count == crdnn_tiny.mods.normalizer.count


def test_normalizer_file_with_code_is_refused(tmp_path):
    path = tmp_path / "normalizer.ckpt"
    with path.open("wb") as handle:
        pickle.dump({"count": 1, "glob_mean": torch.zeros(2), "glob_std": ExportError}, handle)
    with pytest.raises(ExportError, match="refused|not an input normalizer"):
        safety.read_normalizer_statistics(path, str(path))
    torch.save({"count": 1, "glob_mean": torch.zeros(2), "glob_std": torch.ones(3)}, path)
    with pytest.raises(ExportError, match="not an input normalizer's statistics"):
        safety.read_normalizer_statistics(path, str(path))


def test_a_scorer_holding_a_foreign_module_is_refused(crdnn_tiny, tmp_path):
    variant = apply_plan(crdnn_tiny, Plan({"lm_model": "dynamic"}))
    scorer = variant.mods.decoder.scorer
    foreign = torch.nn.Linear(2, 2)
    scorer.full_scorers["rnnlm"].lm = foreign
    with pytest.raises(ExportError, match="not one of the model's modules"):
        export_model(variant, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_the_export_allowlist_names_every_class_of_the_replicas(crdnn_tiny, conformer_tiny):
    for model in (crdnn_tiny, conformer_tiny):
        text = (model.folder / "hyperparams.yaml").read_text()
        safety.compose_hyperparams(text, "replica")
    with pytest.raises(ExportError, match="allowlist"):
        safety.compose_hyperparams("x: !new:speechbrain.nnet.RNN.LiGRU\n    hidden_size: 2\n", "y")


def test_quantized_rnn_weights_are_stored_as_plain_tensors(crdnn_tiny, tmp_path):
    plan = Plan({"encoder.model.RNN": "dynamic", "decoder.dec.rnn": "dynamic"})
    out = export_model(apply_plan(crdnn_tiny, plan), tmp_path / "export")
    state = torch.load(out / "quantized_state.pt", weights_only=True)
    assert state["encoder.model.RNN.rnn._packed_rnn.weight.weight_ih_l0"].dtype == torch.qint8
    assert "encoder.model.RNN.rnn._packed_rnn.weight.weight_hh_l1_reverse" in state
    assert state["decoder.dec.rnn.rnn_cells.0._packed_rnn.bias.bias_hh"].dtype == torch.float32
    assert not any(k.endswith(("._all_weight_values.0.param", "._packed_weight_ih")) for k in state)


def test_a_quantized_rnn_state_that_does_not_fit_is_refused(crdnn_tiny, tmp_path):
    from speechquant.core.export import packed_rnn

    variant = apply_plan(crdnn_tiny, Plan({"encoder.model.RNN": "dynamic"}))
    state = packed_rnn.plain_state(variant.mods, variant.mods.state_dict())
    del state["encoder.model.RNN.rnn._packed_rnn.weight.weight_ih_l0"]
    with pytest.raises(ExportError, match="does not fit the quantized recurrent layer"):
        packed_rnn.packed_state(variant.mods, state, "state.pt")
