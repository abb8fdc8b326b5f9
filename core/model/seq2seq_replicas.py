"""Offline replicas of two public SpeechBrain EncoderDecoderASR models, with random weights.

``replica:crdnn`` mirrors ``speechbrain/asr-crdnn-rnnlm-librispeech``: Fbank features, global
input normalization, a CRDNN encoder (2 CNN blocks, 4 bidirectional LSTM layers of 1024 units,
2 DNN blocks), an attentional GRU decoder with location attention, and a beam search scored by
an RNN language model and a coverage penalty. ``replica:conformer`` mirrors
``speechbrain/asr-conformer-transformerlm-librispeech``: a convolutional front end, a 12-layer
conformer encoder (relative-position attention ``RelPosMHAXL``) and a 6-layer transformer
decoder (d_model 512, 8 heads), decoded by joint CTC/attention beam search with a transformer
language model. Module keys and paths match the public models (see
:mod:`speechquant.core.model.replica_hparams`), so plans written for them apply here.

What differs, on purpose:

- the language models are kept small (same classes and module names: the CRDNN's ``RNNLM``
  has 2 LSTM layers of 256 units instead of 2048; the conformer's ``TransformerLM`` has 2
  layers of width 256 instead of 12 of 768), so decoding cost is dominated by the ASR model;
- decoding is short: beam 4 instead of 80/66 and at most a quarter as many steps as encoder
  frames (``max_decode_ratio`` 0.25), so beam search ends fast although random weights rarely
  emit the end token;
- the tokenizers are sentencepiece unigram models of the public vocabulary sizes (1000 and
  5000 pieces, special ids as the public ones) trained on generated text;
- the ``-tiny`` sizes keep every module name and shrink every dimension, for tests.

Weights are random (seeded) and the normalizer's statistics come from seeded noise, so
transcripts are meaningless but stable; structure and speed are real.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from speechquant.core.errors import SourceError
from speechquant.core.model.replica_hparams import CONFORMER_HPARAMS, CRDNN_HPARAMS
from speechquant.core.model.replicas import write_tokenizer
from speechquant.core.paths import building_folder, cache_dir
from speechquant.core.progress import ProgressCallback, report

SEQ2SEQ_FORMAT = "1"


@dataclass(frozen=True)
class CrdnnSize:
    """Dimensions of a CRDNN replica (names as in the public hyperparams.yaml)."""

    n_mels: int
    cnn_channels: str
    rnn_layers: int
    rnn_neurons: int
    dnn_neurons: int
    emb_size: int
    dec_neurons: int
    attn_dim: int
    attn_channels: int
    attn_kernel: int
    vocab: int
    lm_neurons: int
    lm_dnn: int
    beam_size: int
    max_decode_ratio: float


@dataclass(frozen=True)
class ConformerSize:
    """Dimensions of a conformer replica (names as in the public hyperparams.yaml)."""

    n_mels: int
    cnn_channels: str
    input_size: int
    d_model: int
    nhead: int
    encoder_layers: int
    decoder_layers: int
    d_ffn: int
    vocab: int
    lm_d_model: int
    lm_nhead: int
    lm_layers: int
    lm_d_ffn: int
    beam_size: int
    max_decode_ratio: float


CRDNN_SIZES: dict[str, CrdnnSize] = {
    "crdnn": CrdnnSize(
        40, "128, 256", 4, 1024, 512, 128, 1024, 1024, 10, 100, 1000, 256, 128, 4, 0.25
    ),
    "crdnn-tiny": CrdnnSize(40, "4, 8", 2, 16, 16, 8, 16, 16, 2, 10, 64, 16, 16, 2, 0.25),
}
CONFORMER_SIZES: dict[str, ConformerSize] = {
    "conformer": ConformerSize(
        80, "64, 32", 640, 512, 8, 12, 6, 2048, 5000, 256, 4, 2, 1024, 4, 0.25
    ),
    "conformer-tiny": ConformerSize(40, "8, 4", 40, 32, 4, 2, 2, 64, 64, 32, 4, 1, 64, 2, 0.25),
}
#: The tokenizers' special ids, as in the public models.
_CRDNN_IDS = {"unk_id": 0}
_CONFORMER_IDS = {"unk_id": 0, "bos_id": 1, "eos_id": 2}


def seq2seq_names() -> list[str]:
    """The ``replica:`` names this module builds."""
    return [*CRDNN_SIZES, *CONFORMER_SIZES]


def seq2seq_replica_dir(name: str) -> Path:
    """The cache folder of ``replica:<name>`` (built on first use)."""
    return cache_dir() / f"replica-{name}"


def build_seq2seq_replica(name: str, progress: ProgressCallback | None = None) -> Path:
    """Build (once) and return the SpeechBrain model folder of ``replica:<name>``.

    The folder is built in a temporary sibling and renamed into place, so an interrupted build
    never leaves a half-made cache behind.
    """
    if name in CRDNN_SIZES:
        dims: CrdnnSize | ConformerSize = CRDNN_SIZES[name]
        template, ids = CRDNN_HPARAMS, _CRDNN_IDS
    elif name in CONFORMER_SIZES:
        dims = CONFORMER_SIZES[name]
        template, ids = CONFORMER_HPARAMS, _CONFORMER_IDS
    else:
        known = ", ".join(f"replica:{n}" for n in seq2seq_names())
        raise SourceError(f"unknown built-in model 'replica:{name}'; use one of {known}")
    target = seq2seq_replica_dir(name)
    marker = target / "REPLICA_FORMAT"
    if marker.is_file() and marker.read_text().strip() == SEQ2SEQ_FORMAT:
        return target
    report(progress, 0, 3, f"building replica:{name}")
    with building_folder(target) as tmp:
        text = template.format(size=name, **asdict(dims))
        (tmp / "hyperparams.yaml").write_text(text, encoding="utf-8")
        report(progress, 1, 3, "training tokenizer")
        write_tokenizer(tmp / "tokenizer.ckpt", dims.vocab, **ids)
        report(progress, 2, 3, "writing random weights")
        _write_checkpoints(tmp, text)
        marker_tmp = tmp / "REPLICA_FORMAT"
        marker_tmp.write_text(SEQ2SEQ_FORMAT + "\n")
    report(progress, 3, 3, f"built replica:{name}")
    return target


def _write_checkpoints(folder: Path, text: str) -> None:
    """Seeded random weights for ``asr`` and ``lm``, noise statistics for ``normalizer``."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    torch.manual_seed(0)
    hparams: dict[str, Any] = load_hyperpyyaml(text)
    torch.save(hparams["asr_model"].state_dict(), folder / "asr.ckpt")
    torch.save(hparams["lm_model"].state_dict(), folder / "lm.ckpt")
    generator = torch.Generator().manual_seed(1)
    noise = 0.1 * torch.randn(1, 3 * hparams["sample_rate"], generator=generator)
    with torch.no_grad():
        feats = hparams["compute_features"](noise)[0]
    stats = {"count": int(feats.shape[0]), "glob_mean": feats.mean(0), "glob_std": feats.std(0)}
    torch.save(stats, folder / "normalizer.ckpt")
