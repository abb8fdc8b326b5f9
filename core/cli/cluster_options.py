"""``--cluster`` and its companions, shared by ``compare``, ``sensitivity`` and ``search``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from speechquant.core.cluster.settings import DEFAULT_TIMING_N, ClusterSettings
from speechquant.core.evaluation.results import BenchResult
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.sources import open_model

CLUSTER_HELP = (
    "transcribe on a Ray cluster: local[:N] starts N workers on this machine (default: one per "
    "core), auto joins the cluster this machine is a node of, ray://HOST:PORT joins through the "
    "Ray client (needs speechquant[cluster]). Utterances are sharded by id over the workers, so "
    "WER and transcripts are those of a run in one process; every speed-up comes from one paired "
    "session on the timing node over --timing-n utterances"
)


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (only with --cluster)")
    group.add_argument("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)
    group.add_argument(
        "--worker-threads", type=int, default=1, help="torch threads (and Ray CPUs) per worker (1)"
    )
    group.add_argument(
        "--shard-size", type=int, default=8, help="utterances per worker task (default 8)"
    )
    group.add_argument(
        "--timing-node",
        metavar="RESOURCE",
        help="the node offering this Ray custom resource runs the timing sessions, with all its "
        "cores unless --threads (default: this process, with --threads)",
    )
    group.add_argument(
        "--timing-n",
        type=int,
        default=DEFAULT_TIMING_N,
        help="utterances timed per session, spread evenly over the sorted ids (default "
        f"{DEFAULT_TIMING_N}); RTF and speed-ups cover these only",
    )


def cluster_settings(args: argparse.Namespace) -> ClusterSettings | None:
    """The cluster the command runs on (None without ``--cluster``; bad values raise one line)."""
    if args.cluster is None:
        return None
    return ClusterSettings(
        args.cluster,
        worker_threads=args.worker_threads,
        shard_size=args.shard_size,
        timing_node=args.timing_node,
        timing_n=args.timing_n,
    )


@contextmanager
def cluster_executor(
    settings: ClusterSettings | None, model: LoadedModel, args: argparse.Namespace
) -> Iterator[Any]:
    """None without ``--cluster``; else a cluster executor for ``model``, closed afterwards.

    Ray is imported only here, and only with ``--cluster``.
    """
    if settings is None:
        yield None
        return
    from speechquant.core.cluster.session import cluster_executor as open_executor

    opener = partial(open_model, trust_code=getattr(args, "trust_code", False))
    with open_executor(settings, model, opener) as executor:
        yield executor


def cluster_note(result: BenchResult) -> str | None:
    """Where a cluster result was transcribed and timed (None for a result of one process)."""
    spread = result.cluster
    if spread is None:
        return None
    machine = result.machine
    where = f"{machine.label()}, machine {machine.key}" if machine is not None else "?"
    return (
        f"transcribed by {spread.workers} cluster workers on {', '.join(spread.nodes)} "
        f"({spread.shards} shards of {spread.shard_size}); RTF and speed-ups from one paired "
        f"session on {spread.timing_node} ({spread.timing_host}: {where}) over "
        f"{spread.n_timed} of {result.n_utterances} utterances"
    )
