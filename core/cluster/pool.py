"""The worker actors of one executor and the queue of shard tasks that keeps them busy.

A :class:`ShardPool` starts ``workers`` :class:`~.worker.ShardWorker` actors (and, when asked,
one on the timing node), turns each submitted run into one task per shard, keeps ``_IN_FLIGHT``
tasks queued on every worker, replaces a worker that dies and runs its tasks again, and collects
the rows. Nothing here imports Ray: the module comes in from :mod:`.session`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from speechquant.core.cluster.settings import ClusterError, ClusterSettings, shard_ids
from speechquant.core.cluster.worker import (
    ModelSpec,
    ShardWorker,
    folder_bytes,
    model_digest,
    pack_folder,
    utterance_to_dict,
)
from speechquant.core.data.datasets import Dataset, iter_loaded
from speechquant.core.errors import SpeechquantError
from speechquant.core.evaluation.executor import PlanRun
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, ProgressCallback, check, report

_IN_FLIGHT = 2
"""Tasks queued on each worker, so that it never waits for the driver between shards."""
_POLL_SECONDS = 0.2
SHARDS_STAGE = "cluster shards"


@dataclass
class Work:
    """One run on one set of utterances: its shards and the rows back so far."""

    key: str
    plan: dict[str, Any] | None
    calibration: Any
    payloads: list[tuple[list[dict[str, Any]], Any]]
    """Per shard: its utterances, and the object-store reference of their waveforms (or None:
    the worker reads the audio files)."""
    results: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.payloads)


@dataclass
class _Task:
    work: Work
    shard: int
    attempts: int = 0
    worker: Any = None


class WorkerDied(ClusterError):
    """A worker actor died while it held a task (the task is retried on a new worker)."""


class ShardPool:
    """Worker actors holding ``model`` (opened on each node by ``opener``) and their queue."""

    def __init__(
        self,
        settings: ClusterSettings,
        ray: Any,
        workers: int,
        model: LoadedModel,
        opener: Callable[[str], LoadedModel],
    ) -> None:
        self.settings = settings
        self.ray = ray
        self.n_workers = workers
        self.model = model
        self._opener = opener
        self._spec: ModelSpec | None = None
        self._packed: Any = None
        self._workers: list[Any] = []
        self._timer: Any = None
        self._works: dict[str, Work] = {}
        self._queue: deque[_Task] = deque()
        self._in_flight: dict[Any, _Task] = {}
        self._shard_waves: dict[tuple[str, ...], Any] = {}
        """(data source, *ids of a shard) -> its utterances and the reference of their waves."""
        self._calibrations: dict[tuple[str, ...], Any] = {}
        self.audio_skipped: dict[str, str] = {}
        """Audio the driver could not read when shipping it, by id."""
        self.shards_done = 0
        self.shards_total = 0
        self.replaced = 0

    @property
    def stopped(self) -> bool:
        """No worker running, no task queued or in flight."""
        return not self._workers and not self._in_flight and not self._queue

    # -- workers ------------------------------------------------------------------------------

    def workers(self) -> list[Any]:
        """The worker actors (started, and their model opened, on first use)."""
        if not self._workers:
            self._workers = [self._new_worker() for _ in range(self.n_workers)]
            for ref in [w.ready.remote() for w in self._workers]:
                self.get(ref)
        return self._workers

    def _model_spec(self) -> ModelSpec:
        if self._spec is None:
            folder = self.model.folder
            if folder is None:
                raise ClusterError(
                    f"{self.model.source} has no model folder to give the workers; open it from one"
                )
            self._spec = ModelSpec(
                self.model.source,
                model_digest(self.model),
                self._opener,
                str(folder),
                self.model.language,
            )
            if folder_bytes(folder) <= self.settings.ship_limit:
                self._packed = self.ray.put(pack_folder(folder))
        return self._spec

    def _new_worker(
        self, resources: dict[str, float] | None = None, threads: int | None = None
    ) -> Any:
        actor = self.ray.remote(ShardWorker)
        threads = self.settings.worker_threads if threads is None else threads
        options: dict[str, Any] = {"num_cpus": threads, "max_restarts": 0}
        if resources:  # the timing node: no Ray CPUs taken, its cores are the session's
            options.update(num_cpus=0, resources=resources)
        return actor.options(**options).remote(self._model_spec(), threads, self._packed)

    def lose_timer(self) -> None:
        """Forget a timing actor that died (the next session starts a new one)."""
        self._timer = None

    def timing_worker(self) -> Any:
        if self._timer is None:
            label = self.settings.timing_node
            assert label is not None
            self._timer = self._new_worker({label: 0.001}, threads=0)  # 0: all its cores
            self.get(self._timer.ready.remote())
        return self._timer

    def _replace(self, dead: Any) -> None:
        if dead in self._workers:
            slot = self._workers.index(dead)
            self._workers[slot] = self._new_worker()
            self.get(self._workers[slot].ready.remote())
            self.replaced += 1

    def forget(self, work: Work) -> None:
        """Drop a finished work (a later submit of the same run transcribes it again)."""
        self._works.pop(work.key, None)

    def shutdown(self) -> None:
        """Kill the workers (their running and queued tasks with them) and forget all work; a
        later session starts new workers."""
        for worker in [*self._workers, *([self._timer] if self._timer is not None else [])]:
            self.ray.kill(worker)
        self._workers, self._timer = [], None
        self._queue.clear()
        self._in_flight.clear()
        self._works.clear()
        self.shards_done = self.shards_total = 0

    # -- scheduling ---------------------------------------------------------------------------

    def submit(self, run: PlanRun, data: Dataset, first: bool = False) -> Work:
        plan = run.plan.to_dict() if run.plan is not None else None
        key = hashlib.sha256(
            json.dumps([plan, run.calibration_ids, data.ids], sort_keys=True).encode()
        ).hexdigest()
        work = self._works.get(key)
        if work is None:
            shards = shard_ids(data.ids, self.settings.shard_size)
            work = Work(key, plan, self._calibration(run), self._payloads(data, shards))
            self._works[key] = work
            tasks = [_Task(work, i) for i in range(len(shards))]
            self._queue.extend(tasks)
            self.shards_total += len(tasks)
        if first:  # asked for now: its queued shards go first
            mine = [t for t in self._queue if t.work is work]
            self._queue = deque(mine + [t for t in self._queue if t.work is not work])
        return work

    def _calibration(self, run: PlanRun) -> Any:
        ids = tuple(run.calibration_ids)
        if ids not in self._calibrations:
            self._calibrations[ids] = self.ray.put(list(run.calibration_waves))
        return self._calibrations[ids]

    def _payloads(
        self, data: Dataset, shards: list[list[str]]
    ) -> list[tuple[list[dict[str, Any]], Any]]:
        size = sum(u.audio_path.stat().st_size for u in data if u.audio_path.is_file())
        if size > self.settings.ship_limit:
            by_id = {u.id: utterance_to_dict(u) for u in data}
            return [([by_id[i] for i in shard], None) for shard in shards]
        missing = [s for s in shards if (data.source, *s) not in self._shard_waves]
        if missing:
            self._ship_audio(data, missing)
        return [self._shard_waves[(data.source, *s)] for s in shards]

    def _ship_audio(self, data: Dataset, missing: list[list[str]]) -> None:
        wanted = {i for shard in missing for i in shard}
        subset = Dataset(data.source, data.form, [u for u in data if u.id in wanted])
        loaded = {u.id: (u, w) for u, w in iter_loaded(subset, self.model.sample_rate)}
        self.audio_skipped.update((s.id, s.reason) for s in subset.skipped)
        for shard in missing:
            kept = [loaded[i] for i in shard if i in loaded]
            self._shard_waves[(data.source, *shard)] = (
                [utterance_to_dict(u) for u, _ in kept],
                self.ray.put([w for _, w in kept]),
            )

    def _dispatch(self) -> None:
        workers = self.workers()
        load = {id(w): 0 for w in workers}
        for task in self._in_flight.values():
            load[id(task.worker)] = load.get(id(task.worker), 0) + 1
        for worker in workers:
            while load[id(worker)] < _IN_FLIGHT and self._queue:
                task = self._queue.popleft()
                task.worker = worker
                utterances, waves = task.work.payloads[task.shard]
                ref = worker.transcribe.remote(
                    task.work.plan, task.work.calibration, utterances, waves
                )
                self._in_flight[ref] = task
                load[id(worker)] += 1

    def serve(self, timeout: float, progress: ProgressCallback | None) -> None:
        """Queue tasks on idle workers, collect what finished (waiting up to ``timeout``)."""
        self._dispatch()
        if self._in_flight:
            ready, _ = self.ray.wait(list(self._in_flight), num_returns=1, timeout=timeout)
            for ref in ready:
                self._collect(ref)
        report(progress, self.shards_done, self.shards_total, SHARDS_STAGE)

    def wait(
        self,
        works: list[Work],
        refs: list[Any],
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> None:
        """Serve the queue until ``works`` are complete and ``refs`` are ready."""
        while True:
            check(cancel)
            ready = self.ray.wait(refs, num_returns=len(refs), timeout=0)[0] if refs else []
            complete = all(w.complete for w in works)
            if complete and len(ready) == len(refs):
                return
            if self._in_flight or self._queue:
                self.serve(_POLL_SECONDS, progress)
            elif complete:
                time.sleep(_POLL_SECONDS)
            else:
                raise RuntimeError("cluster shards were lost: neither queued nor running")

    def _collect(self, ref: Any) -> None:
        task = self._in_flight.pop(ref)
        try:
            out = self.get(ref)
        except WorkerDied:
            task.attempts += 1
            if task.attempts >= self.settings.max_attempts:
                raise ClusterError(
                    f"shard {task.shard + 1} of {len(task.work.payloads)} failed on "
                    f"{task.attempts} workers in a row; see the Ray logs of the cluster"
                ) from None
            self._replace(task.worker)
            self._queue.appendleft(task)
            return
        if task.work.key in self._works and task.shard not in task.work.results:
            task.work.results[task.shard] = out
            self.shards_done += 1

    def get(self, ref: Any) -> Any:
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayActorError:
            raise WorkerDied(
                "a cluster worker died before it was ready; see the Ray logs of the cluster"
            ) from None
        except exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, SpeechquantError):
                raise type(cause)(str(cause)) from None
            raise ClusterError(
                f"a worker failed: {type(cause).__name__ if cause else 'error'}: {cause}"
            ) from None
