"""Checks that keep loading an export from running code: YAML allowlist, JSON schema, file hashes.

An export's ``hyperparams.yaml`` is data. SpeechBrain's HyperPyYAML would construct any class a
``!new:``/``!name:`` tag names, call any function an ``!apply:`` tag names, include other files and
even unpickle Python objects (its tuple literals go through PyYAML's unsafe loader). So the file is
composed with PyYAML's *safe* composer (which builds no object), every node is checked against an
explicit allowlist, and only the re-serialized, checked node graph is handed to HyperPyYAML.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from speechquant.core.errors import ExportError
from speechquant.core.model.trust import walk_nodes as walk

FORMAT = "speechquant-export"
FORMAT_VERSION = 1
METADATA = "metadata.json"
PLAN_FILE = "plan.json"
STATE_FILE = "quantized_state.pt"
HPARAMS = "hyperparams.yaml"
BACKBONE_DIR = "backbone"

#: What SpeechBrain's attentional encoder-decoder models are built of: features and their
#: normalization, CRDNN and conformer/transformer encoders, RNN and transformer decoders and
#: language models, and the beam searchers with their scorers. Every one builds its parameters
#: from sizes alone, so an export's skeleton is made without float weights.
SEQ2SEQ_CALLABLES = (
    "speechbrain.lobes.features.Fbank",
    "speechbrain.processing.features.InputNormalization",
    "speechbrain.lobes.models.CRDNN.CRDNN",
    "speechbrain.lobes.models.RNNLM.RNNLM",
    "speechbrain.lobes.models.convolution.ConvolutionFrontEnd",
    "speechbrain.lobes.models.transformer.TransformerASR.TransformerASR",
    "speechbrain.lobes.models.transformer.TransformerASR.EncoderWrapper",
    "speechbrain.lobes.models.transformer.TransformerLM.TransformerLM",
    "speechbrain.nnet.RNN.LSTM",
    "speechbrain.nnet.RNN.GRU",
    "speechbrain.nnet.RNN.AttentionalRNNDecoder",
    "speechbrain.nnet.embedding.Embedding",
    "speechbrain.decoders.S2SRNNBeamSearcher",
    "speechbrain.decoders.seq2seq.S2SRNNBeamSearcher",
    "speechbrain.decoders.S2STransformerBeamSearcher",
    "speechbrain.decoders.seq2seq.S2STransformerBeamSearcher",
    "speechbrain.decoders.scorer.ScorerBuilder",
    "speechbrain.decoders.scorer.CTCScorer",
    "speechbrain.decoders.scorer.RNNLMScorer",
    "speechbrain.decoders.scorer.TransformerLMScorer",
    "speechbrain.decoders.scorer.CoverageScorer",
)
#: Classes and functions an export's hyperparams.yaml may construct (``!new:``) or name (``!name:``).
ALLOWED_CALLABLES = frozenset(
    {
        "speechbrain.nnet.containers.Sequential",
        "speechbrain.nnet.containers.LengthsCapableSequential",
        "speechbrain.nnet.linear.Linear",
        "speechbrain.nnet.normalization.BatchNorm1d",
        "speechbrain.nnet.normalization.LayerNorm",
        "speechbrain.nnet.activations.Softmax",
        "speechbrain.decoders.ctc_greedy_decode",
        "speechbrain.decoders.ctc.ctc_greedy_decode",
        "speechbrain.decoders.seq2seq.S2SWhisperGreedySearcher",
        "speechbrain.utils.parameter_transfer.Pretrainer",
        "torch.nn.LeakyReLU",
        "torch.nn.ReLU",
        "torch.nn.GELU",
        "torch.nn.Dropout",
        "torch.nn.LogSoftmax",
        "torch.nn.ModuleList",
        "sentencepiece.SentencePieceProcessor",
        *SEQ2SEQ_CALLABLES,
    }
)
#: Hugging Face backbone lobes -> (skeleton class built from config only, keyword arguments allowed).
HF_LOBES: dict[str, tuple[str, frozenset[str]]] = {
    "speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2": (
        "speechquant.core.export.skeleton.Wav2Vec2",
        frozenset(
            {
                "source",
                "save_path",
                "output_norm",
                "freeze",
                "freeze_feature_extractor",
                "apply_spec_augment",
                "output_all_hiddens",
            }
        ),
    ),
    "speechbrain.integrations.huggingface.whisper.Whisper": (
        "speechquant.core.export.skeleton.Whisper",
        frozenset(
            {
                "source",
                "save_path",
                "sampling_rate",
                "encoder_only",
                "freeze",
                "freeze_encoder",
                "output_attentions",
                "output_all_hiddens",
                "language",
                "task",
            }
        ),
    ),
}
HF_MODEL_TYPES = frozenset({"wav2vec2", "whisper"})
HF_FILE_SUFFIXES = (".json", ".txt")
_CORE = "tag:yaml.org,2002:"
_DATA_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}
_REF = re.compile(r"<([^<>]*)>")
_REF_NAME = re.compile(r"[A-Za-z_]\w*(\[[\w-]+\])*")
_TUPLE = re.compile(r"^\(.*\)$")
_TUPLE_SAFE = re.compile(r"^\([\w\s.,+-]*\)$")
_SAFE_PART = re.compile(r"^[\w][\w.-]*$")


def _refuse(origin: str, what: str) -> ExportError:
    return ExportError(
        f"{origin} {what}, which the export allowlist does not permit (nothing was constructed); "
        "only models built from speechquant's allowed classes can be exported and loaded"
    )


def compose_hyperparams(text: str, origin: str) -> yaml.MappingNode:
    """Compose ``text`` into YAML nodes (no object is built) and check every node."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ExportError(
            f"{origin} is not valid YAML ({str(exc).splitlines()[0]}); re-export the model"
        ) from None
    if not isinstance(root, yaml.MappingNode):
        raise ExportError(f"{origin} does not hold a mapping of hyperparameters; re-export it")
    for node in walk(root):
        _check_node(node, origin)
    return root


