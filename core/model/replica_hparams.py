"""hyperparams.yaml of the replicas, laid out as the public models' files.

Module keys, classes and nesting follow ``speechbrain/asr-crdnn-rnnlm-librispeech`` and
``speechbrain/asr-conformer-transformerlm-librispeech`` (built from SpeechBrain's LibriSpeech
recipes ``seq2seq/hparams/train_BPE_1000.yaml`` and ``transformer/hparams/conformer_large.yaml``),
so a plan written for a public model names the same paths here. Sizes, the language model's
dimensions and the decoding settings come from :mod:`speechquant.core.model.seq2seq_replicas`.
The blocks the templates share (also with the wav2vec2 replica of :mod:`.replicas`) are written
by one builder each; the templates are filled in with :meth:`str.format`.
"""


def refs(indent: int, **keys: str) -> str:
    """One line ``name: !ref <key>`` a pair, indented by ``indent`` spaces."""
    return "".join(f"{' ' * indent}{name}: !ref <{key}>\n" for name, key in keys.items())


def linear(name: str, inputs: str) -> str:
    """The ``Linear`` block ``name`` from ``<inputs>`` to ``<output_neurons>``."""
    return f"{name}: !new:speechbrain.nnet.linear.Linear\n" + refs(
        4, input_size=inputs, n_neurons="output_neurons"
    )


def features(*options: str) -> str:
    """The global ``normalizer`` and the Fbank ``compute_features``, which also takes
    ``<options>``."""
    names = ("sample_rate", "n_fft", "n_mels", *options)
    return (
        "normalizer: !new:speechbrain.processing.features.InputNormalization\n"
        "    norm_type: global\n\n"
        "compute_features: !new:speechbrain.lobes.features.Fbank\n"
        + refs(4, **{n: n for n in names})
    )


def fbank_encoder(**parts: str) -> str:
    """The ``encoder`` chain: features, their normalization, then ``parts`` (name: key)."""
    return (
        "encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential\n"
        "    input_shape: [null, null, !ref <n_mels>]\n"
        + refs(4, compute_features="compute_features", normalize="normalizer", **parts)
    )


def scorer(full_scorers: list[str], **weights: str) -> str:
    """The ``ScorerBuilder`` of ``full_scorers`` with their ``weights`` (scorer: key)."""
    listed = ", ".join(f"!ref <{key}>" for key in full_scorers)
    return (
        "scorer: !new:speechbrain.decoders.scorer.ScorerBuilder\n"
        f"    full_scorers: [{listed}]\n"
        "    weights:\n" + refs(8, **weights)
    )


def beam_searcher(searcher: str, networks: str, beam_size: str, options: str) -> str:
    """The ``decoder``: ``speechbrain.decoders.<searcher>`` over ``networks`` (its first lines),
    bounded by the decoding ratios, with ``<beam_size>`` beams, ``options`` and the ``scorer``."""
    return (
        f"decoder: !new:speechbrain.decoders.{searcher}\n"
        + networks
        + refs(
            4,
            bos_index="bos_index",
            eos_index="eos_index",
            min_decode_ratio="min_decode_ratio",
            max_decode_ratio="max_decode_ratio",
            beam_size=beam_size,
        )
        + options
        + refs(4, scorer="scorer")
    )


def pretrainer(**loadables: str) -> str:
    """The ``Pretrainer`` of ``loadables`` (checkpoint name: key)."""
    return (
        "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
        "    loadables:\n" + refs(8, **loadables)
    )


_SEQ2SEQ_LOADABLES = pretrainer(
    normalizer="normalizer", asr="asr_model", lm="lm_model", tokenizer="tokenizer"
)

