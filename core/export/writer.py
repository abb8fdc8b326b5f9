"""Export a quantized model as one folder (layout and checks: see ``export.loader``)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from speechquant.core.errors import ExportError
from speechquant.core.export import packed_rnn, reader, safety
from speechquant.core.export.loader import is_export_folder
from speechquant.core.export.reader import ExportVersionWarning
from speechquant.core.export.safety import (
    BACKBONE_DIR,
    FORMAT,
    FORMAT_VERSION,
    HPARAMS,
    METADATA,
    PLAN_FILE,
    STATE_FILE,
)
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.paths import building_folder
from speechquant.core.progress import ProgressCallback, report
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.scorers import scorer_modules

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ExportVersionWarning",
    "export_model",
    "export_quantized",
]


def export_quantized(
    model: LoadedModel,
    plan: Plan,
    out: str | Path,
    calibration: Iterable[torch.Tensor] | None = None,
    *,
    calibration_ids: list[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> Path:
    """Quantize the float ``model`` by ``plan`` (calibrating on ``calibration``) and export it."""
    if model.metadata.get("format") == FORMAT or model.plan is not None:
        raise ExportError(
            _export_of_export(model)
            if model.metadata.get("format") == FORMAT
            else f"{model.source} is already quantized; pass the float model to export_quantized"
        )
    variant = apply_plan(model, plan, calibration, progress=progress)
    return export_model(
        variant,
        out,
        calibration_ids=calibration_ids,
        metrics=metrics,
        progress=progress,
        overwrite=overwrite,
    )


def export_model(
    model: LoadedModel,
    out: str | Path,
    *,
    calibration_ids: list[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the quantized ``model`` (``model.plan`` set) to the new folder ``out``.

    ``metrics`` is a benchmark result (evaluation.bench); its per-utterance rows and plan copy are left
    out. The folder is written beside ``out`` and renamed into place, so a failed export leaves
    nothing behind. An existing ``out`` is refused unless it is empty, or an earlier export and
    ``overwrite`` is True. Returns ``out``.
    """
    plan = model.plan
    if not isinstance(plan, Plan):
        raise ExportError(
            "the model is not quantized (it has no plan); apply a plan first or use export_quantized"
        )
    if model.folder is None or not (Path(model.folder) / HPARAMS).is_file():
        raise ExportError(
            f"model {model.source} has no local folder with {HPARAMS}; open it from a model folder"
        )
    folder = Path(model.folder)
    out = Path(out).resolve()
    _check_target(out, overwrite)
    kept_metrics = _clean_metrics(metrics)
    root = safety.compose_hyperparams((folder / HPARAMS).read_text(), str(folder / HPARAMS))
    _check_scorers(model.mods)
    loadables = _loadable_files(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    with building_folder(out) as tmp:
        report(progress, 0, 3, "exporting: configuration")
        _write_backbones(root, folder, tmp)
        _write_language(root, model.language)
        (tmp / HPARAMS).write_text(safety.serialize(root), encoding="utf-8")
        for name, what in loadables.items():
            _write_loadable(tmp / f"{name}.ckpt", what)
        plan.save(tmp / PLAN_FILE)
        report(progress, 1, 3, "exporting: quantized weights")
        state = packed_rnn.plain_state(model.mods, reader.unique_state(model.mods))
        torch.save(state, tmp / STATE_FILE)
        report(progress, 2, 3, "exporting: checksums")
        files = {
            p.relative_to(tmp).as_posix(): safety.sha256_file(p)
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": model.source,
            "interface": model.interface,
            "sample_rate": model.sample_rate,
            "versions": reader.versions(),
            "quantized_engine": plan.settings.engine,
            "plan_name": plan.name,
            "scheme_summary": plan.summary(),
            "settings": plan.to_dict()["settings"],
            "calibration_ids": [str(i) for i in calibration_ids or []],
            "metrics": kept_metrics,
            "state_bytes": (tmp / STATE_FILE).stat().st_size,
            "loadables": {name: f"{name}.ckpt" for name in loadables},
            "files": files,
        }
        (tmp / METADATA).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        report(progress, 3, 4, "exporting: loading the export back to verify it")
        _verify(model, tmp)
    report(progress, 4, 4, f"exported to {out}")
    return out


def _export_of_export(model: LoadedModel) -> str:
    return (
        f"{model.source} is already an export (quantized by the plan "
        f"'{model.metadata.get('plan_name')}'); export from the float model it was made from "
        f"({model.metadata.get('source')}) with the plan you want"
    )


def _verify(model: LoadedModel, folder: Path) -> None:
    """Load ``folder`` back and check it computes what ``model`` computes (else nothing is kept)."""
    from speechquant.core.export.loader import load_quantized

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExportVersionWarning)
            loaded = load_quantized(folder)
    except ExportError as exc:
        raise ExportError(f"the export did not load back, so nothing was written: {exc}") from None
    generator = torch.Generator().manual_seed(0)
    wav = 0.1 * torch.randn(model.sample_rate, generator=generator)
    with torch.no_grad():
        same = torch.equal(model.encode(wav), loaded.encode(wav))
        if same and model.interface == "EncoderDecoderASR":
            # the beam search reaches modules outside the encoder (scorers' language models)
            same = model.transcribe(wav) == loaded.transcribe(wav)
    if loaded.language != model.language:
        raise ExportError(
            f"the export loaded back with language {loaded.language} instead of "
            f"{model.language}, so nothing was written; report this with the model"
        )
    if not same:
        raise ExportError(
            "the export loaded back but computes other outputs than the model, so nothing was "
            "written; report this with the plan"
        )