def _check_node(node: yaml.Node, origin: str) -> None:
    tag = node.tag
    if tag.startswith(("!new:", "!name:")):
        path = tag.split(":", 1)[1]
        if path not in ALLOWED_CALLABLES and path not in HF_LOBES:
            raise _refuse(origin, f"names the class {path!r} ({tag})")
        if path in HF_LOBES:
            _check_lobe(node, path, origin)
        return
    if isinstance(node, yaml.MappingNode):
        if tag != _CORE + "map":
            raise _refuse(origin, f"uses the YAML tag {tag!r}")
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag != _CORE + "str":
                raise _refuse(origin, "has a mapping key that is not a plain name")
    elif isinstance(node, yaml.SequenceNode):
        if tag != _CORE + "seq":
            raise _refuse(origin, f"uses the YAML tag {tag!r}")
    elif tag in ("!ref", "!copy"):
        _check_reference(node.value, origin)
    elif tag == "!tuple" or (tag == _CORE + "str" and _TUPLE.match(node.value)):
        if not _TUPLE_SAFE.match(node.value):
            raise _refuse(origin, f"has a tuple literal {node.value!r} with more than plain values")
    elif tag not in _DATA_TAGS:
        raise _refuse(origin, f"uses the YAML tag {tag!r}")


def _check_reference(value: str, origin: str) -> None:
    names = _REF.findall(value)
    if not names or "**" in value or any(not _REF_NAME.fullmatch(n) for n in names):
        raise _refuse(origin, f"has a reference {value!r} that is not a plain <key> reference")


def _check_lobe(node: yaml.Node, path: str, origin: str) -> None:
    if not isinstance(node, yaml.MappingNode):
        raise _refuse(origin, f"passes positional arguments to {path}")
    allowed = HF_LOBES[path][1]
    for key, _ in node.value:
        if key.value not in allowed:
            raise _refuse(origin, f"passes {key.value!r} to {path}")


def lobe_nodes(root: yaml.MappingNode) -> list[tuple[str, yaml.MappingNode]]:
    """``(top-level key, node)`` of every HF backbone lobe; lobes must sit at the top level."""
    top = {id(value): key.value for key, value in root.value}
    found = []
    for node in walk(root):
        if node.tag.startswith("!new:") and node.tag.split(":", 1)[1] in HF_LOBES:
            if id(node) not in top:
                raise ExportError(
                    f"the Hugging Face backbone {node.tag[5:]} is not a top-level hyperparameter; "
                    "speechquant exports only models that define it at the top level"
                )
            assert isinstance(node, yaml.MappingNode)
            found.append((top[id(node)], node))
    return found


