"""Opening a DATA argument as an ordered list of utterances, and streaming their audio.

Forms, detected from the argument:

- ``demo``: the built-in real speech, 32 LJSpeech utterances shipped with the package (public
  domain; see ``speechquant.resources/demo_speech/LICENSE.md``);
- ``demo:synthetic``: English sentences synthesized with Festival on first use (see
  :mod:`.demo_data`), for text you can edit and offline microphone tests;
- a ``.csv``/``.tsv`` file: a SpeechBrain manifest (``ID,duration,wav,wrd``, extra columns
  allowed, ``wav`` relative to the manifest's folder) or a Common Voice TSV (``path``,
  ``sentence``; clips in ``clips/`` beside the TSV or relative to it);
- a folder holding ``manifest.csv`` or ``manifest.tsv``: that manifest;
- a folder with ``*.trans.txt`` files below it: a LibriSpeech tree;
- any other folder: audio files (wav, flac, ogg, mp3) with ``.txt`` sidecars holding the
  reference.

Utterances are sorted by id. Bad items (missing audio, empty or missing reference, duplicate
id) are recorded in :attr:`Dataset.skipped` and left out; audio that cannot be decoded is
found and recorded while streaming with :func:`iter_loaded`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from speechquant.core.data.audio import AudioReadError, load_audio
from speechquant.core.errors import DataError
from speechquant.core.progress import CancelToken, ProgressCallback, check, report

DEMO = "demo"
DEMO_SYNTHETIC = "demo:synthetic"
#: What each built-in DATA name holds, for tables and logs.
BUILTIN_DESCRIPTIONS = {
    DEMO: "LJSpeech, one female reader, public domain",
    DEMO_SYNTHETIC: "synthesized with Festival (or espeak-ng)",
}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
FORMS_HELP = (
    "give a LibriSpeech folder, a CSV/TSV manifest, a Common Voice TSV, "
    "a folder of audio files with .txt sidecars, 'demo' or 'demo:synthetic'"
)


@dataclass(frozen=True)
class Utterance:
    """One reference transcript and where its audio is."""

    id: str
    audio_path: Path
    ref: str
    duration: float | None = None


@dataclass(frozen=True)
class SkippedItem:
    """An item left out of a dataset, and why."""

    id: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "reason": self.reason}


@dataclass
class Dataset:
    """Utterance metadata in sorted id order; audio is read only by :func:`iter_loaded`.

    Attributes
    ----------
    source
        The DATA argument as given.
    form
        ``demo``, ``demo:synthetic``, ``manifest``, ``commonvoice``, ``librispeech`` or
        ``folder``.
    utterances
        The usable utterances, sorted by id.
    skipped
        Items left out so far; :func:`iter_loaded` appends unreadable audio to it.
    """

    source: str
    form: str
    utterances: list[Utterance]
    skipped: list[SkippedItem] = field(default_factory=list)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def ids(self) -> list[str]:
        return [u.id for u in self.utterances]

    def describe(self) -> str:
        """``32 utterances, 222 s`` plus what a built-in set holds."""
        seconds = sum(u.duration or 0.0 for u in self.utterances)
        text = f"{len(self.utterances)} utterances, {seconds:.0f} s"
        what = BUILTIN_DESCRIPTIONS.get(self.form)
        return f"{text}, {what}" if what else text

    def first(self, n: int) -> Dataset:
        """The first ``n`` utterances, with the skipped items met before the last of them."""
        if n < 1:
            raise DataError(f"--limit must be at least 1, got {n}")
        kept = self.utterances[:n]
        if len(kept) == len(self.utterances):
            skipped = list(self.skipped)
        else:
            last = kept[-1].id
            skipped = [s for s in self.skipped if s.id <= last]
        return Dataset(self.source, self.form, kept, skipped)


class _Collector:
    def __init__(self) -> None:
        self.utterances: dict[str, Utterance] = {}
        self.skipped: list[SkippedItem] = []

    def skip(self, item_id: str, reason: str) -> None:
        self.skipped.append(SkippedItem(item_id, reason))

    def add(self, item_id: str, audio: Path, ref: str, duration: float | None = None) -> None:
        ref = " ".join(ref.split())
        if item_id in self.utterances:
            self.skip(item_id, f"duplicate id (also {self.utterances[item_id].audio_path})")
        elif not ref:
            self.skip(item_id, "empty reference")
        elif not audio.is_file():
            self.skip(item_id, f"audio file {audio} is missing")
        else:
            self.utterances[item_id] = Utterance(item_id, audio, ref, duration)

    def dataset(self, source: str, form: str) -> Dataset:
        utterances = sorted(self.utterances.values(), key=lambda u: u.id)
        skipped = sorted(self.skipped, key=lambda s: s.id)
        return Dataset(source, form, utterances, skipped)


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text; re-save it as UTF-8") from error
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error


def _float_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _read_table(path: Path, source: str) -> Dataset:
    text = _read_text(path)
    lines = text.splitlines()
    if not lines:
        raise DataError(f"DATA {source} is an empty file; {FORMS_HELP}")
    tabbed = path.suffix.lower() == ".tsv" or (path.suffix.lower() != ".csv" and "\t" in lines[0])
    if tabbed:
        reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.DictReader(lines)
    columns = {name.strip().lower(): name for name in reader.fieldnames or [] if name}
    rows = list(reader)
    if "path" in columns and "sentence" in columns:
        return _common_voice(path, source, rows, columns)
    missing = [c for c in ("ID", "wav", "wrd") if c.lower() not in columns]
    if missing:
        raise DataError(
            f"manifest {path} lacks column(s) {', '.join(missing)}; expected SpeechBrain's "
            "ID,duration,wav,wrd or Common Voice's path,sentence"
        )
    folder = path.parent
    found = _Collector()
    for number, row in enumerate(rows, start=2):
        item_id = (row.get(columns["id"]) or "").strip()
        wav = (row.get(columns["wav"]) or "").strip()
        if not _fields_fit(row, columns["wrd"], reader.fieldnames or []):
            found.skip(item_id or f"{path.name}:{number}", _too_many_fields(row, reader))
            continue
        if not item_id or not wav:
            found.skip(item_id or f"{path.name}:{number}", "row lacks an ID or wav value")
            continue
        duration = _float_or_none(row.get(columns["duration"])) if "duration" in columns else None
        found.add(item_id, folder / wav, row.get(columns["wrd"]) or "", duration)
    return found.dataset(source, "manifest")


def _fields_fit(row: dict[Any, Any], text_column: str, fieldnames: Sequence[str]) -> bool:
    """Whether ``row`` has no more fields than the header; when the transcript is the last
    column, the extra fields are the rest of its text (an unquoted comma) and are joined back."""
    extra = row.pop(None, None)
    if not extra:
        return True
    if fieldnames and fieldnames[-1] == text_column:
        row[text_column] = ",".join([row.get(text_column) or "", *extra])
        return True
    row[None] = extra
    return False


def _too_many_fields(row: dict[Any, Any], reader: Any) -> str:
    n = len(reader.fieldnames or []) + len(row.get(None) or [])
    return (
        f"row has {n} fields but the header has {len(reader.fieldnames or [])} (an unquoted "
        "comma in the transcript?); quote the transcript or move it to the last column"
    )


def _common_voice(
    path: Path, source: str, rows: list[dict[str, str]], columns: dict[str, str]
) -> Dataset:
    found = _Collector()
    for number, row in enumerate(rows, start=2):
        clip = (row.get(columns["path"]) or "").strip()
        if not _fields_fit(row, columns["sentence"], ()):
            found.skip(clip or f"{path.name}:{number}", "row has more fields than the header")
            continue
        if not clip:
            found.skip(f"{path.name}:{number}", "row lacks a path value")
            continue
        audio = path.parent / "clips" / clip
        if not audio.is_file() and (path.parent / clip).is_file():
            audio = path.parent / clip
        found.add(Path(clip).stem, audio, row.get(columns["sentence"]) or "")
    return found.dataset(source, "commonvoice")


def _librispeech(root: Path, transcripts: list[Path], source: str) -> Dataset:
    found = _Collector()
    for transcript in transcripts:
        try:
            text = _read_text(transcript)
        except DataError as error:
            found.skip(transcript.name, str(error))
            continue
        for line in text.splitlines():
            item_id, _, ref = line.strip().partition(" ")
            if not item_id:
                continue
            candidates = [transcript.parent / f"{item_id}{ext}" for ext in (".flac", ".wav")]
            audio = next((c for c in candidates if c.is_file()), candidates[0])
            found.add(item_id, audio, ref)
    return found.dataset(source, "librispeech")


def _sidecar_folder(root: Path, audio_files: list[Path], source: str) -> Dataset:
    found = _Collector()
    for audio in audio_files:
        item_id = audio.relative_to(root).with_suffix("").as_posix()
        sidecar = audio.with_suffix(".txt")
        if not sidecar.is_file():
            found.skip(item_id, f"reference {sidecar.name} is missing beside {audio.name}")
            continue
        try:
            found.add(item_id, audio, _read_text(sidecar))
        except DataError as error:
            found.skip(item_id, str(error))
    return found.dataset(source, "folder")


def _open_folder(root: Path, source: str) -> Dataset:
    for name in ("manifest.csv", "manifest.tsv"):
        if (root / name).is_file():
            return _read_table(root / name, source)
    files = sorted(p for p in root.rglob("*") if p.is_file() and _visible(p, root))
    transcripts = [p for p in files if p.name.endswith(".trans.txt")]
    if transcripts:
        return _librispeech(root, transcripts, source)
    audio_files = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS]
    if audio_files:
        return _sidecar_folder(root, audio_files, source)
    raise DataError(
        f"DATA {source} holds no *.trans.txt transcripts, manifest or audio files; {FORMS_HELP}"
    )


def _nothing_usable(dataset: Dataset) -> DataError:
    detail = ""
    if dataset.skipped:
        first = dataset.skipped[0]
        detail = f" ({len(dataset.skipped)} skipped, e.g. {first.id}: {first.reason})"
    return DataError(f"DATA {dataset.source} holds no usable utterances{detail}; {FORMS_HELP}")


def _source_key(spec: str | Path) -> str:
    if isinstance(spec, str) and spec.strip() in BUILTIN_DESCRIPTIONS:
        return spec.strip()
    return os.path.realpath(Path(spec).expanduser())


def shipped_demo_folder() -> Path:
    """The folder of the shipped real demo speech (its manifest, FLACs and licence)."""
    from importlib import resources

    folder = Path(str(resources.files("speechquant.resources").joinpath("demo_speech")))
    if not (folder / "manifest.csv").is_file():
        raise DataError(f"the built-in demo speech is missing from {folder}; reinstall speechquant")
    return folder


def open_dataset(
    spec: str | Path,
    *,
    limit: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Dataset:
    """Open a DATA argument (see the module docstring for the forms).

    Parameters
    ----------
    spec
        A path, ``demo`` (the shipped real speech) or ``demo:synthetic`` (synthesized on first
        use; ``progress`` and ``cancel`` apply to that build). Use ``./demo`` for a folder
        named demo.
    limit
        Keep only the first ``limit`` utterances in sorted order.

    Raises
    ------
    DataError
        If the path does not exist, cannot be read, is not a recognized form, or holds no
        usable utterance.
    """
    source = str(spec)
    key = _source_key(spec)
    if key == DEMO:
        dataset = _read_table(shipped_demo_folder() / "manifest.csv", DEMO)
        dataset.form = DEMO
    elif key == DEMO_SYNTHETIC:
        from speechquant.core.data.demo_data import build_demo_data

        root = build_demo_data(progress=progress, cancel=cancel)
        dataset = _read_table(root / "manifest.csv", DEMO_SYNTHETIC)
        dataset.form = DEMO_SYNTHETIC
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(f"DATA {source} does not exist; {FORMS_HELP}")
        if path.is_dir():
            dataset = _open_folder(path, source)
        elif path.suffix.lower() in (".csv", ".tsv"):
            dataset = _read_table(path, source)
        else:
            raise DataError(f"DATA {source} is a file but not a .csv/.tsv manifest; {FORMS_HELP}")
    if not dataset.utterances:
        raise _nothing_usable(dataset)
    return dataset.first(limit) if limit is not None else dataset


def iter_loaded(
    dataset: Dataset,
    sample_rate: int,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    stage: str = "utterances",
) -> Iterator[tuple[Utterance, torch.Tensor]]:
    """Yield ``(utterance, waveform)`` one at a time, mono float32 at ``sample_rate``.

    Audio that cannot be used (unreadable, corrupt, empty) is appended to
    ``dataset.skipped`` and passed over. Progress counts utterances once the consumer has
    finished with each one; ``cancel`` is checked before each is loaded.
    """
    total = len(dataset.utterances)
    report(progress, 0, total, stage)
    for done, utterance in enumerate(dataset.utterances, start=1):
        check(cancel)
        try:
            waveform = load_audio(utterance.audio_path, sample_rate)
        except AudioReadError as error:
            dataset.skipped.append(SkippedItem(utterance.id, str(error)))
        else:
            yield utterance, waveform
        report(progress, done, total, stage)


def split_calibration(pool: Dataset, n: int, exclude: Iterable[str] = ()) -> Dataset:
    """The first ``n`` utterances of ``pool`` (sorted order) whose ids are not in ``exclude``.

    Raises
    ------
    DataError
        If ``n`` is not positive or fewer than ``n`` utterances remain.
    """
    if n < 1:
        raise DataError(f"--calib-n must be at least 1, got {n}")
    excluded = set(exclude)
    available = [u for u in pool.utterances if u.id not in excluded]
    if len(available) < n:
        overlap = len(pool.utterances) - len(available)
        if overlap:
            raise DataError(
                f"calibration needs {n} utterances outside the {overlap} evaluated ones, but "
                f"DATA {pool.source} has only {len(available)} more; use a smaller evaluation "
                "limit or calibration count, or separate calibration data"
            )
        raise DataError(
            f"calibration needs {n} utterances but DATA {pool.source} has only "
            f"{len(available)}; use a smaller calibration count or larger calibration data"
        )
    return Dataset(pool.source, pool.form, available[:n], [])


def open_calibration(
    spec: str | Path | None,
    n: int,
    evaluated: Dataset,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Dataset:
    """Calibration utterances for static quantization, disjoint from ``evaluated``.

    With ``spec`` None, or naming the same DATA as ``evaluated``, they come from that
    DATA's utterances outside the evaluated ones; otherwise the first ``n`` of ``spec``.
    """
    if spec is None or _source_key(spec) == _source_key(evaluated.source):
        pool = open_dataset(evaluated.source, progress=progress, cancel=cancel)
        return split_calibration(pool, n, exclude=evaluated.ids)
    return split_calibration(open_dataset(spec, progress=progress, cancel=cancel), n)