def _check_target(out: Path, overwrite: bool) -> None:
    if not (out.exists() or out.is_symlink()):
        return
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        return
    if overwrite and out.is_dir() and is_export_folder(out):
        return
    raise ExportError(
        f"{out} already exists; choose a new folder (an earlier export is replaced with --force "
        "on the command line, overwrite=True in Python)"
    )


def _clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    kept = {k: v for k, v in metrics.items() if k not in ("utterances", "plan")}
    try:
        result: dict[str, Any] = json.loads(json.dumps(kept, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise ExportError(
            f"the metrics cannot be stored as JSON ({exc}); pass plain values"
        ) from None
    return result


def _loadable_files(model: LoadedModel) -> dict[str, Path | dict[str, Any]]:
    """What to write for each non-module loadable of the pretrainer, by its name.

    A sentencepiece tokenizer is copied (its path); an ``InputNormalization`` (a module whose
    statistics are not in its state_dict) is written as its statistics. Weights of module
    loadables outside the model's modules are left out: inference reaches only the modules and
    their searchers' scorers, and :func:`_check_scorers` makes sure those hold nothing else.
    """
    hparams = model.asr.hparams
    pretrainer = getattr(hparams, "pretrainer", None)
    if pretrainer is None:
        return {}
    from sentencepiece import SentencePieceProcessor
    from speechbrain.processing.features import InputNormalization

    files: dict[str, Path | dict[str, Any]] = {}
    for name, obj in pretrainer.loadables.items():
        if isinstance(obj, InputNormalization):
            safety.safe_relative(name, "the pretrainer")
            files[name] = safety.normalizer_statistics(obj)
            continue
        if isinstance(obj, nn.Module):
            continue
        path = pretrainer.paths.get(name)
        if not isinstance(obj, SentencePieceProcessor) or path is None:
            raise ExportError(
                f"the pretrainer loads '{name}' ({type(obj).__name__}), which speechquant cannot "
                "export (only modules, input normalizers and sentencepiece tokenizers)"
            )
        safety.safe_relative(name, "the pretrainer")
        files[name] = Path(path).resolve()
    return files


def _check_scorers(mods: nn.Module) -> None:
    """Every module a beam-search scorer holds must be one of the model's modules."""
    known = {id(t) for t in [*mods.parameters(), *mods.buffers()]}
    for path, module in mods.named_modules():
        for held in scorer_modules(module):
            if any(id(t) not in known for t in [*held.parameters(), *held.buffers()]):
                raise ExportError(
                    f"the beam search '{path}' scores with a {type(held).__name__} that is not "
                    "one of the model's modules; speechquant cannot export this model"
                )


def _write_loadable(target: Path, what: Path | dict[str, Any]) -> None:
    if isinstance(what, Path):
        shutil.copyfile(what, target)
    else:
        torch.save(what, target)


def _lobe_source(root: yaml.MappingNode, lobe: yaml.MappingNode, folder: Path) -> tuple[Path, str]:
    """The local backbone folder a lobe loads and the top-level key naming it ("" if none)."""
    node = safety.mapping_get(lobe, "source")
    ref_key = ""
    if isinstance(node, yaml.ScalarNode) and node.tag == "!ref":
        ref_key = node.value.strip()[1:-1]
        node = safety.mapping_get(root, ref_key)
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
        raise ExportError(
            f"{folder / HPARAMS}: a backbone's source is not a plain path; cannot export"
        )
    path = Path(node.value) if os.path.isabs(node.value) else folder / node.value
    if not (path / "config.json").is_file():
        raise ExportError(
            f"the backbone source {node.value!r} in {folder / HPARAMS} is not a local folder with "
            "config.json; export models whose backbone is on disk (open them from a folder)"
        )
    return path, ref_key


_WHISPER_LOBE = "!new:speechbrain.integrations.huggingface.whisper.Whisper"


def _write_language(root: yaml.MappingNode, language: str | None) -> None:
    """Keep the prompt language the model was opened with (multilingual Whisper only)."""
    if language is None:
        return
    safety.set_scalar(root, "language", language)
    for _, lobe in safety.lobe_nodes(root):
        if lobe.tag == _WHISPER_LOBE:
            safety.set_scalar(lobe, "language", language)


def _write_backbones(root: yaml.MappingNode, folder: Path, tmp: Path) -> None:
    """Copy each backbone's config files (not its weights) and point the YAML at the copies."""
    for key, lobe in safety.lobe_nodes(root):
        source, ref_key = _lobe_source(root, lobe, folder)
        rel = safety.safe_relative(f"{BACKBONE_DIR}/{key}", f"{folder / HPARAMS}").as_posix()
        dest = tmp / rel
        dest.mkdir(parents=True)
        for path in sorted(source.iterdir()):
            if (
                path.is_file()
                and path.suffix in safety.HF_FILE_SUFFIXES
                and not path.name.endswith(".index.json")
            ):
                shutil.copyfile(path, dest / path.name)
        safety.check_hf_folder(dest, f"{folder}/{rel}")
        for field in ("source", "save_path"):
            safety.set_scalar(lobe, field, rel)
        if ref_key:
            safety.set_scalar(root, ref_key, rel)
