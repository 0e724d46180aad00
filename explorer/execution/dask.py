"""Runs on dask.distributed: a local cluster by default, or any cluster given.

The only module of explorer that imports ``distributed``, and only when a dask
back end is asked for.
"""
from __future__ import annotations

import ipaddress
import itertools
import logging
import os
import pickle
import queue
import uuid
from typing import Any, Callable, Iterator, Sequence

from .base import Executor

__all__ = ["DaskExecutor", "DaskLock"]

log = logging.getLogger("explorer")

def cluster_config() -> dict[str, Any]:
    """dask settings for a local cluster explorer starts (its scheduler and workers).

    - dask's nannies set glibc's ``MALLOC_TRIM_THRESHOLD_`` to 64 KiB so that
      workers hand memory back at once; setting it at all also fixes glibc's
      mmap threshold, so every large array a run allocates is fresh mmapped
      memory and page-faults anew (measured here: the same numpy work 1.6-1.8x
      slower in a worker than in the main process). It is left unset.
    - The workers' statistical profiler (a sample every 10 ms) is off.
    - Housekeeping runs less often: the event loops' health tick every 200 ms
      (not 20), the system monitor every second (not 0.5), the memory monitor
      every 200 ms (not 100). An idle 2-worker cluster then keeps 0.02 of a
      core busy instead of 0.1, which runs get back on a small machine.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.nanny.pre-spawn-environ": environ,
            "distributed.worker.profile.enabled": False,
            "distributed.admin.tick.interval": "200ms",
            "distributed.admin.system-monitor.interval": "1s",
            "distributed.worker.memory.monitor-interval": "200ms"}


_DASK_TRIM_DEFAULT = "65536"


class DaskLock:
    """A ``distributed.Lock`` by name that can travel to workers.

    Parameters
    ----------
    name : str
        The lock's name (explorer uses the file's absolute path).
    timeout : float
        Seconds to wait for the lock before giving up with ``TimeoutError``.
    """

    def __init__(self, name: str, timeout: float = 600.0):
        self.name = name
        self.timeout = timeout
        self._lock: Any = None

    def __enter__(self) -> "DaskLock":
        from distributed import Lock

        self._lock = Lock(self.name)
        if not self._lock.acquire(timeout=self.timeout):
            raise TimeoutError(f"could not acquire the dask lock {self.name!r} within "
                               f"{self.timeout} s")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()
        self._lock = None

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "timeout": self.timeout, "_lock": None}


class _Opaque:
    """A chunk travelling as one pickled blob, unpickled only where it runs.

    dask would otherwise walk every element of the chunk to size it, and the
    scheduler would unpickle and pickle again thousands of small tuples that
    it only passes on (measured: a quarter of the driver IO loop's samples on a LIF grid).
    """

    __slots__ = ("blob",)

    def __init__(self, value: Any):
        import cloudpickle  # as dask pickles: values may be of classes defined in __main__

        self.blob = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    @property
    def value(self) -> Any:
        return pickle.loads(self.blob)

    def __getstate__(self) -> bytes:
        return self.blob

    def __setstate__(self, blob: bytes) -> None:
        self.blob = blob


def _call(func: Callable[[Any, Any], Any], shared: Any, chunk: _Opaque) -> tuple[str, Any]:
    """On a worker: ``func(shared, chunk)``, and the address of the worker that ran it."""
    from distributed import get_worker

    if isinstance(shared, _Opaque):  # a small shared value, travelling with the chunk
        shared = shared.value
    return get_worker().address, func(shared, chunk.value)


#: A shared value that pickles to at most this many bytes travels inside each
#: chunk's task; a larger one is scattered to every worker once. Scattering is
#: a round trip to the scheduler and the workers before the first chunk can go
#: out (7-8 ms of a 10,000-run LIF grid's start here), a copy of a few KB per
#: task costs microseconds. (A larger value is pickled twice in the driver:
#: once to measure it, once by the scatter.)
EMBED_BYTES = 64 * 1024


#: How long to wait for a chunk before looking again (also how fast a stop is seen).
POLL_SECONDS = 1.0


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0].strip("[]")


def _workers_reachable(client: Any) -> bool:
    """Whether every worker runs where the scheduler does or on a loopback address
    (then this process, which reaches the scheduler, can fetch from them directly)."""
    info = client.scheduler_info()
    scheduler = _host(info.get("address", ""))
    return all(_host(worker) == scheduler or _loopback(_host(worker))
               for worker in info.get("workers", {}))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _outcome(future: Any, direct: bool) -> tuple[str | None, Any]:
    """The worker that ran a finished chunk and its result, fetched from that worker;
    or ``None`` and the exception that lost the chunk.

    With ``direct``, the result comes straight from the worker, not through the
    scheduler, which would receive it and send it on: with the scheduler in this
    process, that was two more passes of every result through this process's
    event loop (measured: the driver's CPU per 10,000-run LIF grid, 20 MB of
    results, fell from a median 0.21 to 0.18 s).
    """
    try:
        if future.status == "finished":
            return future.client.gather(future, direct=direct)
        if future.status == "error":
            return None, future.exception()
    except Exception as error:  # the result was lost before it could be fetched
        return None, error
    return None, RuntimeError(f"dask reported the chunk task as {future.status!r}")


class DaskExecutor(Executor):
    """Maps chunks of runs onto dask workers.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` of this many worker processes, one thread each;
        it is closed by :meth:`close`.
    scheduler : str, optional
        Address of an existing scheduler (``"tcp://host:8786"``); left running.
    client : distributed.Client, optional
        An existing client; left open.
    retries_after_worker_death : int
        How often a chunk whose worker died is run again (local clusters only;
        an external scheduler keeps its own ``allowed-failures`` setting).
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 client: Any = None, retries_after_worker_death: int = 1):
        import dask
        import distributed

        self._cluster = None
        self._owns_client = client is None
        if client is not None:
            self.client = client
        elif scheduler is not None:
            self.client = distributed.Client(scheduler)
        else:
            if os.environ.get("MALLOC_TRIM_THRESHOLD_") == _DASK_TRIM_DEFAULT:
                del os.environ["MALLOC_TRIM_THRESHOLD_"]  # left here by an earlier dask nanny
            with dask.config.set({"distributed.scheduler.allowed-failures":
                                  retries_after_worker_death, **cluster_config()}):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers or 1, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = distributed.Client(self._cluster)
        link = getattr(self.client, "dashboard_link", None)
        if link:
            log.info("dask dashboard: %s", link)
        self.slots = max(1, sum(self.client.nthreads().values()))

    def lock(self, name: str) -> DaskLock:
        """A lock shared by every worker of the cluster."""
        return DaskLock(name)

    def map_chunks(self, func: Callable[[Any, Sequence[Any]], Any], shared: Any,
                   chunks: Iterator[Sequence[Any]],
                   stop: Callable[[], bool] = lambda: False,
                   meanwhile: Callable[[], None] | None = None,
                   ) -> Iterator[tuple[Sequence[Any], Any]]:
        packed = _Opaque(shared)
        scattered = None
        if len(packed.blob) > EMBED_BYTES:
            scattered = self.client.scatter(shared, broadcast=True, hash=False)
        shared_arg = packed if scattered is None else scattered
        token = uuid.uuid4().hex[:12]
        source = iter(chunks)
        in_flight: dict[str, tuple[Any, Sequence[Any]]] = {}
        # (key, (worker, outcome)) of chunks done: the client's callback thread fetches
        # each result as its task ends, so that it is here when this thread wants it
        finished: queue.Queue[tuple[str, tuple[str | None, Any]]] = queue.Queue()
        direct = False  # results straight from the workers, once known they can be reached
        number = 0

        def top_up(most: int | None = None, worker: str | None = None) -> None:
            """Hand out chunks until two a slot are out (a worker finds its next chunk
            waiting), or ``most``; all in one message to the scheduler. With ``worker``,
            they go to that worker, unless it is gone: left to dask, a chunk often went
            to the busy worker, and the free one waited 10-25 ms for it to be moved."""
            nonlocal number
            wanted = 2 * self.slots - len(in_flight)
            batch = list(itertools.islice(source, max(0, min(wanted, most or wanted))))
            if not batch:
                return
            keys = [f"explorer-chunk-{token}-{number + i}" for i in range(len(batch))]
            number += len(batch)
            futures = self.client.map(_call, [func] * len(batch), [shared_arg] * len(batch),
                                      [_Opaque(chunk) for chunk in batch], key=keys, pure=False,
                                      workers=None if worker is None else [worker],
                                      allow_other_workers=worker is not None)
            for future, chunk in zip(futures, batch):
                in_flight[future.key] = (future, chunk)
                future.add_done_callback(
                    lambda done: finished.put((done.key, _outcome(done, direct))))

        try:
            top_up()
            direct = _workers_reachable(self.client)  # a round trip: chunks are out
            if meanwhile is not None:
                meanwhile()
            while in_flight:
                try:
                    key, (worker, outcome) = finished.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if stop():
                        return
                    continue
                if key not in in_flight:
                    continue
                done, chunk = in_flight.pop(key)
                if not stop():
                    top_up(1, worker)  # its next chunk, before this one is stored
                # dropping the future releases its key: a message of its own, which
                # sent first would hold the new chunk's back (the client sends to the
                # scheduler at most every 10 ms)
                del done
                yield chunk, outcome
                if stop():
                    return
                top_up()  # runs handed back meanwhile, or a source that ran dry and filled
        finally:
            if in_flight:
                self.client.cancel([future for future, _ in in_flight.values()])
            if scattered is not None:
                scattered.release()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
