"""Timing sessions whose transcription is spread over Ray worker actors.

:meth:`ClusterExecutor.measure` takes the runs of one session (the float model, then plans), as
:func:`~..evaluation.bench.paired_benchmark` does. Every run's utterances are cut into shards
(consecutive runs of the sorted ids, :func:`.settings.shard_ids`); one task transcribes one shard
under one plan on a worker that holds the opened model. The driver keeps every worker busy with
a queue of tasks, replaces a worker that dies and retries its shards. Meanwhile the timing node
(this process, or the node offering the Ray resource ``timing_node``) runs ``paired_benchmark``
of the same runs over ``timing_n`` utterances. Each run's result takes its transcripts from the
shards and its timings from that one session (:mod:`.merge`).
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from speechquant.core.cluster.merge import ShardRows, kept_ids, merge_run, skipped_items
from speechquant.core.cluster.settings import ClusterError, ClusterSettings, shard_ids, timing_ids
from speechquant.core.cluster.worker import (
    ModelSpec,
    ShardWorker,
    folder_bytes,
    model_digest,
    pack_folder,
    utterance_to_dict,
)
from speechquant.core.data.datasets import Dataset, iter_loaded
from speechquant.core.errors import Cancelled, SpeechquantError
from speechquant.core.evaluation.bench import BenchSettings, paired_benchmark
from speechquant.core.evaluation.executor import PlanRun
from speechquant.core.evaluation.results import BenchResult, ClusterInfo
from speechquant.core.machine import MachineInfo, this_machine
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.progress import CancelToken, Progress, ProgressCallback, check, report

_IN_FLIGHT = 2
"""Tasks queued on each worker, so that it never waits for the driver between shards."""
_POLL_SECONDS = 0.2
SHARDS_STAGE = "cluster shards"


@dataclass
class _Work:
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
    work: _Work
    shard: int
    attempts: int = 0
    worker: Any = None


class _WorkerDied(ClusterError):
    """A worker actor died while it held a task (the task is retried on a new worker)."""


class ClusterExecutor:
    """A :class:`~..evaluation.executor.SessionExecutor` over ``workers`` Ray actors.

    ``opener`` opens the model's folder on a node (the CLI passes
    :func:`speechquant.core.sources.open_model`).
    """

    queues_ahead = True

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
        self._works: dict[str, _Work] = {}
        self._queue: deque[_Task] = deque()
        self._in_flight: dict[Any, _Task] = {}
        self._shard_waves: dict[tuple[str, ...], Any] = {}
        self._audio_skipped: dict[str, str] = {}
        self._calibrations: dict[tuple[str, ...], Any] = {}
        self._machine: MachineInfo | None = None
        self.shards_done = 0
        self.shards_total = 0
        self.replaced = 0

    # -- the SessionExecutor protocol ---------------------------------------------------------

    def key_parts(self, dataset: Dataset) -> dict[str, Any]:
        return {
            "timing_node": self.settings.timing_node or "driver",
            "timing_ids": timing_ids(dataset.ids, self.settings.timing_n),
        }

    def timing_machine(self, threads: int | None = None) -> MachineInfo:
        if self.settings.timing_node is None:
            return this_machine(threads)
        return MachineInfo.from_json(self._get(self._timing_worker().machine.remote(threads)))

    def prefetch(self, runs: Sequence[PlanRun], dataset: Dataset, settings: BenchSettings) -> None:
        data = dataset.first(settings.limit) if settings.limit is not None else dataset
        for run in runs:
            self._submit(run, data)

    def measure(
        self,
        runs: Sequence[PlanRun],
        dataset: Dataset,
        settings: BenchSettings,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BenchResult]:
        data = dataset.first(settings.limit) if settings.limit is not None else dataset
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        chosen = set(timing_ids(data.ids, self.settings.timing_n))
        subset = Dataset(data.source, data.form, [u for u in data if u.id in chosen])
        timing = replace(settings, limit=None)
        try:
            works = [self._submit(run, data, first=True) for run in reversed(runs)][::-1]
            if self.settings.timing_node is None:
                timed, host = self._time_here(runs, subset, timing, progress, cancel)
                self._wait(works, [], progress, cancel)
            else:
                timed, host = self._time_there(runs, subset, timing, works, progress, cancel)
        except (Cancelled, KeyboardInterrupt):
            self.shutdown()
            raise
        self._check_machine(timed[0])
        shards = [ShardRows(run.name) for run in runs]
        for shard, work in zip(shards, works, strict=True):
            for index in sorted(work.results):
                shard.add(work.results[index])
            if work.plan is not None:  # the float model's shards serve every later session
                self._works.pop(work.key, None)
        ids = kept_ids(data, shards)
        if not ids:
            raise ClusterError(f"no utterance of DATA {data.source} could be used on the workers")
        skipped = skipped_items(data, shards, self._audio_skipped)
        info = ClusterInfo(
            address=self.settings.address,
            workers=len(self._workers),
            worker_threads=self.settings.worker_threads,
            shard_size=self.settings.shard_size,
            shards=len(works[0].payloads),
            nodes=[],
            timing_node=self.settings.timing_node or "driver",
            timing_host=host,
            n_timed=0,
            workers_replaced=self.replaced,
        )
        return [
            merge_run(result, shard, ids, skipped, settings, info, started_at)
            for result, shard in zip(timed, shards, strict=True)
        ]

    # -- the timing session -------------------------------------------------------------------

    def _time_here(
        self,
        runs: Sequence[PlanRun],
        subset: Dataset,
        settings: BenchSettings,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> tuple[list[BenchResult], str]:
        """The session in this process; between utterances the workers' queue is served."""
        models = [run.model() for run in runs]

        def serve(p: Progress) -> None:
            if progress is not None and self.shards_done >= self.shards_total:
                progress(p)
            self._serve(0, progress)

        results = paired_benchmark(models, subset, settings, progress=serve, cancel=cancel)
        return results, socket.gethostname()

    def _time_there(
        self,
        runs: Sequence[PlanRun],
        subset: Dataset,
        settings: BenchSettings,
        works: list[_Work],
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> tuple[list[BenchResult], str]:
        """The session on the timing node, while the workers transcribe (retried if it dies)."""
        waves: list[list[Any]] = []
        for run in runs:
            waves.append(list(run.calibration_waves))
        utterances = [utterance_to_dict(u) for u in subset]
        paths = [u.audio_path for u in subset]
        ship = all(p.is_file() for p in paths) and (
            sum(p.stat().st_size for p in paths) <= self.settings.ship_limit
        )
        files = self.ray.put([p.read_bytes() for p in paths]) if ship else None
        plans = [run.plan.to_dict() if run.plan is not None else None for run in runs]
        for attempt in range(1, self.settings.max_attempts + 1):
            ref = self._timing_worker().time_session.remote(
                plans, waves, utterances, files, settings.to_dict()
            )
            self._wait(works, [ref], progress, cancel)
            try:
                out = self._get(ref)
            except _WorkerDied:
                self._timer = None
                if attempt == self.settings.max_attempts:
                    raise ClusterError(
                        f"the timing node died {attempt} times in a row; see the Ray logs"
                    ) from None
                continue
            return out["results"], out["host"]
        raise AssertionError("unreachable")

    def _check_machine(self, result: BenchResult) -> None:
        machine = result.machine
        if machine is None:
            return
        if self._machine is None:
            self._machine = machine
        elif machine.key != self._machine.key:
            raise ClusterError(
                f"the timing node changed from {self._machine.label()} to {machine.label()} "
                "mid-run; pin it with --timing-node"
            )

    # -- workers ------------------------------------------------------------------------------

    def workers(self) -> list[Any]:
        """The worker actors (started, and their model opened, on first use)."""
        if not self._workers:
            self._workers = [self._new_worker() for _ in range(self.n_workers)]
            for ref in [w.ready.remote() for w in self._workers]:
                self._get(ref)
        return self._workers

    def _model_spec(self) -> ModelSpec:
        if self._spec is None:
            folder = self.model.folder
            if folder is None:
                raise ClusterError(
                    f"{self.model.source} has no model folder to give the workers; open it from one"
                )
            self._spec = ModelSpec(
                self.model.source, model_digest(self.model), self._opener, str(folder)
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

    def _timing_worker(self) -> Any:
        if self._timer is None:
            label = self.settings.timing_node
            assert label is not None
            self._timer = self._new_worker({label: 0.001}, threads=0)  # 0: all its cores
            self._get(self._timer.ready.remote())
        return self._timer

    def _replace(self, dead: Any) -> None:
        if dead in self._workers:
            slot = self._workers.index(dead)
            self._workers[slot] = self._new_worker()
            self._get(self._workers[slot].ready.remote())
            self.replaced += 1

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

    def _submit(self, run: PlanRun, data: Dataset, first: bool = False) -> _Work:
        plan = run.plan.to_dict() if run.plan is not None else None
        key = hashlib.sha256(
            json.dumps([plan, run.calibration_ids, data.ids], sort_keys=True).encode()
        ).hexdigest()
        work = self._works.get(key)
        if work is None:
            shards = shard_ids(data.ids, self.settings.shard_size)
            work = _Work(key, plan, self._calibration(run), self._payloads(data, shards))
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
        missing = [s for s in shards if tuple(s) not in self._shard_waves]
        if missing:
            self._ship_audio(data, missing)
        return [self._shard_waves[tuple(s)] for s in shards]

    def _ship_audio(self, data: Dataset, missing: list[list[str]]) -> None:
        wanted = {i for shard in missing for i in shard}
        subset = Dataset(data.source, data.form, [u for u in data if u.id in wanted])
        loaded = {u.id: (u, w) for u, w in iter_loaded(subset, self.model.sample_rate)}
        self._audio_skipped.update((s.id, s.reason) for s in subset.skipped)
        for shard in missing:
            kept = [loaded[i] for i in shard if i in loaded]
            self._shard_waves[tuple(shard)] = (
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

    def _serve(self, timeout: float, progress: ProgressCallback | None) -> None:
        """Queue tasks on idle workers, collect what finished (waiting up to ``timeout``)."""
        self._dispatch()
        if self._in_flight:
            ready, _ = self.ray.wait(list(self._in_flight), num_returns=1, timeout=timeout)
            for ref in ready:
                self._collect(ref)
        report(progress, self.shards_done, self.shards_total, SHARDS_STAGE)

    def _wait(
        self,
        works: list[_Work],
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
                self._serve(_POLL_SECONDS, progress)
            elif complete:
                time.sleep(_POLL_SECONDS)
            else:
                raise RuntimeError("cluster shards were lost: neither queued nor running")

    def _collect(self, ref: Any) -> None:
        task = self._in_flight.pop(ref)
        try:
            out = self._get(ref)
        except _WorkerDied:
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

    def _get(self, ref: Any) -> Any:
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayActorError:
            raise _WorkerDied(
                "a cluster worker died before it was ready; see the Ray logs of the cluster"
            ) from None
        except exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, SpeechquantError):
                raise type(cause)(str(cause)) from None
            raise ClusterError(
                f"a worker failed: {type(cause).__name__ if cause else 'error'}: {cause}"
            ) from None
