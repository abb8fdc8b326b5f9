"""What runs on a node: open the model once, apply plans, transcribe shards, run timing sessions.

:class:`ShardWorker` is a plain class; :mod:`.executor` makes Ray actors of it. The model comes
either as the bytes of its folder (through the object store) or as a folder path every node can
read, and the worker checks that what it opened is the driver's model (:func:`model_digest`).
Workers never time anything: a shard's rows carry texts only, and timings come from the paired
session of :meth:`ShardWorker.time_session` on the one timing node.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import torch

from speechquant.core.cluster.settings import ClusterError
from speechquant.core.data.audio import AudioReadError, load_audio
from speechquant.core.data.datasets import Dataset, Utterance
from speechquant.core.evaluation.bench import (
    BenchSettings,
    paired_benchmark,
    transcription_failure,
)
from speechquant.core.evaluation.results import BenchResult
from speechquant.core.machine import available_cores, this_machine
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.model.whisper_language import set_language
from speechquant.core.paths import cache_dir
from speechquant.core.quantization.apply import apply_plan, set_engine
from speechquant.core.quantization.plan import Plan


class _HashingWriter(io.RawIOBase):
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.hash.update(view)
        return len(view)


def model_digest(model: LoadedModel) -> str:
    """sha256 of the serialized ``state_dict``: equal on two nodes only for the same weights."""
    writer = _HashingWriter()
    torch.save(model.mods.state_dict(), cast(IO[bytes], writer))
    return writer.hash.hexdigest()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def pack_folder(folder: Path) -> bytes:
    """The model folder as an uncompressed tar (symlinks followed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
        tar.add(str(folder), arcname="model")
    return buffer.getvalue()


@dataclass(frozen=True)
class ModelSpec:
    """How a worker gets the driver's model (folder bytes, given apart, else ``path``) and
    the digest it must have.

    ``opener`` opens a model folder (the driver passes :func:`speechquant.core.sources.open_model`,
    which Ray ships by reference).
    """

    source: str
    digest: str
    opener: Callable[[str], LoadedModel]
    path: str | None = None
    language: str | None = None
    """The driver model's prompt language (a multilingual Whisper's), set again on the worker."""


def node_name() -> str:
    return socket.gethostname()


def plain_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The members of a packed model folder, refused unless each is a plain file or folder
    inside it (no absolute path, no ``..``, no link or device)."""
    members = tar.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if (
            member.name.startswith(("/", "\\"))
            or ".." in parts
            or not (member.isfile() or member.isdir())
        ):
            raise ClusterError(
                f"the packed model holds {member.name!r}, which is not a plain file inside "
                "the model folder; pack the folder again from the driver"
            )
    return members


def _unpack(spec: ModelSpec, packed: bytes) -> Path:
    target = cache_dir() / "cluster-models" / spec.digest[:16]
    if not (target / "model").is_dir():
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r") as tar:
            members = plain_members(tar)
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later check again
                tar.extractall(partial, members=members, filter="data")
            else:
                tar.extractall(partial, members=members)
        try:
            partial.rename(target)
        except OSError:  # another worker on this node unpacked it first
            if not (target / "model").is_dir():
                raise
    return target / "model"


def _open(spec: ModelSpec, packed: bytes | None) -> LoadedModel:
    if packed is not None:
        folder = _unpack(spec, packed)
    elif spec.path is not None and Path(spec.path).is_dir():
        folder = Path(spec.path)
    else:
        raise ClusterError(
            f"worker on node {node_name()} cannot read the model folder {spec.path}; put it at "
            "the same path on every node (or use a model under the ship limit)"
        )
    model = spec.opener(str(folder))
    model.source = spec.source
    if spec.language is not None and model.language != spec.language:
        set_language(model.asr, spec.language, spec.source)
    return model


def _readable(path: str, role: str) -> None:
    if not os.access(path, os.R_OK):
        raise ClusterError(
            f"{role} on node {node_name()} cannot read {path}; put DATA at the same path on "
            "every node (or use a data set under the ship limit)"
        )


class ShardWorker:
    """Holds one opened model; transcribes shards of utterances under plans, and (on the timing
    node) runs paired timing sessions."""

    def __init__(self, spec: ModelSpec, threads: int, packed: bytes | None = None) -> None:
        """``threads``: torch threads (0: every core of the node)."""
        self.spec = spec
        self.packed = packed
        self.threads = threads
        self.model: LoadedModel | None = None
        self._variants: dict[str, LoadedModel] = {}

    def ready(self) -> dict[str, Any]:
        """Open the model (once) and check it is the driver's; where this worker runs."""
        torch.set_num_threads(self.threads or available_cores())
        if self.model is None:
            model = _open(self.spec, self.packed)
            self.packed = None
            if model_digest(model) != self.spec.digest:
                raise ClusterError(
                    f"worker on node {node_name()} opened a different model for {self.spec.source}"
                    "; give every node the same model folder (or install the same speechquant)"
                )
            self.model = model
        return {"node": node_name(), "pid": os.getpid()}

    def machine(self, threads: int | None) -> dict[str, Any]:
        """This node's machine fingerprint (:meth:`~speechquant.core.machine.MachineInfo.to_json`)."""
        return this_machine(threads).to_json()

    def _opened(self) -> LoadedModel:
        self.ready()
        assert self.model is not None
        return self.model

    def _variant(self, plan_data: dict[str, Any] | None, waves: list[torch.Tensor]) -> LoadedModel:
        model = self._opened()
        if plan_data is None:
            return model
        plan = Plan.from_dict(plan_data)
        key = repr(sorted(plan_data.items(), key=str)) + f"/{len(waves)}"
        if key not in self._variants:
            while len(self._variants) >= 2:
                self._variants.pop(next(iter(self._variants)))
            self._variants[key] = apply_plan(model, plan, waves)
        set_engine(plan.settings.engine)
        return self._variants[key]

    def transcribe(
        self,
        plan_data: dict[str, Any] | None,
        calibration: list[torch.Tensor],
        utterances: list[dict[str, Any]],
        waves: list[torch.Tensor] | None,
    ) -> dict[str, Any]:
        """The rows (id, ref, hyp, audio seconds, chunks) of one shard under one plan.

        ``waves`` are the shipped waveforms of ``utterances``; ``None``: read their files here.
        Unreadable audio goes to ``skipped``, a failed transcription to ``failed`` (both as
        ``(id, reason)``), as a run in one process lists them.
        """
        model = self._variant(plan_data, calibration)
        rows: list[dict[str, Any]] = []
        skipped: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        for i, utt in enumerate(utterances):
            if waves is not None:
                wav = waves[i]
            else:
                _readable(utt["audio_path"], "worker")
                try:
                    wav = load_audio(utt["audio_path"], model.sample_rate)
                except AudioReadError as error:
                    skipped.append((utt["id"], str(error)))
                    continue
            try:
                transcript = model.transcribe_windows(wav)
            except Exception as exc:  # that utterance's skip reason, as in paired_benchmark
                failed.append((utt["id"], transcription_failure(exc)))
                continue
            rows.append(
                {
                    "id": utt["id"],
                    "ref": utt["ref"],
                    "hyp": transcript.text,
                    "audio_seconds": wav.numel() / model.sample_rate,
                    "chunks": transcript.chunking(model.sample_rate),
                }
            )
        return {"rows": rows, "skipped": skipped, "failed": failed, "node": node_name()}

    def time_session(
        self,
        plans: Sequence[dict[str, Any] | None],
        calibrations: Sequence[list[torch.Tensor]],
        utterances: list[dict[str, Any]],
        files: list[bytes] | None,
        bench: dict[str, Any],
    ) -> dict[str, Any]:
        """:func:`~..evaluation.bench.paired_benchmark` of ``plans`` (None: the float model) on
        ``utterances`` here: the results and this node's host name.

        ``files`` are the utterances' audio files shipped as bytes (None: read them here).
        """
        model = self._opened()
        models = [
            model if plan is None else apply_plan(model, Plan.from_dict(plan), list(waves))
            for plan, waves in zip(plans, calibrations, strict=True)
        ]
        with tempfile.TemporaryDirectory(prefix="speechquant-timing-") as tmp:
            local = []
            for i, utt in enumerate(utterances):
                if files is None:
                    _readable(utt["audio_path"], "timing node")
                    local.append(utterance_from_dict(utt))
                else:
                    path = Path(tmp) / f"{i:06d}{Path(utt['audio_path']).suffix}"
                    path.write_bytes(files[i])
                    local.append(utterance_from_dict({**utt, "audio_path": str(path)}))
            data = Dataset("timing", "cluster", local)
            results: list[BenchResult] = paired_benchmark(models, data, BenchSettings(**bench))
        return {"results": results, "host": node_name()}


def utterance_to_dict(utterance: Utterance) -> dict[str, Any]:
    return {
        "id": utterance.id,
        "audio_path": str(utterance.audio_path),
        "ref": utterance.ref,
        "duration": utterance.duration,
    }


def utterance_from_dict(data: dict[str, Any]) -> Utterance:
    return Utterance(data["id"], Path(data["audio_path"]), data["ref"], data.get("duration"))
