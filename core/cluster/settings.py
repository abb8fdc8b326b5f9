"""Where the cluster is and how work is spread over it (no Ray import)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from speechquant.core.errors import SpeechquantError


class ClusterError(SpeechquantError):
    """A cluster that cannot be started or joined, or a worker that cannot do its part."""


_LOCAL = re.compile(r"^local(?::(\d+))?$")
_RAY = re.compile(r"^ray://[^\s:/]+:\d+$")

DEFAULT_SHIP_LIMIT = 256 * 1024 * 1024
"""Model folders and audio up to this size go to the workers through Ray's object store;
bigger ones are read by every worker from the same path."""

DEFAULT_TIMING_N = 20
"""Utterances per timing session unless ``--timing-n`` says otherwise."""


@dataclass(frozen=True)
class ClusterSettings:
    """A cluster address and how the work is spread.

    Attributes
    ----------
    address
        ``local`` or ``local:N`` (start a Ray cluster of N workers on this machine; N defaults
        to its cores), ``auto`` (join the cluster this machine belongs to) or
        ``ray://HOST:PORT`` (join through the Ray client).
    worker_threads
        torch threads (and Ray CPUs) per worker actor.
    shard_size
        Utterances per task: shards are consecutive runs of the sorted utterance ids.
    timing_node
        A Ray custom resource naming the node that runs every timing session; ``None``: this
        process (the driver).
    timing_n
        Utterances of each timing session (the float model and the plans timed together on the
        timing node): ``timing_n`` ids spread evenly over the sorted ids (:func:`timing_ids`).
    ship_limit
        Bytes up to which the model folder and the decoded audio travel through the object store.
    max_attempts
        Tries per shard before the run fails (a dead worker is replaced between tries).
    object_store_bytes
        Object store size of a ``local`` cluster.
    """

    address: str
    worker_threads: int = 1
    shard_size: int = 8
    timing_node: str | None = None
    timing_n: int = DEFAULT_TIMING_N
    ship_limit: int = DEFAULT_SHIP_LIMIT
    max_attempts: int = 3
    object_store_bytes: int = 200 * 1024 * 1024

    def __post_init__(self) -> None:
        if not (_LOCAL.match(self.address) or _RAY.match(self.address) or self.address == "auto"):
            raise ClusterError(
                f"unknown cluster address '{self.address}'; use local, local:N, auto or "
                "ray://HOST:PORT"
            )
        if self.local_workers == 0:
            raise ClusterError("local:N needs at least one worker (N >= 1)")
        for name in ("worker_threads", "shard_size", "timing_n", "max_attempts"):
            if getattr(self, name) < 1:
                raise ClusterError(f"cluster {name.replace('_', '-')} must be at least 1")

    @property
    def is_local(self) -> bool:
        return bool(_LOCAL.match(self.address))

    @property
    def local_workers(self) -> int | None:
        """N of ``local:N`` (``local`` alone: the machine's cores); None for a joined cluster."""
        found = _LOCAL.match(self.address)
        if found is None:
            return None
        if found.group(1) is not None:
            return int(found.group(1))
        from speechquant.core.machine import available_cores

        return max(1, available_cores() // self.worker_threads)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shard_ids(ids: list[str], shard_size: int) -> list[list[str]]:
    """``ids`` in sorted order cut into runs of ``shard_size`` (the same cut on every run)."""
    ordered = sorted(ids)
    return [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]


def timing_ids(ids: list[str], n: int) -> list[str]:
    """``n`` ids spread evenly over the sorted ``ids`` (all of them when there are fewer)."""
    ordered = sorted(ids)
    if n >= len(ordered):
        return ordered
    return [ordered[(i * len(ordered)) // n] for i in range(n)]
