"""Offline replicas of the reference EncoderASR (wav2vec2 + CTC) with random weights.

The replica mirrors ``speechbrain/asr-wav2vec2-commonvoice-14-en``: a HF ``Wav2Vec2Model`` with the
large-lv60 structure (layer-norm conv feature extractor, stable layer norm, weight-normed positional
conv) wrapped by SpeechBrain's ``Wav2Vec2`` lobe, then ``enc`` (3 x Linear/BatchNorm/LeakyReLU/
Dropout), ``ctc_lin`` and ``log_softmax`` inside a ``LengthsCapableSequential`` called ``encoder``.
Module paths therefore match the reference exactly. Weights are random (seeded), so transcripts are
meaningless but stable; speed and structure are real.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from speechquant.core.errors import SourceError
from speechquant.core.model.replica_hparams import linear, pretrainer
from speechquant.core.paths import building_folder, cache_dir
from speechquant.core.progress import ProgressCallback, report

REPLICA_FORMAT = "2"


@dataclass(frozen=True)
class ReplicaSize:
    """Dimensions of one replica size."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    conv_dim: int
    pos_conv_kernel: int
    pos_conv_groups: int
    dnn_neurons: int
    vocab: int


REPLICA_SIZES: dict[str, ReplicaSize] = {
    "large": ReplicaSize(1024, 24, 16, 4096, 512, 128, 16, 1024, 1000),
    "base": ReplicaSize(768, 12, 12, 3072, 512, 128, 16, 768, 1000),
    "tiny": ReplicaSize(64, 2, 4, 128, 32, 16, 4, 64, 100),
}


_ENC_LAYERS: tuple[tuple[str, str, str, str], ...] = tuple(
    (f"linear{i}", f"bn{i}", f"activation{s}", f"drop{s}") for i, s in ((1, ""), (2, "2"), (3, "3"))
)
"""The names of each of ``enc``'s blocks: its Linear, BatchNorm, LeakyReLU and Dropout."""


def _enc_block(linear_name: str, bn: str, activation: str, drop: str) -> str:
    return (
        f"    {linear_name}: !name:speechbrain.nnet.linear.Linear\n"
        "        n_neurons: !ref <dnn_neurons>\n"
        "        bias: True\n"
        f"    {bn}: !name:speechbrain.nnet.normalization.BatchNorm1d\n"
        f"    {activation}: !new:torch.nn.LeakyReLU\n"
        f"    {drop}: !new:torch.nn.Dropout\n"
        "        p: 0.15\n"
    )


HYPERPARAMS_TEMPLATE = (
    """\
# speechquant replica of speechbrain/asr-wav2vec2-commonvoice-14-en ({size}); random weights.
sample_rate: 16000
wav2vec2_hub: wav2vec2
wav2vec2_folder: wav2vec2_checkpoint
dnn_neurons: {dnn}
output_neurons: {vocab}
blank_index: 0

enc: !new:speechbrain.nnet.containers.Sequential
    input_shape: [null, null, {hidden}]
"""
    + "".join(_enc_block(*names) for names in _ENC_LAYERS)
    + """
wav2vec2: !new:speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2
    source: !ref <wav2vec2_hub>
    output_norm: True
    freeze: True
    save_path: !ref <wav2vec2_folder>

"""
    + linear("ctc_lin", "dnn_neurons")
    + """
log_softmax: !new:speechbrain.nnet.activations.Softmax
    apply_log: True

asr_model: !new:torch.nn.ModuleList
    - [!ref <enc>, !ref <ctc_lin>]

tokenizer: !new:sentencepiece.SentencePieceProcessor

encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    wav2vec2: !ref <wav2vec2>
    enc: !ref <enc>
    ctc_lin: !ref <ctc_lin>
    log_softmax: !ref <log_softmax>

modules:
    encoder: !ref <encoder>

decoding_function: !name:speechbrain.decoders.ctc_greedy_decode
    blank_id: !ref <blank_index>

"""
    + pretrainer(asr="asr_model", tokenizer="tokenizer")
)


def replica_dir(size: str) -> Path:
    """The cache folder of ``replica:wav2vec2-<size>`` (built on first use by :func:`build_replica`)."""
    return cache_dir() / f"replica-wav2vec2-{size}"


