"""The encoder-decoder replicas: public module names, offline build, fast beam search."""

from __future__ import annotations

import pytest
import torch

from speechquant.core.errors import DataError, SourceError
from speechquant.core.model.seq2seq_replicas import (
    CONFORMER_SIZES,
    CRDNN_SIZES,
    build_seq2seq_replica,
)
from speechquant.core.quantization.tree import build_tree
from speechquant.core.sources import BUILTINS, open_model

from ..helpers import fixed_waves

#: Paths of speechbrain/asr-crdnn-rnnlm-librispeech's modules, and their classes.
CRDNN_PATHS = {
    "normalizer": "InputNormalization",
    "encoder.compute_features": "Fbank",
    "encoder.model": "CRDNN",
    "encoder.model.CNN.block_0.conv_1.conv": "Conv2d",
    "encoder.model.time_pooling": "Pooling1d",
    "encoder.model.RNN": "LSTM",
    "encoder.model.RNN.rnn": "LSTM",
    "encoder.model.DNN.block_1.linear.w": "Linear",
    "decoder": "S2SRNNBeamSearcher",
    "decoder.emb": "Embedding",
    "decoder.dec": "AttentionalRNNDecoder",
    "decoder.dec.rnn.rnn_cells.0": "GRUCell",
    "decoder.dec.attn": "LocationAwareAttention",
    "decoder.fc": "Linear",
    "lm_model": "RNNLM",
    "lm_model.rnn.rnn": "LSTM",
    "lm_model.out": "Linear",
}
#: Paths of speechbrain/asr-conformer-transformerlm-librispeech's modules, and their classes.
CONFORMER_PATHS = {
    "compute_features": "Fbank",
    "normalizer": "InputNormalization",
    "pre_transformer": "ConvolutionFrontEnd",
    "transformer": "TransformerASR",
    "transformer.encoder": "ConformerEncoder",
    "transformer.encoder.layers.0": "ConformerEncoderLayer",
    "transformer.encoder.layers.0.mha_layer": "RelPosMHAXL",
    "transformer.encoder.layers.0.convolution_module": "ConvolutionModule",
    "transformer.decoder.layers.0": "TransformerDecoderLayer",
    "transformer.custom_tgt_module": "ModuleList",
    "asr_model.2": "Linear",
    "asr_model.3": "Linear",
    "lm_model": "TransformerLM",
    "decoder": "S2STransformerBeamSearcher",
}


@pytest.mark.parametrize(
    ("fixture", "paths"), [("crdnn_tiny", CRDNN_PATHS), ("conformer_tiny", CONFORMER_PATHS)]
)
def test_replicas_have_the_public_module_paths(fixture, paths, request):
    model = request.getfixturevalue(fixture)
    tree = build_tree(model.mods)
    assert model.interface == "EncoderDecoderASR"
    for path, class_name in paths.items():
        assert path in tree, path
        assert tree[path].class_name == class_name, path


def test_the_crdnn_searcher_scores_with_the_modules_lm(crdnn_tiny):
    scorers = crdnn_tiny.mods.decoder.scorer.full_scorers
    assert scorers["rnnlm"].lm is crdnn_tiny.mods.lm_model
    assert set(scorers) == {"rnnlm", "coverage"}


def test_the_conformer_searcher_scores_with_ctc_and_the_lm(conformer_tiny):
    mods = conformer_tiny.mods
    scorers = mods.decoder.scorer.full_scorers
    assert scorers["ctc"].ctc_fc is mods.asr_model[3]
    assert scorers["transformerlm"].lm is mods.lm_model
    assert mods.decoder.model is mods.transformer and mods.decoder.fc is mods.asr_model[2]


@pytest.mark.parametrize("fixture", ["crdnn_tiny", "conformer_tiny"])
def test_transcribe_is_stable_and_the_beam_search_is_short(fixture, request):
    model = request.getfixturevalue(fixture)
    wav = fixed_waves(1, seconds=3.0, seed=4)[0]
    first = model.transcribe(wav)
    assert isinstance(first, str) and first
    assert model.transcribe(wav) == first
    _, tokens = model.asr.transcribe_batch(wav.unsqueeze(0), torch.tensor([1.0]))
    frames = model.encode(wav).shape[1]
    assert len(tokens[0]) <= int(frames * model.mods.decoder.max_decode_ratio)


@pytest.mark.parametrize("fixture", ["crdnn_tiny", "conformer_tiny"])
def test_a_clip_too_short_for_the_beam_search_is_one_clear_error(fixture, request):
    model = request.getfixturevalue(fixture)
    with pytest.raises(DataError, match=r"^the clip is 25.0 ms long, too short for this model \("):
        model.transcribe(fixed_waves(1, seconds=0.025, seed=5)[0])
    assert isinstance(model.transcribe(fixed_waves(1, seconds=0.2, seed=5)[0]), str)


@pytest.mark.parametrize(
    ("fixture", "vocab", "ids"),
    [
        ("crdnn_tiny", CRDNN_SIZES["crdnn-tiny"].vocab, (0, -1, -1)),
        ("conformer_tiny", CONFORMER_SIZES["conformer-tiny"].vocab, (0, 1, 2)),
    ],
)
def test_tokenizer_matches_the_output_layer(fixture, vocab, ids, request):
    model = request.getfixturevalue(fixture)
    tokenizer = model.asr.tokenizer
    assert tokenizer.get_piece_size() == vocab
    assert (tokenizer.unk_id(), tokenizer.bos_id(), tokenizer.eos_id()) == ids


def test_replicas_are_built_once_and_listed(crdnn_tiny):
    folder = build_seq2seq_replica("crdnn-tiny")
    assert folder == crdnn_tiny.folder
    assert {p.name for p in folder.iterdir()} >= {
        "hyperparams.yaml",
        "asr.ckpt",
        "lm.ckpt",
        "normalizer.ckpt",
        "tokenizer.ckpt",
    }
    for name in (
        "replica:crdnn",
        "replica:crdnn-tiny",
        "replica:conformer",
        "replica:conformer-tiny",
    ):
        assert name in BUILTINS


def test_the_normalizer_holds_its_statistics(crdnn_tiny):
    norm = crdnn_tiny.mods.normalizer
    assert norm is crdnn_tiny.mods.encoder.normalize
    assert norm.glob_mean.shape == (CRDNN_SIZES["crdnn-tiny"].n_mels,)


def test_unknown_replica_names_the_choices():
    with pytest.raises(SourceError, match="replica:crdnn-tiny"):
        open_model("replica:crdnn-huge")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "low", "high"), [("crdnn", 100e6, 140e6), ("conformer", 100e6, 125e6)]
)
def test_full_size_replicas_have_the_public_scale(name, low, high):
    """The ASR part (the language models are small on purpose) is as big as the public one."""
    model = open_model(f"replica:{name}")
    asr = model.asr.hparams.asr_model
    params = sum(p.numel() for p in asr.parameters())
    assert low < params < high
    wav = fixed_waves(1, seconds=2.0, seed=3)[0]
    assert isinstance(model.transcribe(wav), str)
