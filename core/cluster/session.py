"""Start or join a Ray cluster for one command, and leave nothing running after it.

:func:`cluster_executor` is what the CLI and the GUI call: ``None`` without cluster settings (Ray
is then never imported), else a :class:`~.executor.ClusterExecutor` for the opened model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from speechquant.core.cluster.executor import ClusterExecutor
from speechquant.core.cluster.pool import ShardPool
from speechquant.core.cluster.settings import ClusterError, ClusterSettings
from speechquant.core.model.loaded import LoadedModel

_PASSED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(
            "--cluster needs Ray, which is not installed; pip install 'speechquant[cluster]'"
        ) from None
    return ray


class ClusterSession:
    """An open cluster: how many workers it takes, and executors bound to a model."""

    def __init__(self, settings: ClusterSettings, ray: Any, workers: int) -> None:
        self.settings = settings
        self.ray = ray
        self.workers = workers
        self._executors: list[ClusterExecutor] = []

    def executor(self, model: LoadedModel, opener: Callable[[str], LoadedModel]) -> ClusterExecutor:
        """A :class:`~.executor.ClusterExecutor` for ``model``; ``opener`` opens its folder on
        a worker (pass :func:`speechquant.core.sources.open_model`)."""
        made = ClusterExecutor(ShardPool(self.settings, self.ray, self.workers, model, opener))
        self._executors.append(made)
        return made

    def close(self) -> None:
        for made in self._executors:
            made.shutdown()
        self._executors.clear()


@contextmanager
def open_cluster(settings: ClusterSettings) -> Iterator[ClusterSession]:
    """Start (``local[:N]``) or join (``auto``, ``ray://``) a cluster; stop what was started.

    A Ray runtime this process already holds is used as it is (and left running).
    """
    ray = import_ray()
    started = False
    env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
    if not ray.is_initialized():
        options: dict[str, Any] = dict(
            include_dashboard=False, log_to_driver=False, logging_level="ERROR",
            runtime_env={"env_vars": env},
        )  # fmt: skip
        try:
            if settings.is_local:
                workers = settings.local_workers or 1
                ray.init(
                    num_cpus=workers * settings.worker_threads,
                    object_store_memory=settings.object_store_bytes,
                    **options,
                )
            else:
                ray.init(address=settings.address, **options)
        except ConnectionError as error:
            raise ClusterError(
                f"cannot join the Ray cluster at {settings.address} ({error}); start it with "
                "`ray start --head` or check the address"
            ) from None
        except Exception as error:  # Ray raises a bare Exception when its processes start late
            ray.shutdown()
            raise ClusterError(
                f"Ray did not start for {settings.address}: {str(error).splitlines()[0]}; "
                "retry when the machine is less loaded"
            ) from None
        started = True
    session: ClusterSession | None = None
    try:
        resources = ray.cluster_resources()
        if settings.is_local:
            workers = settings.local_workers or 1
        else:
            workers = int(resources.get("CPU", 0) // settings.worker_threads)
        if workers < 1:
            raise ClusterError(
                f"the cluster at {settings.address} has {resources.get('CPU', 0)} CPUs, fewer "
                f"than one worker of {settings.worker_threads} threads needs"
            )
        label = settings.timing_node
        if label is not None and resources.get(label, 0) <= 0:
            raise ClusterError(
                f"no node of the cluster offers the Ray resource '{label}' (--timing-node); "
                f"start the timing node with `ray start ... --resources '{{\"{label}\": 1}}'`"
            )
        session = ClusterSession(settings, ray, workers)
        yield session
    finally:
        if session is not None:
            session.close()
        if started:
            ray.shutdown()


@contextmanager
def cluster_executor(
    settings: ClusterSettings | None,
    model: LoadedModel,
    opener: Callable[[str], LoadedModel],
) -> Iterator[ClusterExecutor | None]:
    """None without ``settings``; else an executor for ``model`` on the cluster they name, whose
    workers are stopped (and a ``local`` cluster shut down) afterwards."""
    if settings is None:
        yield None
        return
    with open_cluster(settings) as session:
        yield session.executor(model, opener)