def build_replica(size: str, progress: ProgressCallback | None = None) -> Path:
    """Build (once) and return the SpeechBrain model folder of ``replica:wav2vec2-<size>``.

    The folder is built in a temporary sibling and renamed into place, so an interrupted build
    never leaves a half-made cache behind.
    """
    if size not in REPLICA_SIZES:
        known = ", ".join(f"replica:wav2vec2-{name}" for name in REPLICA_SIZES)
        raise SourceError(f"unknown built-in model 'replica:wav2vec2-{size}'; use one of {known}")
    target = replica_dir(size)
    if (target / "REPLICA_FORMAT").is_file() and (
        target / "REPLICA_FORMAT"
    ).read_text().strip() == REPLICA_FORMAT:
        return target
    dims = REPLICA_SIZES[size]
    report(progress, 0, 4, f"building replica:wav2vec2-{size}")
    with building_folder(target) as tmp:
        _write_backbone(tmp / "wav2vec2", dims)
        report(progress, 1, 4, "training tokenizer")
        _write_tokenizer(tmp / "tokenizer.ckpt", dims.vocab)
        report(progress, 2, 4, "writing head")
        (tmp / "hyperparams.yaml").write_text(
            HYPERPARAMS_TEMPLATE.format(
                size=size, dnn=dims.dnn_neurons, vocab=dims.vocab, hidden=dims.hidden
            )
        )
        _write_head(tmp, dims)
        (tmp / "REPLICA_FORMAT").write_text(REPLICA_FORMAT + "\n")
        report(progress, 3, 4, "finishing")
    report(progress, 4, 4, f"built replica:wav2vec2-{size}")
    return target


def _write_backbone(folder: Path, dims: ReplicaSize) -> None:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=dims.hidden,
        num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads,
        intermediate_size=dims.ffn,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
        conv_dim=(dims.conv_dim,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=dims.pos_conv_kernel,
        num_conv_pos_embedding_groups=dims.pos_conv_groups,
        feat_extract_activation="gelu",
        hidden_act="gelu",
        vocab_size=32,
    )
    torch.manual_seed(0)
    model = Wav2Vec2Model(config)
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(folder)


def _write_tokenizer(path: Path, vocab: int) -> None:
    """The CTC replica's tokenizer: blank (pad) 0, unk 1, no bos/eos."""
    write_tokenizer(path, vocab, unk_id=1, pad_id=0, pad_piece="<blank>")


def write_tokenizer(
    path: Path,
    vocab: int,
    *,
    unk_id: int = 0,
    bos_id: int = -1,
    eos_id: int = -1,
    pad_id: int = -1,
    pad_piece: str = "<pad>",
) -> None:
    """Train a sentencepiece unigram model of exactly ``vocab`` pieces on generated text.

    The special ids follow the model the replica mirrors (``-1``: the piece does not exist).
    """
    import sentencepiece as spm

    rng = random.Random(0)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    n_words, n_lines = max(4000, 4 * vocab), max(3000, 3 * vocab)
    words = [
        "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(n_words)
    ]
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "corpus.txt"
        corpus.write_text(
            "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(n_lines))
        )
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(work) / "sp"),
            vocab_size=vocab,
            model_type="unigram",
            character_coverage=1.0,
            unk_id=unk_id,
            bos_id=bos_id,
            eos_id=eos_id,
            pad_id=pad_id,
            pad_piece=pad_piece,
            minloglevel=2,
        )
        shutil.copy(Path(work) / "sp.model", path)


def _write_head(folder: Path, dims: ReplicaSize) -> None:
    """Save seeded random weights of ``enc`` and ``ctc_lin`` as the pretrainer's ``asr.ckpt``."""
    import torch
    from speechbrain.nnet.containers import Sequential
    from speechbrain.nnet.linear import Linear
    from speechbrain.nnet.normalization import BatchNorm1d

    torch.manual_seed(1)
    enc = Sequential(input_shape=[None, None, dims.hidden])
    for linear_name, bn, activation, drop in _ENC_LAYERS:
        enc.append(Linear, n_neurons=dims.dnn_neurons, bias=True, layer_name=linear_name)
        enc.append(BatchNorm1d, layer_name=bn)
        enc.append(torch.nn.LeakyReLU(), layer_name=activation)
        enc.append(torch.nn.Dropout(p=0.15), layer_name=drop)
    ctc_lin = Linear(input_size=dims.dnn_neurons, n_neurons=dims.vocab)
    asr_model = torch.nn.ModuleList([enc, ctc_lin])
    torch.save(asr_model.state_dict(), folder / "asr.ckpt")
