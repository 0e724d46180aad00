"""``workers="auto"``: a local cluster only when the exploration's work pays for it.

The first runs go in this process, until :data:`PROBE_SECONDS` of work is
measured (or the runs are done). The runs left would then take ``work``
seconds here; on a local cluster of ``cores`` worker processes about
``CLUSTER_START_SECONDS + work / cores``. The cluster is started when that is
shorter, that is when ``work > CLUSTER_START_SECONDS * cores / (cores - 1)``:
with 2 cores, runs left worth more than 6 s. A machine with one core always
runs in this process.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from .base import ChunkT, Executor
from .serial import SerialExecutor

__all__ = ["AutoExecutor", "PROBE_SECONDS", "CLUSTER_START_SECONDS", "worth_a_cluster"]

#: Work measured in this process before deciding (seconds).
PROBE_SECONDS = 0.5
#: What starting a local cluster and loading the run function in its workers
#: costs (seconds), rounded up from a small machine's (see the end-to-end figures
#: of ``bench_scaling.py`` in ``benchmarks/README.md``).
CLUSTER_START_SECONDS = 3.0


def worth_a_cluster(seconds_left: float, cores: int) -> bool:
    """Whether ``seconds_left`` of work end sooner on a cluster of ``cores`` workers."""
    return cores > 1 and seconds_left > CLUSTER_START_SECONDS * cores / (cores - 1)


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1


class AutoExecutor(Executor):
    """Runs in this process, or moves to a local cluster once the work is measured.

    Attributes
    ----------
    workers : int or None
        ``None`` until decided; then 1 (in this process) or the cluster's workers.
    """

    slots = 1

    def __init__(self, start_cluster: Callable[[int], Executor]):
        self._start_cluster = start_cluster
        self._cluster: Executor | None = None
        self.workers: int | None = None

    def map_chunks(self, func: Callable[[Any, ChunkT], Any], shared: Any,
                   chunks: Iterator[ChunkT],
                   stop: Callable[[], bool] = lambda: False,
                   meanwhile: Callable[[], None] | None = None,
                   ) -> Iterator[tuple[ChunkT, Any]]:
        if self._cluster is not None:  # decided for a cluster by an earlier map
            yield from self._cluster.map_chunks(func, shared, chunks, stop, meanwhile)
            return
        seconds, runs = 0.0, 0
        here = SerialExecutor().map_chunks(func, shared, chunks, stop, meanwhile)
        for chunk, value in here:
            yield chunk, value
            seconds += getattr(value, "seconds", 0.0)
            runs += len(getattr(value, "outcomes", chunk))
            if stop() or (self.workers is None and seconds >= PROBE_SECONDS):
                break
        else:  # every run is done, here
            self.workers = self.workers or 1
            return
        if stop():
            return
        left = getattr(chunks, "remaining", 0)
        if self.workers is None:
            available = cores()
            if runs and worth_a_cluster(seconds / runs * left, available):
                self._cluster = self._start_cluster(available)
                self.workers = available
            else:
                self.workers = 1
        rest = self._cluster or SerialExecutor()
        yield from rest.map_chunks(func, shared, chunks, stop)

    @property
    def dashboard_link(self) -> str | None:
        """The cluster's dask dashboard, once one is started."""
        return getattr(self._cluster, "dashboard_link", None)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
