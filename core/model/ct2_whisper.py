"""Convert a CTranslate2 Whisper model (``model.bin``, float16) into a Hugging Face Whisper folder.

CTranslate2 Whisper models ship as ``model.bin`` (binary version 6) with ``config.json``,
``tokenizer.json`` and ``vocabulary.txt`` beside it; a large ``model.bin`` may be split into
parts that are concatenated in order. :func:`read_ct2_model` parses the weights and
:func:`convert_to_hf` writes a folder that ``WhisperForConditionalGeneration`` and
``WhisperProcessor`` load offline. English-only and multilingual models are both handled: the
tokenizer keeps every special token of the package, and a multilingual model gets its language
and task tokens in the generation config.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechquant.core.errors import SourceError

# CTranslate2 dtype codes -> numpy dtypes (5 = bfloat16 is read as raw uint16, then widened).
_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "<u2"}


@dataclass(frozen=True)
class Ct2Whisper:
    """The files of one CTranslate2 Whisper model.

    Attributes
    ----------
    model_parts : tuple[Path, ...]
        ``model.bin``, or its parts in the order they are concatenated.
    config, tokenizer, vocabulary : Path
        ``config.json`` (suppressed ids, language ids), ``tokenizer.json`` and
        ``vocabulary.txt`` (one token per id, timestamp tokens included).
    """

    model_parts: tuple[Path, ...]
    config: Path
    tokenizer: Path
    vocabulary: Path

    @classmethod
    def folder(cls, path: Path) -> Ct2Whisper:
        """The usual layout: ``model.bin`` and the three other files in one folder."""
        path = Path(path)
        return cls(
            (path / "model.bin",),
            path / "config.json",
            path / "tokenizer.json",
            path / "vocabulary.txt",
        )


class _Reader:
    """Sequential little-endian reader over the bytes of a ``model.bin``."""

    def __init__(self, data: bytearray, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise SourceError(f"{self.name} is truncated: not a complete CTranslate2 model file")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def uint(self, fmt: str) -> int:
        value: int = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def string(self) -> str:
        return bytes(self.take(self.uint("<H"))).rstrip(b"\0").decode("utf-8")


def _read_parts(parts: Sequence[Path]) -> bytearray:
    raw = bytearray()
    for part in parts:
        try:
            raw += Path(part).read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read CTranslate2 model {part}: {exc.strerror}") from exc
    return raw


def read_ct2_model(
    path: Path | Sequence[Path],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse a CTranslate2 (binary version 6) ``model.bin``.

    Parameters
    ----------
    path : Path or sequence of Path
        The ``model.bin`` file, or the parts of a split one in order (read as one file).

    Returns
    -------
    variables : dict[str, numpy.ndarray]
        Every stored variable by name, in its stored dtype (float16 weights stay float16; scalars
        such as ``encoder/num_heads`` are 0-d arrays; bfloat16 is widened to float32).
    aliases : dict[str, str]
        Alias name -> target variable name (e.g. the decoder output projection -> the embeddings).

    Raises
    ------
    SourceError
        If a file is missing, the whole is truncated or not a version-6 CTranslate2 model, or
        bytes are left over after the last alias (parts out of order or one too many).
    """
    parts = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    name = str(parts[0]) if len(parts) == 1 else " + ".join(str(p) for p in parts)
    reader = _Reader(_read_parts(parts), name)
    version = reader.uint("<I")
    if version != 6:
        raise SourceError(
            f"{name} is not a CTranslate2 model of binary version 6 (found {version})"
        )
    reader.string()  # spec name, e.g. "WhisperSpec"
    reader.uint("<I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.uint("<I")):
        var = reader.string()
        shape = tuple(reader.uint("<I") for _ in range(reader.uint("<B")))
        code = reader.uint("<B")
        if code not in _DTYPES:
            raise SourceError(f"{name}: variable {var} has unknown dtype code {code}")
        buffer = reader.take(reader.uint("<I"))
        array = np.frombuffer(buffer, dtype=np.dtype(_DTYPES[code])).reshape(shape)
        if code == 5:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[var] = array
    aliases = {}
    for _ in range(reader.uint("<I")):
        alias = reader.string()
        aliases[alias] = reader.string()
    if reader.pos != len(reader.data):
        raise SourceError(
            f"{name} has {len(reader.data) - reader.pos} bytes after the model; "
            "its parts are out of order or not of one model"
        )
    return variables, aliases


def _hf_state_dict(variables: dict[str, np.ndarray]) -> dict[str, Any]:
    """Map CTranslate2 Whisper variables onto ``WhisperModel`` parameter names (float32 tensors)."""
    import torch

    state: dict[str, Any] = {}

    def put(name: str, array: np.ndarray) -> None:
        state[name] = torch.from_numpy(np.array(array, dtype=np.float32))

    def linear(dst: str, src: str) -> None:
        put(f"{dst}.weight", variables[f"{src}/weight"])
        put(f"{dst}.bias", variables[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", variables[f"{src}/gamma"])
        put(f"{dst}.bias", variables[f"{src}/beta"])

    def fused(dst: str, src: str, parts: tuple[str, ...]) -> None:
        weights = np.split(variables[f"{src}/weight"], len(parts))
        biases = np.split(variables[f"{src}/bias"], len(parts))
        for part, weight, bias in zip(parts, weights, biases, strict=True):
            put(f"{dst}.{part}.weight", weight)
            if part != "k_proj":  # Whisper's key projections have no bias (CT2 stores zeros)
                put(f"{dst}.{part}.bias", bias)

    for side in ("encoder", "decoder"):
        put(f"{side}.embed_positions.weight", variables[f"{side}/position_encodings/encodings"])
        norm(f"{side}.layer_norm", f"{side}/layer_norm")
        for i in range(_count_layers(variables, side)):
            dst, src = f"{side}.layers.{i}", f"{side}/layer_{i}"
            fused(
                f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj")
            )
            linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
            linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
            norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
            if side == "decoder":
                linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
                fused(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k_proj", "v_proj"))
                linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
                norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    put("decoder.embed_tokens.weight", variables["decoder/embeddings/weight"])
    return state


def _count_layers(variables: dict[str, np.ndarray], side: str) -> int:
    return sum(
        1
        for name in variables
        if name.startswith(f"{side}/layer_") and name.endswith("/ffn/linear_0/weight")
    )


def _hf_config(
    variables: dict[str, np.ndarray], ids: dict[str, int], ct2_config: dict[str, Any]
) -> tuple[Any, Any]:
    """The ``WhisperConfig`` and ``GenerationConfig`` that fit the CT2 tensors and tokenizer."""
    from transformers import GenerationConfig, WhisperConfig

    vocab_size, d_model = variables["decoder/embeddings/weight"].shape
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    suppress = [int(t) for t in ct2_config.get("suppress_ids", [])]
    begin_suppress = [int(t) for t in ct2_config.get("suppress_ids_begin", [220, eot])]
    multilingual = vocab_size >= 51865  # the same test as transformers and SpeechBrain use
    bos = eot if multilingual else sot  # as in OpenAI's published HF configs
    ids_used: dict[str, Any] = {"pad_token_id": eot, "bos_token_id": bos, "eos_token_id": eot}
    ids_used["decoder_start_token_id"] = sot
    suppression: dict[str, Any] = {"suppress_tokens": suppress}
    suppression["begin_suppress_tokens"] = begin_suppress

    def size(name: str, axis: int) -> int:
        return int(variables[name].shape[axis])

    config = WhisperConfig(
        vocab_size=int(vocab_size),
        num_mel_bins=size("encoder/conv1/weight", 1),
        d_model=int(d_model),
        encoder_layers=_count_layers(variables, "encoder"),
        decoder_layers=_count_layers(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=size("encoder/layer_0/ffn/linear_0/weight", 0),
        decoder_ffn_dim=size("decoder/layer_0/ffn/linear_0/weight", 0),
        max_source_positions=size("encoder/position_encodings/encodings", 0),
        max_target_positions=size("decoder/position_encodings/encodings", 0),
        tie_word_embeddings=True,
        **ids_used,
        **suppression,
    )
    config.architectures = ["WhisperForConditionalGeneration"]
    generation: dict[str, Any] = {
        **ids_used,
        **suppression,
        "max_length": config.max_target_positions,
    }
    generation |= {"no_timestamps_token_id": ids["<|notimestamps|>"], "return_timestamps": False}
    generation |= {"prev_sot_token_id": ids["<|startofprev|>"], "is_multilingual": multilingual}
    if ct2_config.get("alignment_heads"):
        generation["alignment_heads"] = [list(h) for h in ct2_config["alignment_heads"]]
    if multilingual:  # English-only models get no language/task tokens at all
        lang_ids = set(ct2_config.get("lang_ids", []))
        generation["lang_to_id"] = {c: i for c, i in ids.items() if i in lang_ids}
        generation["task_to_id"] = {t: ids[f"<|{t}|>"] for t in ("transcribe", "translate")}
    return config, GenerationConfig(**generation)


def _write_tokenizer(source: Ct2Whisper, dest: Path, vocab_size: int) -> None:
    """Write ``tokenizer.json`` (+ timestamp tokens) and a portable ``tokenizer_config.json``."""
    from transformers import AddedToken, WhisperTokenizer

    tokenizer_file = source.tokenizer
    added = json.loads(tokenizer_file.read_text(encoding="utf-8"))["added_tokens"]
    eot = "<|endoftext|>"
    roles: dict[str, Any] = {f"{role}_token": eot for role in ("bos", "eos", "unk", "pad")}
    roles["additional_special_tokens"] = [
        t["content"] for t in added if t["special"] and t["content"] != eot
    ]
    tokenizer = WhisperTokenizer(tokenizer_file=str(tokenizer_file), **roles)
    # The package's tokenizer.json lacks the 1501 timestamp tokens <|0.00|> ... <|30.00|> that
    # vocabulary.txt (one token per id) ends with; add them as plain tokens as upstream Whisper does.
    vocabulary = source.vocabulary.read_text(encoding="utf-8").splitlines()
    tokenizer.add_tokens([AddedToken(v, normalized=False) for v in vocabulary[len(tokenizer) :]])
    if len(tokenizer) != vocab_size:
        raise SourceError(
            f"{tokenizer_file}: tokenizer has {len(tokenizer)} tokens, not {vocab_size}"
        )
    tokenizer.save_pretrained(str(dest))
    # Rewritten with the long-standing key names so transformers 4.x and 5.x both read them.
    _write_json(dest / "special_tokens_map.json", roles)
    settings = {
        "tokenizer_class": "WhisperTokenizer",
        "model_max_length": 1024,
        "errors": "replace",
    }
    settings |= {"add_prefix_space": False, "language": None, "task": None}
    _write_json(dest / "tokenizer_config.json", {**roles, **settings, "predict_timestamps": False})


def _write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert_to_hf(dest: Path, source: Ct2Whisper) -> Path:
    """Write a Hugging Face Whisper folder converted from a CTranslate2 Whisper model.

    Parameters
    ----------
    dest : Path
        Folder to write (created if needed): ``config.json``, ``model.safetensors``,
        ``generation_config.json``, ``preprocessor_config.json`` and the tokenizer files.
    source : Ct2Whisper
        The CTranslate2 model's files.

    Returns
    -------
    Path
        ``dest``, loadable with ``WhisperForConditionalGeneration.from_pretrained(dest)`` and
        ``WhisperProcessor.from_pretrained(dest)`` offline.
    """
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    dest = Path(dest)
    variables, aliases = read_ct2_model(source.model_parts)
    if aliases.get("decoder/projection/weight") not in (None, "decoder/embeddings/weight"):
        raise SourceError(
            f"{source.model_parts[0]}: decoder projection is not tied to the embeddings"
        )
    added = json.loads(source.tokenizer.read_text(encoding="utf-8"))["added_tokens"]
    ids = {token["content"]: int(token["id"]) for token in added}
    ct2_config = json.loads(source.config.read_text(encoding="utf-8"))
    config, generation = _hf_config(variables, ids, ct2_config)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.model.load_state_dict(_hf_state_dict(variables), strict=True, assign=True)
    del variables
    model.tie_weights()
    model.generation_config = generation
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest))
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(str(dest))
    _write_tokenizer(source, dest, config.vocab_size)
    # transformers writes the weights owner-only; give them the umask-derived mode of the rest
    (dest / "model.safetensors").chmod((dest / "config.json").stat().st_mode & 0o777)
    return dest
