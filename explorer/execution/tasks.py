"""Chunks of runs as plain dask tasks: for clusters whose workers come and go.

A user's cluster may grow while runs go on (``cluster.adapt()``, jobs leaving a
batch queue late), shrink (adaptive scale-down, ``retire_workers``, dask-jobqueue's
``--lifetime``) or be shared. Plain tasks suit it where explorer's chunk runners
(dask actors, :mod:`.dask`) do not: the scheduler sees the work waiting, so an
adaptive cluster grows for it; a worker retired gracefully has its unstarted
tasks handed to others; a new worker is given queued tasks at once; the runs
show in the dashboard's task stream; and nothing of explorer stays on the
workers once a map ends. A task costs the cores a few ms more than an actor
call (see ``benchmarks/bench_scaling.py``), which chunks of about 0.3 s of
work make small.

While a map goes on, :class:`TaskMap` keeps two chunks a worker thread
submitted, counting the workers again every :data:`RECOUNT_SECONDS`; on an
adaptive cluster (``cluster.adapt()``) also enough that the scheduler sees
about :data:`QUEUED_SECONDS` of work, which is what it scales by. Elsewhere
runs are handed out only as workers free up, so that chunk sizes follow the
measured cost and finished runs are committed as they come.
"""
from __future__ import annotations

import collections
import dataclasses
import importlib
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["TaskMap", "QUEUED_SECONDS", "RECOUNT_SECONDS"]

#: Work (seconds, by the chunks' measured duration) kept submitted beyond one
#: chunk a thread, so that an adaptive cluster sees it (``adapt()``'s target
#: duration is 5 s by default).
QUEUED_SECONDS = 8.0
#: How often, at most, the workers are counted again while chunks run.
RECOUNT_SECONDS = 0.5
#: How long to wait for a chunk before looking again (also how fast a stop is seen).
POLL_SECONDS = 0.5
#: Unpickled jobs a worker process keeps (the maps that ran there last).
JOBS_KEPT = 4
#: A map's job up to this size travels inside each chunk's task; a larger one is a
#: task of its own that the chunks depend on, which dask then places the first
#: chunks beside, so that the other workers start late (see ``bench_scaling.py``
#: in ``benchmarks/README.md``).
INLINE_JOB_BYTES = 64 * 1024
#: Tries at registering the imports plugin while workers leave, and seconds between them.
REGISTER_TRIES = 5
REGISTER_PAUSE = 0.2

# in a worker process: token -> (func, shared) of the maps that ran there lately
_JOBS: collections.OrderedDict[str, Any] = collections.OrderedDict()
_JOBS_LOCK = threading.Lock()


class ExplorerImports(WorkerPlugin):
    """Imports explorer's modules in a worker before it runs any task.

    A job unpickled in a task's thread imports the modules it refers to; a
    second thread importing explorer meanwhile (deserialising the next task,
    or another task's job) could then meet a module partly initialised and
    fail with ``ImportError`` (seen once in a few runs of a worker retired
    mid-map). Imported in the plugin's setup, before tasks, nothing is left
    to import concurrently.

    Parameters
    ----------
    modules : list of str
        The explorer modules the driver has imported.
    """

    name = "explorer-imports"

    def __init__(self, modules: list[str]):
        self.modules = modules

    def setup(self, worker: Any) -> None:
        for module in self.modules:
            importlib.import_module(module)


def explorer_imports() -> ExplorerImports:
    """The plugin importing every explorer module this process has imported."""
    return ExplorerImports(sorted(name for name in sys.modules
                                  if name == "explorer" or name.startswith("explorer.")))


def register_imports(client: Any) -> None:
    """Register :class:`ExplorerImports` on ``client``'s workers (and those joining later).

    A worker retired while the scheduler sends the plugin to its workers breaks
    the broadcast (``CommClosedError``, an ``OSError``); the scheduler keeps the
    plugin, and sending it again reaches the workers left (its setup can run twice).
    """
    for attempt in range(REGISTER_TRIES):
        try:
            client.register_plugin(explorer_imports(), name=ExplorerImports.name)
            return
        except OSError:
            if attempt == REGISTER_TRIES - 1:
                raise
            time.sleep(REGISTER_PAUSE)


def adaptive(client: Any) -> bool:
    """Whether ``client``'s cluster, made in this process, scales itself (``adapt()``)."""
    scaling = getattr(getattr(client, "cluster", None), "_adaptive", None)
    return getattr(scaling, "state", None) in ("starting", "running")


def _job(job: Any) -> Any:
    """The map's job, as a task's result (see :meth:`TaskMap.__init__`)."""
    return job


def run_chunk(token: str, job: Any, chunk: Any) -> Any:
    """On a worker: ``func(shared, chunk)`` of map ``token`` (``job`` unpickled once
    per worker process and map; ``job`` and ``chunk`` travel as opaque blobs)."""
    with _JOBS_LOCK:  # one thread unpickles a map's job (and imports what it needs)
        found = _JOBS.get(token)
        if found is None:
            found = _JOBS[token] = job.value
            while len(_JOBS) > JOBS_KEPT:
                _JOBS.popitem(last=False)
    func, shared = found
    return func(shared, chunk.value)


