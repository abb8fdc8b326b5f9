"""The trust model for local model folders: live payloads are refused before anything is built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from speechquant.core.errors import ExportError, SourceError
from speechquant.core.model.trust import callable_allowed, folder_untrusted_tags
from speechquant.core.sources import open_model, resolve_builtin

PAYLOADS = {
    "apply": "pwn: !apply:os.system ['touch {marker}']\n",
    "new": "pwn: !new:subprocess.Popen [['touch', '{marker}']]\n",
    "name-called": "pwn: !apply:builtins.exec [\"open('{marker}', 'w')\"]\n",
    "new-exec": "pwn: !new:builtins.exec [\"open('{marker}', 'w')\"]\n",
    "python-tag": "pwn: !!python/object/apply:os.system ['touch {marker}']\n",
    "tuple": "pwn: (!!python/object/apply:os.system ['touch {marker}'])\n",
    "module": "pwn: !apply:getattr [!module:os , system]\n",
    "include": "pwn: !include:{include}\n",
    "remote-code": "pwn: !new:torch.nn.Identity\n    trust_remote_code: True\n",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the tiny replica's model folder (a plain SpeechBrain folder)."""
    dest = tmp_path / "model"
    shutil.copytree(resolve_builtin("replica:wav2vec2-tiny"), dest)
    return dest


def _add_payload(folder: Path, name: str, marker: Path) -> None:
    include = folder.parent / "included.yaml"
    include.write_text(f"x: !apply:os.system ['touch {marker}']\n")
    with (folder / "hyperparams.yaml").open("a") as f:
        f.write(PAYLOADS[name].format(marker=marker, include=include))


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_is_refused_and_never_runs(folder, tmp_path, name):
    marker = tmp_path / "marker"
    _add_payload(folder, name, marker)
    with pytest.raises(SourceError) as info:
        open_model(folder)
    message = str(info.value)
    assert "\n" not in message and "--trust-code" in message and "trust_code=True" in message
    assert "line " in message and "nothing was built" in message
    assert not marker.exists()
    assert folder_untrusted_tags(folder), "the GUI's list of untrusted tags is empty"


def test_trusted_payload_runs(folder, tmp_path):
    """The payloads are live: with trust the same file runs its code (and then loads)."""
    marker = tmp_path / "marker"
    _add_payload(folder, "apply", marker)
    model = open_model(folder, trust_code=True)
    assert marker.exists()
    assert model.interface == "EncoderASR"


def test_untrusted_tags_name_each_class(folder, tmp_path):
    _add_payload(folder, "new", tmp_path / "m")
    _add_payload(folder, "apply", tmp_path / "m")
    tags = [t.tag for t in folder_untrusted_tags(folder)]
    assert tags == ["!new:subprocess.Popen", "!apply:os.system"]


def test_builtin_folders_pass_the_allowlist():
    for source in ("replica:wav2vec2-tiny", "demo:whisper-tiny-en"):
        assert folder_untrusted_tags(resolve_builtin(source)) == []


