"""A loaded SpeechBrain ASR model and the loader for a local SpeechBrain folder."""

from __future__ import annotations

import copy
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from speechquant.core.errors import DataError, SourceError
from speechquant.core.model.long_audio import (
    ENCODER_SECONDS,
    MIN_SECONDS,
    WHISPER_SECONDS,
    WINDOW_SECONDS,
    Window,
    plan_windows,
)
from speechquant.core.model.trust import checked_hyperparams
from speechquant.core.model.whisper_language import known_languages, prompt_language, set_language
from speechquant.core.paths import cache_dir

INTERFACES = ("EncoderASR", "EncoderDecoderASR", "WhisperASR")


@dataclass(frozen=True)
class Transcript:
    """A transcript and the windows it was made from (one unless the audio was long)."""

    text: str
    windows: list[Window]

    def chunking(self, rate: int) -> list[list[float]] | None:
        """The windows in seconds when the audio was cut, else None (the per-utterance field)."""
        return [w.seconds(rate) for w in self.windows] if len(self.windows) > 1 else None


@dataclass
class LoadedModel:
    """A SpeechBrain ASR ``Pretrained`` object and what speechquant knows about it."""

    asr: Any
    source: str
    interface: str
    folder: Path | None
    sample_rate: int
    plan: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def mods(self) -> nn.ModuleDict:
        return self.asr.mods

    @property
    def language(self) -> str | None:
        """The language code a multilingual Whisper's decoder prompt carries, else None."""
        return prompt_language(self.asr)

    @property
    def languages(self) -> list[str]:
        """The language codes :meth:`set_language` accepts (empty: the model takes no language).

        A multilingual Whisper's codes; ``["en"]`` alone for an English-only Whisper.
        """
        return known_languages(self.asr)

    def set_language(self, language: str) -> None:
        """Make a multilingual Whisper transcribe ``language`` (a code such as ``de``).

        Raises
        ------
        SourceError
            One line naming the model and what it accepts, when the model takes no language or
            does not know this one; the model is then left as it was.
        """
        set_language(self.asr, language, self.source)

    def windows(self, wav: torch.Tensor) -> list[Window]:
        """How :meth:`transcribe` cuts ``wav`` (one window unless it is long; see long_audio)."""
        limit = WHISPER_SECONDS if self.interface == "WhisperASR" else ENCODER_SECONDS
        return plan_windows(wav, self.sample_rate, limit, WINDOW_SECONDS)

    def check_length(self, wav: torch.Tensor) -> None:
        """Refuse a clip shorter than :data:`MIN_SECONDS` (one line naming its length)."""
        if wav.numel() < int(MIN_SECONDS * self.sample_rate):
            raise DataError(
                f"the clip is {wav.numel() / self.sample_rate * 1000:.1f} ms long, shorter than "
                f"the {MIN_SECONDS * 1000:.0f} ms a model needs"
            )

    @torch.no_grad()
    def transcribe_windows(self, wav: torch.Tensor) -> Transcript:
        """Transcribe one 1-D waveform at ``sample_rate``, window by window when it is long."""
        self.check_length(wav)
        windows = self.windows(wav)
        texts = [self._transcribe_one(wav[w.start : w.end]) for w in windows]
        return Transcript(" ".join(t for t in texts if t), windows)

    def transcribe(self, wav: torch.Tensor) -> str:
        """Transcribe one 1-D waveform at ``sample_rate`` (long audio window by window)."""
        return self.transcribe_windows(wav).text

    def _transcribe_one(self, wav: torch.Tensor) -> str:
        try:
            words, _ = self.asr.transcribe_batch(wav.unsqueeze(0), torch.tensor([1.0]))
        except (RuntimeError, UnboundLocalError) as exc:
            reason = _too_short_reason(exc, self.interface)
            if reason is None:
                raise
            raise DataError(
                f"the clip is {wav.numel() / self.sample_rate * 1000:.1f} ms long, too short for "
                f"this model ({reason}); give a longer clip"
            ) from None
        finally:
            self._drop_decoder_cache()
        text = words[0]
        return (" ".join(text) if isinstance(text, list) else str(text)).strip()

    def _drop_decoder_cache(self) -> None:
        """Free the key/value cache SpeechBrain's Whisper searchers keep after decoding.

        They reset it only when the next decoding starts, so it (the cross-attention keys and
        values of the whole encoder output, about 20 MB for Whisper tiny) would otherwise still
        be held while the next clip is encoded.
        """
        searcher: Any
        for searcher in self.mods.values():
            if getattr(searcher, "kv_cache", None) is not None:
                searcher.kv_cache = None

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """The encoder forward alone (the tutorial's RTF definition)."""
        return self.asr.encode_batch(wav.unsqueeze(0), torch.tensor([1.0]))

    @torch.no_grad()
    def encode_windows(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """The encoder forward of each window :meth:`transcribe` would use."""
        return [self.encode(wav[w.start : w.end]) for w in self.windows(wav)]

    def with_mods(self, mods: nn.ModuleDict, plan: Any) -> LoadedModel:
        """A model that shares everything but ``mods`` with this one (this one is not changed)."""
        asr = copy.copy(self.asr)
        asr._modules = dict(self.asr._modules)
        asr.mods = mods
        return LoadedModel(
            asr=asr,
            source=self.source,
            interface=self.interface,
            folder=self.folder,
            sample_rate=self.sample_rate,
            plan=plan,
            metadata=dict(self.metadata),
        )


def _too_short_reason(exc: BaseException, interface: str) -> str | None:
    """What a SpeechBrain failure on a very short clip means, or None for any other failure.

    Time-pooling encoders (the CRDNN pools 4 feature frames) fail on a clip shorter than their
    pooling window, and SpeechBrain's beam search fails when the encoder output allows no
    decoding step (fewer frames than ``1 / max_decode_ratio``).
    """
    text = str(exc)
    if isinstance(exc, RuntimeError) and "Output size is too small" in text:
        return "its encoder pools it down to nothing"
    if isinstance(exc, UnboundLocalError) and interface == "EncoderDecoderASR" and "scores" in text:
        return "its encoder output allows no beam-search step"
    return None


class _TagIgnoringLoader(yaml.SafeLoader):
    """Reads hyperparams.yaml as plain data: ``!new:``/``!name:``/``!ref`` become markers."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    return {"__tag__": tag_suffix}


_TagIgnoringLoader.add_multi_constructor("!", _construct_tag)
_TagIgnoringLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_tag)


def read_hyperparams(path: Path) -> dict[str, Any]:
    """Parse a hyperparams.yaml without constructing anything it names."""
    try:
        data = yaml.load(path.read_text(), Loader=_TagIgnoringLoader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path} is not valid YAML ({str(exc).splitlines()[0]}); fix the file"
        ) from None
    if not isinstance(data, dict):
        raise SourceError(f"{path} does not hold a mapping of hyperparameters; fix the file")
    return data


def detect_interface(hparams: dict[str, Any], path: Path) -> str:
    """Which SpeechBrain ASR interface a hyperparams.yaml is written for."""
    modules = hparams.get("modules")
    names = set(modules) if isinstance(modules, dict) else set()
    if "whisper" in names and "decoder" in names:
        return "WhisperASR"
    if "encoder" in names and "decoder" in names:
        return "EncoderDecoderASR"
    if "encoder" in names and "decoding_function" in hparams:
        return "EncoderASR"
    raise SourceError(
        f"{path} describes an unsupported interface (modules: {sorted(names) or 'none'}); "
        f"speechquant opens {', '.join(INTERFACES)} models"
    )


def _interface_class(interface: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from speechbrain.inference import ASR

    return getattr(ASR, interface)


def _local_overrides(folder: Path, hparams: dict[str, Any], savedir: Path) -> dict[str, Any]:
    """Point ``*_hub`` keys naming files inside the folder at them, ``*_folder`` keys into savedir."""
    overrides: dict[str, Any] = {}
    for key, value in hparams.items():
        if not isinstance(value, str) or os.path.isabs(value):
            continue
        if key.endswith("_hub") and (folder / value).exists():
            overrides[key] = str(folder / value)
        elif key.endswith("_folder"):
            overrides[key] = str(savedir / value)
    return overrides


def load_folder(
    folder: Path, source: str | None = None, *, trust_code: bool = False
) -> LoadedModel:
    """Load a local SpeechBrain model folder (hyperparams.yaml + checkpoint files).

    Unless ``trust_code`` is True, the yaml is checked against the allowlist of
    :mod:`speechquant.core.model.trust` first and only its checked copy is built.
    """
    folder = Path(folder).resolve()
    if not folder.exists():
        raise SourceError(f"model folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise SourceError(
            f"{folder} is a file; SOURCE must be a model folder holding hyperparams.yaml"
        )
    hparams_path = folder / "hyperparams.yaml"
    if not hparams_path.is_file():
        raise SourceError(
            f"folder {folder} has no hyperparams.yaml; point SOURCE at a SpeechBrain model folder"
        )
    checked = None if trust_code else checked_hyperparams(hparams_path)
    hparams = read_hyperparams(hparams_path)
    interface = detect_interface(hparams, hparams_path)
    savedir = cache_dir() / "pretrained" / hashlib.sha1(str(folder).encode()).hexdigest()[:16]
    hparams_file = "hyperparams.yaml"
    if checked is not None:
        savedir.mkdir(parents=True, exist_ok=True)
        checked_path = savedir / "hyperparams.checked.yaml"
        checked_path.write_text(checked, encoding="utf-8")
        hparams_file = str(checked_path)
    cls = _interface_class(interface)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asr = cls.from_hparams(
                source=str(folder),
                hparams_file=hparams_file,
                savedir=str(savedir),
                overrides=_local_overrides(folder, hparams, savedir),
                run_opts={"device": "cpu"},
            )
    except SourceError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"could not load the {interface} model in {folder}: {first}") from exc
    asr.mods.eval()
    rate = (
        int(hparams.get("sample_rate", 16000))
        if isinstance(hparams.get("sample_rate"), int)
        else 16000
    )
    return LoadedModel(
        asr=asr, source=source or str(folder), interface=interface, folder=folder, sample_rate=rate
    )