CRDNN_HPARAMS = (
    """\
# speechquant replica of speechbrain/asr-crdnn-rnnlm-librispeech ({size}); random weights.
sample_rate: 16000
n_fft: 400
n_mels: {n_mels}

activation: !name:torch.nn.LeakyReLU
dropout: 0.15
cnn_blocks: 2
cnn_channels: ({cnn_channels})
inter_layer_pooling_size: (2, 2)
cnn_kernelsize: (3, 3)
time_pooling_size: 4
rnn_class: !name:speechbrain.nnet.RNN.LSTM
rnn_layers: {rnn_layers}
rnn_neurons: {rnn_neurons}
rnn_bidirectional: True
dnn_blocks: 2
dnn_neurons: {dnn_neurons}
emb_size: {emb_size}
dec_neurons: {dec_neurons}
output_neurons: {vocab}
blank_index: 0

bos_index: 0
eos_index: 0
min_decode_ratio: 0.0
max_decode_ratio: {max_decode_ratio}
beam_size: {beam_size}
eos_threshold: 1.5
using_max_attn_shift: True
max_attn_shift: 240
lm_weight: 0.50
coverage_penalty: 1.5
temperature: 1.25
temperature_lm: 1.25

"""
    + features()
    + """
enc: !new:speechbrain.lobes.models.CRDNN.CRDNN
    input_shape: [null, null, !ref <n_mels>]
    activation: !ref <activation>
    dropout: !ref <dropout>
    cnn_blocks: !ref <cnn_blocks>
    cnn_channels: !ref <cnn_channels>
    cnn_kernelsize: !ref <cnn_kernelsize>
    inter_layer_pooling_size: !ref <inter_layer_pooling_size>
    time_pooling: True
    using_2d_pooling: False
    time_pooling_size: !ref <time_pooling_size>
    rnn_class: !ref <rnn_class>
    rnn_layers: !ref <rnn_layers>
    rnn_neurons: !ref <rnn_neurons>
    rnn_bidirectional: !ref <rnn_bidirectional>
    rnn_re_init: True
    dnn_blocks: !ref <dnn_blocks>
    dnn_neurons: !ref <dnn_neurons>

emb: !new:speechbrain.nnet.embedding.Embedding
    num_embeddings: !ref <output_neurons>
    embedding_dim: !ref <emb_size>

dec: !new:speechbrain.nnet.RNN.AttentionalRNNDecoder
    enc_dim: !ref <dnn_neurons>
    input_size: !ref <emb_size>
    rnn_type: gru
    attn_type: location
    hidden_size: !ref <dec_neurons>
    attn_dim: {attn_dim}
    num_layers: 1
    scaling: 1.0
    channels: {attn_channels}
    kernel_size: {attn_kernel}
    re_init: True
    dropout: !ref <dropout>

"""
    + linear("ctc_lin", "dnn_neurons")
    + "\n"
    + linear("seq_lin", "dec_neurons")
    + """
log_softmax: !new:speechbrain.nnet.activations.Softmax
    apply_log: True

lm_model: !new:speechbrain.lobes.models.RNNLM.RNNLM
    output_neurons: !ref <output_neurons>
    embedding_dim: !ref <emb_size>
    activation: !name:torch.nn.LeakyReLU
    dropout: 0.0
    rnn_layers: 2
    rnn_neurons: {lm_neurons}
    dnn_blocks: 1
    dnn_neurons: {lm_dnn}
    return_hidden: True

tokenizer: !new:sentencepiece.SentencePieceProcessor

asr_model: !new:torch.nn.ModuleList
    - [!ref <enc>, !ref <emb>, !ref <dec>, !ref <ctc_lin>, !ref <seq_lin>]

"""
    + fbank_encoder(model="enc")
    + """
coverage_scorer: !new:speechbrain.decoders.scorer.CoverageScorer
    vocab_size: !ref <output_neurons>

rnnlm_scorer: !new:speechbrain.decoders.scorer.RNNLMScorer
    language_model: !ref <lm_model>
    temperature: !ref <temperature_lm>

"""
    + scorer(["rnnlm_scorer", "coverage_scorer"], rnnlm="lm_weight", coverage="coverage_penalty")
    + "\n"
    + beam_searcher(
        "S2SRNNBeamSearcher",
        refs(4, embedding="emb", decoder="dec", linear="seq_lin"),
        "beam_size",
        refs(
            4,
            eos_threshold="eos_threshold",
            using_max_attn_shift="using_max_attn_shift",
            max_attn_shift="max_attn_shift",
            temperature="temperature",
        ),
    )
    + """
modules:
    normalizer: !ref <normalizer>
    encoder: !ref <encoder>
    decoder: !ref <decoder>
    lm_model: !ref <lm_model>

"""
    + _SEQ2SEQ_LOADABLES
)