@dataclasses.dataclass
class Finished:
    """A chunk's task ended: its number, and the future to read its result from."""

    number: int
    future: Any


class TaskMap:
    """One ``map_chunks`` over a client's workers, a dask task per chunk.

    Parameters
    ----------
    client : distributed.Client
        The client; its workers may change while the map goes on.
    func, shared
        Each chunk's task returns ``func(shared, chunk)``.
    chunks : iterator
        The chunks; asked again after each result (it may run dry and fill). An
        iterator with a ``slots`` attribute (the planner) is told the number of
        worker threads as it changes.
    opaque : callable
        Wraps a value to travel as one pickled blob.
    """

    def __init__(self, client: Any, func: Callable[[Any, Any], Any], shared: Any,
                 chunks: Iterator[Any], opaque: Callable[[Any], Any]):
        self.client = client
        self.chunks = chunks
        self.opaque = opaque
        self.token = uuid.uuid4().hex[:12]
        register_imports(client)
        job = opaque((func, shared))
        if len(job.blob) <= INLINE_JOB_BYTES:  # in each chunk's task: placed anywhere
            self.job = None
            self._job_argument: Any = job
        else:  # a task, not scattered data: if the worker holding it dies, it is made again
            self.job = client.submit(_job, job, key=f"explorer-job-{self.token}", pure=False)
            self._job_argument = self.job
        self.out: dict[int, tuple[Any, Any]] = {}  # number -> (chunk, future)
        self.finished: queue.Queue[Finished] = queue.Queue()
        self.threads = 1
        self.adaptive = adaptive(client)
        self.dry = False
        self._counted = -float("inf")
        self._numbers = iter(range(1 << 62))
        self._seconds: collections.deque[float] = collections.deque(maxlen=16)

    # ------------------------------------------------------------------ sending
    def count(self) -> None:
        """Count the workers' threads again (at most every :data:`RECOUNT_SECONDS`)."""
        if time.monotonic() - self._counted < RECOUNT_SECONDS:
            return
        self.threads = max(1, sum(self.client.nthreads().values()))
        self._counted = time.monotonic()
        if hasattr(self.chunks, "slots"):
            self.chunks.slots = self.threads

    def _wanted(self) -> int:
        """Chunks to keep submitted: two a thread, and on an adaptive cluster enough
        for :data:`QUEUED_SECONDS` of work once a chunk's duration is known."""
        wanted = 2 * self.threads
        if self._seconds and self.adaptive:
            per_chunk = max(sorted(self._seconds)[len(self._seconds) // 2], 1e-3)
            wanted = max(wanted, self.threads + int(QUEUED_SECONDS / per_chunk))
        return wanted

    def top_up(self) -> None:
        """Submit chunks from the source until :meth:`_wanted` are out."""
        self.count()
        while len(self.out) < self._wanted():
            try:
                chunk = next(self.chunks)
            except StopIteration:
                self.dry = True
                return
            self.dry = False
            number = next(self._numbers)
            future = self.client.submit(run_chunk, self.token, self._job_argument,
                                        self.opaque(chunk),
                                        key=f"explorer-run-{self.token}-{number}", pure=False)
            self.out[number] = (chunk, future)
            future.add_done_callback(
                lambda done, number=number: self.finished.put(Finished(number, done)))

    # ---------------------------------------------------------------- receiving
    def results(self, stop: Callable[[], bool],
                meanwhile: Callable[[], None] | None) -> Iterator[tuple[Any, Any]]:
        """Yield ``(chunk, result or exception)`` as the chunks' tasks end."""
        self.top_up()
        if meanwhile is not None:
            meanwhile()
        while self.out or not self.dry:
            if stop():
                return
            try:
                event = self.finished.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self.top_up()
                continue
            chunk, future = self.out.pop(event.number)
            try:
                value = future.result()
            except Exception as error:  # the task failed as a whole (its worker died...)
                value = error
            future.release()
            if not isinstance(value, BaseException):
                seconds = getattr(value, "seconds", None)
                if seconds:
                    self._seconds.append(seconds)
            if not stop():
                self.top_up()  # the next chunks go out before this one is stored
            yield chunk, value
            if not stop():
                self.top_up()  # runs handed back meanwhile (a chunk's budget ran out)

    def close(self) -> None:
        """Cancel the chunks still out and release the job: nothing stays on the workers."""
        futures = [future for _, future in self.out.values()]
        self.out.clear()
        if futures:
            self.client.cancel(futures)
        if self.job is not None:
            self.client.cancel([self.job])
            self.job.release()
        try:
            self.client.unregister_worker_plugin(ExplorerImports.name)
        except Exception:  # the cluster is closing, or another map removed it meanwhile
            pass
