"""Reading an export folder back: metadata, checksums, plan, skeleton, state (used by export.loader)."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from speechquant.core.errors import ExportError, PlanError, SourceError, SpeechquantWarning
from speechquant.core.export import packed_rnn, safety
from speechquant.core.export.meta import assign_state, meta_tensors, parameters_on_meta
from speechquant.core.export.safety import (
    BACKBONE_DIR,
    FORMAT,
    FORMAT_VERSION,
    HPARAMS,
    METADATA,
    PLAN_FILE,
    STATE_FILE,
)
from speechquant.core.model.loaded import (
    INTERFACES,
    LoadedModel,
    _interface_class,
    detect_interface,
)
from speechquant.core.quantization.plan import Plan


class ExportVersionWarning(SpeechquantWarning):
    """An export made with another torch or speechbrain version than the one loading it."""


def versions() -> dict[str, str]:
    import speechbrain
    import transformers

    try:
        own = importlib_metadata.version("speechquant")
    except importlib_metadata.PackageNotFoundError:
        own = "unknown"
    return {
        "torch": torch.__version__,
        "speechbrain": str(speechbrain.__version__),
        "transformers": str(transformers.__version__),
        "speechquant": own,
    }


def read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / METADATA
    if not path.is_file():
        raise ExportError(f"{path} is missing; {folder} is not a complete speechquant export")
    data = safety.read_json_object(path, str(path))
    if data.get("format") != FORMAT:
        raise ExportError(f'{path} is not a speechquant export (no "format": "{FORMAT}")')
    if data.get("version") != FORMAT_VERSION:
        raise ExportError(
            f"{path} has export format version {data.get('version')!r}; this speechquant reads "
            f"version {FORMAT_VERSION}: upgrade speechquant or re-export the model"
        )
    safety.check_metadata_schema(data, str(path))
    for rel in [*data["files"], *data["loadables"].values()]:
        safety.safe_relative(rel, str(path))
    missing = {PLAN_FILE, HPARAMS, STATE_FILE} - set(data["files"])
    missing |= set(data["loadables"].values()) - set(data["files"])
    if missing:
        raise ExportError(f"{path} does not list {sorted(missing)}; re-export the model")
    return data


def _file(folder: Path, rel: str) -> Path:
    path = folder / rel
    if path.is_symlink() or not path.is_file():
        raise ExportError(
            f"{path} is missing from the export (or not a plain file); copy the whole export "
            "folder again or re-export the model"
        )
    return path


def _tampered(path: Path) -> ExportError:
    return ExportError(
        f"{path} does not match its sha256 in {METADATA} (changed or damaged); restore the "
        "original file or re-export the model"
    )


def verify_files(folder: Path, meta: dict[str, Any], skip: set[str]) -> None:
    """Every listed file present and unchanged, no unlisted file, no symlink."""
    listed = set(meta["files"])
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink() or (path.is_file() and rel not in listed | {METADATA}):
            raise ExportError(
                f"{path} is not listed in {METADATA}; remove it (exports hold only listed files)"
            )
    for rel, digest in sorted(meta["files"].items()):
        if rel not in skip and safety.sha256_file(_file(folder, rel)) != digest:
            raise _tampered(folder / rel)


def read_verified(folder: Path, meta: dict[str, Any], rel: str) -> bytes:
    data = _file(folder, rel).read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["files"][rel]:
        raise _tampered(folder / rel)
    return data


def version_warnings(folder: Path, meta: dict[str, Any]) -> list[str]:
    here = versions()
    found = []
    for name in ("torch", "speechbrain"):
        there = meta["versions"].get(name)
        if there != here[name]:
            message = (
                f"{folder} was exported with {name} {there} but this is {name} {here[name]}; "
                "quantized results may differ: re-export the model with this version if they do"
            )
            warnings.warn(message, ExportVersionWarning, stacklevel=3)
            found.append(message)
    return found


def read_plan(folder: Path, meta: dict[str, Any], data: bytes) -> Plan:
    origin = str(folder / PLAN_FILE)
    try:
        plan = Plan.from_dict(json.loads(data.decode("utf-8")), origin=origin)
    except (ValueError, PlanError) as exc:
        raise ExportError(f"{origin} is not a usable plan ({exc}); re-export the model") from None
    if (
        plan.to_dict()["settings"] != meta["settings"]
        or plan.settings.engine != meta["quantized_engine"]
    ):
        raise ExportError(f"{origin} and {METADATA} disagree on the settings; re-export the model")
    return plan


def interface_of(root: yaml.MappingNode, folder: Path, meta: dict[str, Any]) -> str:
    top = {
        key.value: ({k.value: None for k, _ in v.value} if isinstance(v, yaml.MappingNode) else v)
        for key, v in root.value
    }
    try:
        found = detect_interface(top, folder / HPARAMS)
    except SourceError as exc:
        raise ExportError(str(exc)) from None
    if found != meta["interface"] or found not in INTERFACES:
        raise ExportError(
            f"{folder / HPARAMS} describes a {found} model but {METADATA} says "
            f"{meta['interface']}; re-export the model"
        )
    return found


def build_skeleton(
    folder: Path, root: yaml.MappingNode, meta: dict[str, Any], interface: str
) -> LoadedModel:
    """The float model's structure, built from the checked YAML and backbone configs.

    Its parameters are on the meta device (no storage): :func:`load_state` fills them.
    """
    for _, lobe in safety.lobe_nodes(root):
        node = safety.mapping_get(lobe, "source")
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        rel = safety.safe_relative(value, str(folder / HPARAMS))
        backbone = folder / rel
        if rel.parts[0] != BACKBONE_DIR or not backbone.is_dir():
            raise ExportError(
                f"{folder / HPARAMS} points a backbone at {value!r}, not at a folder under "
                f"{BACKBONE_DIR}/; re-export the model"
            )
        safety.check_hf_folder(backbone, str(backbone))
        for field in ("source", "save_path"):
            safety.set_scalar(lobe, field, str(backbone))
        lobe.tag = "!new:" + safety.HF_LOBES[lobe.tag.split(":", 1)[1]][0]
    from hyperpyyaml import load_hyperpyyaml

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with parameters_on_meta():
                hparams = load_hyperpyyaml(safety.serialize(root))
            _load_loadables(folder, hparams, meta)
            # Built without modules (it would move them to the device), which are set after.
            asr = _interface_class(interface)(
                modules=None, hparams=hparams, run_opts={"device": "cpu"}
            )
            asr.mods = nn.ModuleDict(hparams["modules"])
            for param in asr.mods.parameters():
                param.requires_grad_(False)
    except ExportError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"could not rebuild the model from {folder / HPARAMS}: {first}; re-export the model"
        ) from exc
    asr.mods.eval()
    rate = hparams.get("sample_rate")
    return LoadedModel(
        asr=asr,
        source=str(folder),
        interface=interface,
        folder=folder,
        sample_rate=rate if isinstance(rate, int) and not isinstance(rate, bool) else 16000,
    )


def _load_loadables(folder: Path, hparams: dict[str, Any], meta: dict[str, Any]) -> None:
    from sentencepiece import SentencePieceProcessor
    from speechbrain.processing.features import InputNormalization
    from speechbrain.utils.parameter_transfer import Pretrainer

    pretrainer = hparams.get("pretrainer")
    for name, rel in meta["loadables"].items():
        obj = pretrainer.loadables.get(name) if isinstance(pretrainer, Pretrainer) else None
        if isinstance(obj, InputNormalization):
            state = safety.read_normalizer_statistics(folder / rel, str(folder / rel))
            obj._load_statistics_dict(state)
            continue
        if pretrainer is None or not isinstance(obj, SentencePieceProcessor):
            raise ExportError(
                f"{folder / METADATA} lists the loadable '{name}', which {HPARAMS} does not define "
                "as a sentencepiece tokenizer or an input normalizer; re-export the model"
            )
        obj.load(str(folder / rel))
        pretrainer.paths[name] = str(folder / rel)


def read_state(folder: Path, meta: dict[str, Any]) -> Mapping[str, Any]:
    """The exported state, memory-mapped from its file once the file's sha256 is checked.

    No second copy of the file is made: tensors are views of the mapping until
    :func:`load_state` hands them to the model (see :func:`release_mapping`).
    """
    path = _file(folder, STATE_FILE)
    if safety.sha256_file(path) != meta["files"][STATE_FILE]:
        raise _tampered(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"{path} holds more than tensors and was refused ({first[:160]}); "
            "re-export the model (never load it with weights_only=False)"
        ) from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise ExportError(f"{path} is not a state_dict; re-export the model")
    return release_mapping(state)


def release_mapping(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` with its kept-as-is tensors copied out of the file mapping when they are few.

    Quantized tensors are repacked by their modules on load, so their pages are needed only
    while loading; tensors the model keeps as they are (float, bfloat16) would hold the whole
    mapping, repacked weights included, for the model's lifetime. When those kept tensors are
    the smaller part of the file they are copied (:func:`copy_kept_tensors`), and the file is
    unmapped once the state is dropped; when they are the larger part they stay mapped (not
    copied at all).
    """
    leaves = [x for x in tree_flatten(list(state.values()))[0] if isinstance(x, torch.Tensor)]
    kept = sum(t.nbytes for t in leaves if not t.is_quantized)
    repacked = sum(t.nbytes for t in leaves if t.is_quantized)
    return copy_kept_tensors(state) if kept < repacked else state