def mapping_get(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in node.value:
        if k.value == key:
            return v
    return None


def set_scalar(node: yaml.MappingNode, key: str, value: str) -> None:
    """Set (or add) ``key`` to the plain string ``value``."""
    scalar = yaml.ScalarNode(_CORE + "str", value, style='"')
    for i, (k, _) in enumerate(node.value):
        if k.value == key:
            node.value[i] = (k, scalar)
            return
    node.value.append((yaml.ScalarNode(_CORE + "str", key), scalar))


def serialize(root: yaml.Node) -> str:
    return str(yaml.serialize(root, Dumper=yaml.SafeDumper))


def safe_relative(name: Any, origin: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside the export folder."""
    path = PurePosixPath(name) if isinstance(name, str) else None
    if path is None or not path.parts or not all(_SAFE_PART.match(p) for p in path.parts):
        raise ExportError(f"{origin} names the file {name!r}, which is not inside the export")
    return path


def normalizer_statistics(normalizer: Any) -> dict[str, Any]:
    """An ``InputNormalization``'s running statistics (not in its state_dict) as plain data."""
    import torch

    mean, std = normalizer.glob_mean, normalizer.glob_std
    if not (isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor)) or mean.numel() == 0:
        raise ExportError(
            "the model's input normalizer has no statistics (it was never loaded or trained); "
            "open the model from a folder with its normalizer.ckpt"
        )
    return {
        "count": int(normalizer.count),
        "glob_mean": mean.detach().clone(),
        "glob_std": std.detach().clone(),
    }


def read_normalizer_statistics(path: Path, origin: str) -> dict[str, Any]:
    """Statistics written by :func:`normalizer_statistics`, read as tensors only and checked."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise ExportError(
            f"{origin} holds more than normalizer statistics and was refused; re-export the model"
        ) from None
    ok = (
        isinstance(state, dict)
        and set(state) == {"count", "glob_mean", "glob_std"}
        and isinstance(state["count"], int)
        and not isinstance(state["count"], bool)
        and all(isinstance(state[k], torch.Tensor) for k in ("glob_mean", "glob_std"))
    )
    if (
        not ok
        or state["glob_mean"].shape != state["glob_std"].shape
        or state["glob_mean"].ndim != 1
    ):
        raise ExportError(
            f"{origin} is not an input normalizer's statistics (count, glob_mean, glob_std of one "
            "shape); re-export the model"
        )
    return dict(state)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json_object(path: Path, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{origin} is not readable JSON ({exc}); re-export the model") from None
    if not isinstance(data, dict):
        raise ExportError(f"{origin} does not hold a JSON object; re-export the model")
    return data


def check_hf_folder(folder: Path, origin: str) -> None:
    """A backbone folder holds only JSON/text config, no remote code, a known model type."""
    for path in folder.iterdir():
        if not path.is_file() or path.suffix not in HF_FILE_SUFFIXES:
            raise ExportError(
                f"{origin}/{path.name} is not a backbone config file (only "
                f"{', '.join(HF_FILE_SUFFIXES)}); remove it or re-export the model"
            )
        if path.suffix == ".json":
            data = read_json_object(path, f"{origin}/{path.name}")
            if "auto_map" in data:
                raise ExportError(
                    f"{origin}/{path.name} asks for custom model code (auto_map), which exports "
                    "never run; re-export the model"
                )
    config = read_json_object(folder / "config.json", f"{origin}/config.json")
    if config.get("model_type") not in HF_MODEL_TYPES:
        raise ExportError(
            f"{origin}/config.json has model_type {config.get('model_type')!r}; exports support "
            f"{', '.join(sorted(HF_MODEL_TYPES))}"
        )


#: metadata.json keys and their JSON types (version 1).
METADATA_SCHEMA: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "version": (int,),
    "created_at": (str,),
    "source": (str,),
    "interface": (str,),
    "sample_rate": (int,),
    "versions": (dict,),
    "quantized_engine": (str,),
    "plan_name": (str,),
    "scheme_summary": (dict,),
    "settings": (dict,),
    "calibration_ids": (list,),
    "metrics": (dict, type(None)),
    "state_bytes": (int,),
    "loadables": (dict,),
    "files": (dict,),
}


def check_metadata_schema(data: dict[str, Any], origin: str) -> None:
    """Raise :class:`ExportError` unless ``data`` has exactly the version-1 keys and types."""
    missing = sorted(set(METADATA_SCHEMA) - set(data))
    extra = sorted(set(data) - set(METADATA_SCHEMA))
    if missing or extra:
        raise ExportError(
            f"{origin} has missing keys {missing} / unknown keys {extra}; re-export the model"
        )
    for key, types in METADATA_SCHEMA.items():
        if not isinstance(data[key], types) or isinstance(data[key], bool):
            raise ExportError(f"{origin}: '{key}' has the wrong type; re-export the model")
    for key in ("versions", "loadables", "files"):
        if not all(isinstance(v, str) for v in data[key].values()):
            raise ExportError(f"{origin}: '{key}' must map names to strings; re-export the model")
    if not all(isinstance(i, str) for i in data["calibration_ids"]):
        raise ExportError(f"{origin}: 'calibration_ids' must be strings; re-export the model")
    if not all(re.fullmatch(r"[0-9a-f]{64}", h) for h in data["files"].values()):
        raise ExportError(f"{origin}: 'files' must map paths to sha256 digests; re-export it")
