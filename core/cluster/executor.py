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

import socket
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from speechquant.core.cluster.merge import ShardRows, kept_ids, merge_run, skipped_items
from speechquant.core.cluster.pool import ShardPool, Work, WorkerDied
from speechquant.core.cluster.settings import ClusterError, timing_ids
from speechquant.core.cluster.worker import utterance_to_dict
from speechquant.core.data.datasets import Dataset
from speechquant.core.errors import Cancelled
from speechquant.core.evaluation.bench import BenchSettings
from speechquant.core.evaluation.executor import LOCAL, PlanRun
from speechquant.core.evaluation.results import BenchResult, ClusterInfo
from speechquant.core.machine import MachineInfo, this_machine
from speechquant.core.progress import CancelToken, Progress, ProgressCallback


class ClusterExecutor:
    """A :class:`~..evaluation.executor.SessionExecutor` over the worker actors of ``pool``
    (its settings and Ray module are the executor's too)."""

    queues_ahead = True

    def __init__(self, pool: ShardPool) -> None:
        self.pool = pool
        self.settings = pool.settings
        self.ray = pool.ray
        self._machine: MachineInfo | None = None

    def workers(self) -> list[Any]:
        """The worker actors (started, and their model opened, on first use)."""
        return self.pool.workers()

    @property
    def replaced(self) -> int:
        """Workers replaced after they died."""
        return self.pool.replaced

    def shutdown(self) -> None:
        """Kill the workers and forget all queued work (a later session starts new ones)."""
        self.pool.shutdown()

    # -- the SessionExecutor protocol ---------------------------------------------------------

    def key_parts(self, dataset: Dataset) -> dict[str, Any]:
        return {
            "timing_node": self.settings.timing_node or "driver",
            "timing_ids": timing_ids(dataset.ids, self.settings.timing_n),
        }

    def timing_machine(self, threads: int | None = None) -> MachineInfo:
        if self.settings.timing_node is None:
            return this_machine(threads)
        pool = self.pool
        return MachineInfo.from_json(pool.get(pool.timing_worker().machine.remote(threads)))

    def prefetch(self, runs: Sequence[PlanRun], dataset: Dataset, settings: BenchSettings) -> None:
        data = dataset.first(settings.limit) if settings.limit is not None else dataset
        for run in runs:
            self.pool.submit(run, data)

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
            works = [self.pool.submit(run, data, first=True) for run in reversed(runs)][::-1]
            if self.settings.timing_node is None:
                timed, host = self._time_here(runs, subset, timing, progress, cancel)
                self.pool.wait(works, [], progress, cancel)
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
                self.pool.forget(work)
        ids = kept_ids(data, shards)
        if not ids:
            raise ClusterError(f"no utterance of DATA {data.source} could be used on the workers")
        skipped = skipped_items(data, shards, self.pool.audio_skipped)
        info = ClusterInfo(
            address=self.settings.address,
            workers=self.pool.n_workers,
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

        def serve(p: Progress) -> None:
            if progress is not None and self.pool.shards_done >= self.pool.shards_total:
                progress(p)
            self.pool.serve(0, progress)

        return LOCAL.measure(runs, subset, settings, serve, cancel), socket.gethostname()

    def _time_there(
        self,
        runs: Sequence[PlanRun],
        subset: Dataset,
        settings: BenchSettings,
        works: list[Work],
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
            ref = self.pool.timing_worker().time_session.remote(
                plans, waves, utterances, files, settings.to_dict()
            )
            self.pool.wait(works, [ref], progress, cancel)
            try:
                out = self.pool.get(ref)
            except WorkerDied:
                self.pool.lose_timer()
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