def copy_kept_tensors(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` with every tensor that is not quantized copied (nested ones too), once each."""
    copies: dict[int, torch.Tensor] = {}

    def copy(value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.is_quantized:
            return value
        if id(value) not in copies:
            copies[id(value)] = value.clone()
        return copies[id(value)]

    copied: Any = OrderedDict((k, tree_map(copy, v)) for k, v in state.items())
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        copied._metadata = metadata
    return copied


def module_aliases(mods: nn.Module) -> dict[str, str]:
    """Second paths to a module (SpeechBrain's searchers hold the model again) -> its first path."""
    first: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for path, module in mods.named_modules(remove_duplicate=False):
        if id(module) in first and path:
            if not any(path.startswith(alias + ".") for alias in aliases):
                aliases[path] = first[id(module)]
        else:
            first.setdefault(id(module), path)
    return aliases


def unique_state(mods: nn.Module) -> dict[str, Any]:
    """``mods.state_dict()`` without the entries reached through an alias path (stored once).

    The per-module version metadata (``_metadata``) is kept: quantized modules read it to load.
    """
    aliases = tuple(alias + "." for alias in module_aliases(mods))
    state = mods.state_dict()
    kept: Any = OrderedDict((k, v) for k, v in state.items() if not k.startswith(aliases))
    meta = getattr(state, "_metadata", None)
    if meta is not None:
        kept._metadata = OrderedDict(
            (k, v) for k, v in meta.items() if not (k + ".").startswith(aliases)
        )
    return kept


@contextmanager
def _aliases_detached(mods: nn.Module) -> Iterator[None]:
    """The alias paths emptied for the duration, so that each module loads its state once.

    Loading through an alias would repack the same module's quantized weights a second time.
    """
    slots = []
    for alias in module_aliases(mods):
        parent_path, _, name = alias.rpartition(".")
        parent = mods.get_submodule(parent_path) if parent_path else mods
        slots.append((parent, name, parent._modules[name]))
    for parent, name, _ in slots:
        parent._modules[name] = None
    try:
        yield
    finally:
        for parent, name, module in slots:
            parent._modules[name] = module


def load_state(folder: Path, mods: nn.Module, state: Mapping[str, Any]) -> None:
    path = folder / STATE_FILE
    state = packed_rnn.packed_state(mods, state, str(path))
    try:
        with _aliases_detached(mods):
            result = assign_state(mods, state)
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
        raise ExportError(
            f"{path} does not fit the model built from the plan ({detail[:200]}); re-export the model"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise ExportError(
            f"{path} does not fit the model built from the plan ({len(result.missing_keys)} missing "
            f"keys e.g. {result.missing_keys[:2]}, {len(result.unexpected_keys)} unexpected e.g. "
            f"{result.unexpected_keys[:2]}); re-export the model"
        )
    unfilled = meta_tensors(mods)
    if unfilled:
        raise ExportError(
            f"{path} does not fill {len(unfilled)} weights of the model built from the plan "
            f"(e.g. {unfilled[:2]}); re-export the model"
        )
