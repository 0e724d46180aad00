"""Runs on dask.distributed: a local cluster by default, or any cluster given.

The only modules of explorer that import ``distributed`` are this one,
:mod:`.tasks` and :mod:`.onworker`, and only when a dask back end is asked
for. Each chunk of runs is a plain dask task (:mod:`.tasks`) on every cluster,
explorer's own (``workers=N``) or a user's (``scheduler=``, ``client=``).
"""
from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import dask
import distributed

from .base import ChunkT, Executor
from .mainguard import unguarded_scripts_reported
from .tasks import TaskMap

__all__ = ["DaskExecutor"]

log = logging.getLogger("explorer")


def cluster_config(retries_after_worker_death: int = 1) -> dict[str, Any]:
    """dask settings for a local cluster explorer starts (its scheduler and workers).

    - A task is run again at most ``retries_after_worker_death`` times after its
      worker died under it (dask's ``allowed-failures``; 3 by default).

    - dask's nannies set glibc's ``MALLOC_TRIM_THRESHOLD_`` to 64 KiB so that
      workers hand memory back at once; setting it at all also fixes glibc's
      mmap threshold, so every large array a run allocates is fresh mmapped
      memory and page-faults anew (the same numpy work then runs markedly
      slower in a worker than in the main process). It is left unset.
    - The workers' statistical profiler (a sample every 10 ms) is off.
    - Housekeeping runs less often: the event loops' health tick every 200 ms
      (not 20), the system monitor every second (not 0.5), the memory monitor
      every 200 ms (not 100), so that an idle cluster takes less processor
      time from the runs on a small machine.
    """
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.nanny.pre-spawn-environ": environ,
            "distributed.scheduler.allowed-failures": retries_after_worker_death,
            "distributed.worker.profile.enabled": False,
            "distributed.admin.tick.interval": "200ms",
            "distributed.admin.system-monitor.interval": "1s",
            "distributed.worker.memory.monitor-interval": "200ms"}


_DASK_TRIM_DEFAULT = "65536"


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0].strip("[]")


def _workers_reachable(client: Any) -> bool:
    """Whether every worker runs where the scheduler does or on a loopback address
    (then this process, which reaches the scheduler, can call them directly)."""
    info = client.scheduler_info()
    scheduler = _host(info.get("address", ""))
    return all(_host(worker) == scheduler or _loopback(_host(worker))
               for worker in info.get("workers", {}))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class DaskExecutor(Executor):
    """Maps chunks of runs onto dask workers, each chunk a dask task.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` of this many worker processes, one thread each;
        it is closed by :meth:`close`.
    scheduler : str, optional
        Address of an existing scheduler (``"tcp://host:8786"``); left running.
    client : distributed.Client, optional
        An existing client; left open. Chunks reach the workers straight from
        this process if the client was made with ``direct_to_workers=True``,
        otherwise through the scheduler.
    retries_after_worker_death : int
        On the cluster started for ``workers``: how often a chunk whose worker
        died under it runs again before it is run again run by run, and a run
        whose worker died under it runs again before it is recorded failed
        (dask's ``distributed.scheduler.allowed-failures``). A cluster given
        follows its own setting (3 by default).
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 client: Any = None, retries_after_worker_death: int = 1):
        self._cluster = None
        self._owns_client = client is None
        if client is not None:
            self.client = client
        elif scheduler is not None:
            self.client = distributed.Client(scheduler)
            # straight to the workers when this process can reach them
            self.client.direct_to_workers = _workers_reachable(self.client)
        else:
            if os.environ.get("MALLOC_TRIM_THRESHOLD_") == _DASK_TRIM_DEFAULT:
                del os.environ["MALLOC_TRIM_THRESHOLD_"]  # left here by an earlier dask nanny
            with dask.config.set(cluster_config(retries_after_worker_death)), \
                    unguarded_scripts_reported():
                self._cluster = distributed.LocalCluster(
                    n_workers=workers or 1, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = distributed.Client(self._cluster, direct_to_workers=True)
        link = getattr(self.client, "dashboard_link", None)
        if link:
            log.info("dask dashboard: %s", link)
        self.slots = max(1, sum(self.client.nthreads().values()))

    @property
    def dashboard_link(self) -> str | None:
        """The address of the cluster's dask dashboard, if it has one."""
        return getattr(self.client, "dashboard_link", None) or None

    def map_chunks(self, func: Callable[[Any, ChunkT], Any], shared: Any,
                   chunks: Iterator[ChunkT],
                   stop: Callable[[], bool] = lambda: False,
                   meanwhile: Callable[[], None] | None = None,
                   ) -> Iterator[tuple[ChunkT, Any]]:
        tasks = TaskMap(self.client, func, shared, chunks)
        try:
            yield from tasks.results(stop, meanwhile)
        finally:
            tasks.close()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
