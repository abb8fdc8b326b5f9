"""``--cluster`` and its companions, shared by ``compare``, ``sensitivity`` and ``search``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from speechquant.core.cluster.settings import DEFAULT_TIMING_N, ClusterError, ClusterSettings
from speechquant.core.evaluation.results import BenchResult
from speechquant.core.model.loaded import LoadedModel
from speechquant.core.sources import open_model

CLUSTER_HELP = (
    "transcribe on a Ray cluster: local[:N] starts a Ray cluster of N workers on this machine "
    "(default N: its cores / --worker-threads), auto joins the cluster this machine is a node of, "
    "ray://HOST:PORT joins through the Ray client (needs speechquant[cluster]). Utterances are "
    "sharded by id over the workers, so WER and transcripts are those of a run in one process; "
    "every RTF and speed-up comes from one paired session on the timing node over --timing-n "
    "utterances"
)


_COMPANIONS = ("worker_threads", "shard_size", "timing_node", "timing_n")


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (only with --cluster)")
    group.add_argument("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)
    group.add_argument(
        "--worker-threads",
        type=int,
        metavar="T",
        help="torch threads (and Ray CPUs) per worker (default 1)",
    )
    group.add_argument(
        "--shard-size", type=int, metavar="S", help="utterances per worker task (default 8)"
    )
    group.add_argument(
        "--timing-node",
        metavar="RESOURCE",
        help="the node offering this Ray custom resource runs the timing sessions, with all its "
        "cores unless --threads (default: this process, with --threads or torch's default)",
    )
    group.add_argument(
        "--timing-n",
        type=int,
        metavar="K",
        help="utterances timed per session, spread evenly over the sorted ids (default "
        f"{DEFAULT_TIMING_N}); RTF and speed-ups cover these only",
    )


def cluster_settings(args: argparse.Namespace) -> ClusterSettings | None:
    """The cluster the command runs on (None without ``--cluster``; bad values raise one line)."""
    given = {name: getattr(args, name) for name in _COMPANIONS if getattr(args, name) is not None}
    if args.cluster is None:
        if given:
            option = "--" + next(iter(given)).replace("_", "-")
            raise ClusterError(f"{option} is for cluster runs; add --cluster ADDRESS or drop it")
        return None
    return ClusterSettings(args.cluster, **given)


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