# The shapes of SpeechBrain's published ASR hyperparams (CRDNN + RNNLM, Transformer, wav2vec2 CTC).
PUBLISHED = """\
sample_rate: 16000
n_mels: 40
compute_features: !new:speechbrain.lobes.features.Fbank
    sample_rate: !ref <sample_rate>
    n_mels: !ref <n_mels>
normalizer: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
enc: !new:speechbrain.lobes.models.CRDNN.CRDNN
    input_shape: [null, null, !ref <n_mels>]
    activation: !name:torch.nn.LeakyReLU
    dropout: 0.15
    cnn_blocks: 2
    cnn_channels: (128, 256)
    rnn_class: !name:speechbrain.nnet.RNN.LSTM
emb: !new:speechbrain.nnet.embedding.Embedding
    num_embeddings: 1000
    embedding_dim: 128
dec: !new:speechbrain.nnet.RNN.AttentionalRNNDecoder
    enc_dim: 512
    input_size: 128
    rnn_type: gru
    attn_type: location
lm_model: !new:speechbrain.lobes.models.RNNLM.RNNLM
    output_neurons: 1000
transformer: !new:speechbrain.lobes.models.transformer.TransformerASR.TransformerASR
    input_size: 5120
    tgt_vocab: 5000
    d_model: 512
ctc_lin: !new:speechbrain.nnet.linear.Linear
    input_size: 512
    n_neurons: !ref <n_mels> * 25
log_softmax: !new:speechbrain.nnet.activations.Softmax
    apply_log: True
ctc_scorer: !new:speechbrain.decoders.scorer.CTCScorer
    eos_index: 2
    blank_index: 0
    ctc_fc: !ref <ctc_lin>
scorer: !new:speechbrain.decoders.scorer.ScorerBuilder
    full_scorers: [!ref <ctc_scorer>]
    weights: {ctc: 0.4}
decoder: !new:speechbrain.decoders.S2SRNNBeamSearcher
    embedding: !ref <emb>
    decoder: !ref <dec>
    linear: !ref <ctc_lin>
    bos_index: 1
    eos_index: 2
    scorer: !ref <scorer>
tokenizer: !new:sentencepiece.SentencePieceProcessor
label_encoder: !new:speechbrain.dataio.encoder.CTCTextEncoder
wav2vec2: !new:speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2
    source: facebook/wav2vec2-large-lv60
    freeze: True
    save_path: wav2vec2_checkpoint
dropout: !new:torch.nn.Dropout
    p: 0.1
__set_seed: !apply:torch.manual_seed [1234]
modules:
    encoder: !ref <enc>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        asr: !ref <enc>
        tokenizer: !ref <tokenizer>
    paths:
        asr: model.ckpt
"""


def test_published_speechbrain_shapes_pass(tmp_path):
    (tmp_path / "hyperparams.yaml").write_text(PUBLISHED)
    assert folder_untrusted_tags(tmp_path) == []


@pytest.mark.parametrize(
    "path",
    [
        "os.system",
        "torch.load",
        "torch.nn.utils.clip_grad_norm_",
        "speechbrain.utils.superpowers.run_shell",
        "speechbrain.lobes.models.MSTacotron2.Tacotron2",
        "speechbrain.integrations.huggingface.mert.MERT",
        "speechbrain.nnet.no_such_module.Thing",
        "speechbrain.nnet.linear.torch",
        "speechbrain.nnet.linear.get_logger",
    ],
)
def test_callables_outside_the_allowlist(path):
    assert not callable_allowed(path)


def _export_copy(tiny_model, tmp_path: Path) -> Path:
    from speechquant.core.export.writer import export_quantized
    from speechquant.core.quantization.presets import make_preset
    from speechquant.core.quantization.tree import build_tree

    return export_quantized(
        tiny_model, make_preset("all-dynamic", build_tree(tiny_model.mods)), tmp_path / "exp"
    )


@pytest.mark.parametrize("damage", ["missing", "empty-object", "not-json"])
def test_damaged_export_with_payload_is_refused_not_opened_as_folder(tiny_model, tmp_path, damage):
    export = _export_copy(tiny_model, tmp_path)
    marker = tmp_path / "marker"
    with (export / "hyperparams.yaml").open("a") as f:
        f.write(f"pwn: !apply:os.system ['touch {marker}']\n")
    meta = export / "metadata.json"
    if damage == "missing":
        meta.unlink()
    else:
        meta.write_text("{}" if damage == "empty-object" else "{not json")
    for trust in (False, True):
        with pytest.raises(ExportError) as info:
            open_model(export, trust_code=trust)
        assert "\n" not in str(info.value)
    assert not marker.exists()


def test_folder_with_only_a_plan_file_is_treated_as_export(folder, tmp_path):
    (folder / "plan.json").write_text(json.dumps({"format": "speechquant-plan"}))
    with pytest.raises(ExportError, match="metadata.json is missing"):
        open_model(folder)