CONFORMER_HPARAMS = (
    """\
# speechquant replica of speechbrain/asr-conformer-transformerlm-librispeech ({size}); random
# weights.
sample_rate: 16000
n_fft: 512
n_mels: {n_mels}
win_length: 32

d_model: {d_model}
nhead: {nhead}
num_encoder_layers: {encoder_layers}
num_decoder_layers: {decoder_layers}
d_ffn: {d_ffn}
transformer_dropout: 0.1
activation: !name:torch.nn.GELU
output_neurons: {vocab}

blank_index: 0
label_smoothing: 0.1
pad_index: 0
bos_index: 1
eos_index: 2

min_decode_ratio: 0.0
max_decode_ratio: {max_decode_ratio}
test_beam_size: {beam_size}
lm_weight: 0.60
ctc_weight_decode: 0.40

CNN: !new:speechbrain.lobes.models.convolution.ConvolutionFrontEnd
    input_shape: (8, 10, {n_mels})
    num_blocks: 2
    num_layers_per_block: 1
    out_channels: ({cnn_channels})
    kernel_sizes: (3, 3)
    strides: (2, 2)
    residuals: (False, False)

Transformer: !new:speechbrain.lobes.models.transformer.TransformerASR.TransformerASR
    input_size: {input_size}
    tgt_vocab: !ref <output_neurons>
    d_model: !ref <d_model>
    nhead: !ref <nhead>
    num_encoder_layers: !ref <num_encoder_layers>
    num_decoder_layers: !ref <num_decoder_layers>
    d_ffn: !ref <d_ffn>
    dropout: !ref <transformer_dropout>
    activation: !ref <activation>
    encoder_module: conformer
    attention_type: RelPosMHAXL
    normalize_before: True
    causal: False

"""
    + linear("ctc_lin", "d_model")
    + "\n"
    + linear("seq_lin", "d_model")
    + """
lm_model: !new:speechbrain.lobes.models.transformer.TransformerLM.TransformerLM
    vocab: !ref <output_neurons>
    d_model: {lm_d_model}
    nhead: {lm_nhead}
    num_encoder_layers: {lm_layers}
    num_decoder_layers: 0
    d_ffn: {lm_d_ffn}
    dropout: 0.0
    activation: !name:torch.nn.GELU
    normalize_before: False

tokenizer: !new:sentencepiece.SentencePieceProcessor

ctc_scorer: !new:speechbrain.decoders.scorer.CTCScorer
    eos_index: !ref <eos_index>
    blank_index: !ref <blank_index>
    ctc_fc: !ref <ctc_lin>

transformerlm_scorer: !new:speechbrain.decoders.scorer.TransformerLMScorer
    language_model: !ref <lm_model>
    temperature: 1.15

"""
    + scorer(
        ["transformerlm_scorer", "ctc_scorer"], ctc="ctc_weight_decode", transformerlm="lm_weight"
    )
    + "\n"
    + beam_searcher(
        "S2STransformerBeamSearcher",
        "    modules: [!ref <Transformer>, !ref <seq_lin>]\n",
        "test_beam_size",
        "    temperature: 1.15\n    using_eos_threshold: False\n    length_normalization: True\n",
    )
    + "\n"
    + features("win_length")
    + """
Tencoder: !new:speechbrain.lobes.models.transformer.TransformerASR.EncoderWrapper
    transformer: !ref <Transformer>

"""
    + fbank_encoder(cnn="CNN", transformer_encoder="Tencoder")
    + """
asr_model: !new:torch.nn.ModuleList
    - [!ref <CNN>, !ref <Transformer>, !ref <seq_lin>, !ref <ctc_lin>]

modules:
    compute_features: !ref <compute_features>
    normalizer: !ref <normalizer>
    pre_transformer: !ref <CNN>
    transformer: !ref <Transformer>
    asr_model: !ref <asr_model>
    lm_model: !ref <lm_model>
    encoder: !ref <encoder>
    decoder: !ref <decoder>

"""
    + _SEQ2SEQ_LOADABLES
)
