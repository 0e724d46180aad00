"""One map of chunks over a dask cluster, each chunk a plain dask task.

Plain tasks suit every cluster, fixed or changing: the scheduler sees the work
waiting, so an adaptive cluster (``cluster.adapt()``, dask-jobqueue) grows for
it; a worker joining late is given queued tasks at once; a worker retired
gracefully (``retire_workers``, adaptive scale-down, ``--lifetime``) hands its
unstarted tasks to others; the runs show in the dashboard's task stream; and
nothing of explorer stays on the workers once a map ends.

While a map goes on, :class:`TaskMap` keeps two chunks a worker thread
submitted, counting the workers again every :data:`RECOUNT_SECONDS`; on an
adaptive cluster also enough that the scheduler sees about
:data:`QUEUED_SECONDS` of work, which is what it scales by. Elsewhere runs are
handed out only as workers free up, so that chunk sizes follow the measured
cost and finished runs are committed as they come. Two things dask does not
do, the map does itself:

- **The tail.** Once every run is handed out and a worker thread is idle, the
  worker holding the most runs is asked to give up half of those it has not
  started (:func:`.onworker.give_up_runs`); they go out as a chunk of their
  own, so that the last chunks end close together whatever their size.
- **Lost workers.** dask runs a task again when its worker dies under it, and
  gives it up (``KilledWorker``) after ``distributed.scheduler.allowed-failures``
  deaths, blaming every chunk the worker held. A chunk given up so is run
  again run by run, each run a task of its own and one at a time, so that no
  such run is blamed for another: the runs that did not kill their worker
  complete, and only a run that kills its worker each time it runs is
  recorded failed.
"""
from __future__ import annotations

import collections
import dataclasses
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from distributed import KilledWorker

from .base import Divisible, splittable
from .onworker import (
    ExplorerImports,
    Opaque,
    explorer_imports,
    forget_job,
    give_up_runs,
    run_chunk,
)

__all__ = ["TaskMap", "register_imports", "QUEUED_SECONDS", "RECOUNT_SECONDS", "POLL_SECONDS"]

#: Work (seconds, by the chunks' measured duration) kept submitted beyond one
#: chunk a thread, so that an adaptive cluster sees it (``adapt()``'s target
#: duration is 5 s by default).
QUEUED_SECONDS = 8.0
#: How often, at most, the workers are counted again while chunks run.
RECOUNT_SECONDS = 0.5
#: How long to wait for a chunk before looking again (also how fast a stop is seen).
POLL_SECONDS = 0.5
#: A map's job travels inside each chunk's task while the copies of it in the
#: chunks first submitted (two a worker thread) come to at most this; a larger
#: one is a task of its own that the chunks depend on, which dask then places
#: the first chunks beside, so that the other workers start late (see
#: ``bench_scaling.py`` and ``bench_fit.py`` in ``benchmarks/README.md``).
INLINE_JOBS_BYTES = 16 * 2**20
#: A worker gives up none of its runs when they would take less than this.
SPLIT_LEAST_SECONDS = 0.02
#: How long an idle thread waits before asking for runs again; doubled after each
#: answer that gave none (up to :data:`POLL_SECONDS`).
ASK_AGAIN_SECONDS = 0.05
#: Tries at registering the imports plugin while workers leave, and seconds between them.
REGISTER_TRIES = 5
REGISTER_PAUSE = 0.2


def register_imports(client: Any) -> None:
    """Register :class:`.onworker.ExplorerImports` on ``client``'s workers (and those
    joining later).

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


def _job(job: Opaque) -> Opaque:
    """The map's job, as a task's result (see :meth:`TaskMap.__init__`)."""
    return job


@dataclasses.dataclass
class Finished:
    """A chunk's task ended: its number, and the future to read its result from."""

    number: int
    future: Any


@dataclasses.dataclass
class Answered:
    """A worker answered the request to give up runs of chunks ``asked``:
    ``{chunk number: runs it keeps}`` for each chunk it cut short."""

    asked: list[int]
    cuts: dict[int, int]


Event = Finished | Answered


@dataclasses.dataclass
class Out:
    """A chunk submitted: the chunk (cut short, if its worker gave up runs) and its task."""

    chunk: Any
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
    """

    def __init__(self, client: Any, func: Callable[[Any, Any], Any], shared: Any,
                 chunks: Iterator[Any]):
        self.client = client
        self.chunks = chunks
        self.threads = 1
        self._counted = -float("inf")
        self.count()
        self.token = uuid.uuid4().hex[:12]
        self.prefix = f"explorer-run-{self.token}-"
        register_imports(client)
        job = Opaque((func, shared))
        if 2 * self.threads * len(job.blob) <= INLINE_JOBS_BYTES:  # in each chunk's task
            self.job = None
            self._job_argument: Any = job
        else:  # a task, not scattered data: if the worker holding it dies, it is made again
            self.job = client.submit(_job, job, key=f"explorer-job-{self.token}", pure=False)
            self._job_argument = self.job
        self.out: dict[int, Out] = {}
        #: Chunks to go out before the source's: runs split off for an idle thread.
        self.spare: collections.deque[Any] = collections.deque()
        #: The runs of chunks given up after their workers died, one a chunk; they go
        #: out one at a time (:attr:`suspect_out`), before anything else.
        self.suspects: collections.deque[Any] = collections.deque()
        self.suspect_out: int | None = None
        self.events: queue.Queue[Event] = queue.Queue()
        self.adaptive = adaptive(client)
        self.dry = False
        self._asking = False
        self._asked_at = -float("inf")
        self._ask_pause = ASK_AGAIN_SECONDS
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
        """Submit chunks (spare ones first) until :meth:`_wanted` are out; at the
        tail, ask for runs for an idle thread."""
        self.count()
        if self.suspects and self.suspect_out is None:
            self.suspect_out = self._submit(self.suspects.popleft())
        while len(self.out) < self._wanted():
            if self.spare:
                chunk = self.spare.popleft()
            else:
                try:
                    chunk = next(self.chunks)
                except StopIteration:
                    self.dry = True
                    break
                self.dry = False
            self._submit(chunk)
        self._ask_for_runs()

    def _submit(self, chunk: Any) -> int:
        """Submit ``chunk`` as a task; its number."""
        number = next(self._numbers)
        future = self.client.submit(run_chunk, self.token, number, self._job_argument,
                                    Opaque(chunk), key=f"{self.prefix}{number}", pure=False)
        self.out[number] = Out(chunk, future)
        future.add_done_callback(
            lambda done, number=number: self.events.put(Finished(number, done)))
        return number

    # ----------------------------------------------------------------- the tail
    def _idle(self) -> bool:
        """Whether a thread is idle with every run handed out, and a chunk out may
        give some up."""
        return (self.dry and not self.spare and not self.suspects
                and len(self.out) < self.threads
                and any(splittable(out.chunk) for out in self.out.values()))

    def _wait(self) -> float:
        """How long to wait for the next event."""
        if self._idle() and not self._asking:
            return max(0.001, self._asked_at + self._ask_pause - time.monotonic())
        return POLL_SECONDS

    def _ask_for_runs(self) -> None:
        """For an idle thread, ask the worker holding the most runs to give up half
        of those it has not started (in a thread of its own: the answer comes
        as an :class:`Answered` event)."""
        if self._asking or not self._idle() or \
                time.monotonic() - self._asked_at < self._ask_pause:
            return
        sizes = {number: len(out.chunk) for number, out in self.out.items()
                 if splittable(out.chunk)}
        self._asking = True
        self._asked_at = time.monotonic()
        threading.Thread(target=self._ask, args=(sizes,), daemon=True,
                         name=f"explorer-ask-{self.token}").start()

    def _ask(self, sizes: dict[int, int]) -> None:
        asked: list[int] = list(sizes)
        cuts: dict[int, int] = {}
        try:
            held: dict[str, list[int]] = {}
            for address, keys in self.client.processing().items():
                numbers = [number for number in map(self._number, keys) if number in sizes]
                if numbers:
                    held[address] = numbers
            if held:
                victim = max(held, key=lambda address: sum(sizes[n] for n in held[address]))
                asked = held[victim]
                answers = self.client.run(give_up_runs, self.token, asked,
                                          SPLIT_LEAST_SECONDS, workers=[victim])
                cuts = answers.get(victim, {})
        except Exception:  # the worker left meanwhile, or the client is closing
            pass
        self.events.put(Answered(asked, cuts))

    def _number(self, key: Any) -> int | None:
        """The chunk number of one of this map's task keys, else ``None``."""
        if isinstance(key, str) and key.startswith(self.prefix):
            return int(key[len(self.prefix):])
        return None

    def _take_answer(self, answer: Answered) -> None:
        """Cut the chunks short as their worker did; the runs split off go out next."""
        self._asking = False
        tails: list[Divisible] = []
        for number, keep in answer.cuts.items():
            out = self.out.get(number)
            if out is None or not isinstance(out.chunk, Divisible):
                continue  # back already, and the runs it did not do handed back with it
            out.chunk, tail = out.chunk.split_at(keep)
            if len(tail):
                tails.append(tail)
        if tails:
            self.spare.append(tails[0] if len(tails) == 1 else type(tails[0]).joined(tails))
            self._ask_pause = ASK_AGAIN_SECONDS
        else:  # nothing worth giving up, or not started yet: ask later
            self._ask_pause = min(2 * self._ask_pause, POLL_SECONDS)

    # ---------------------------------------------------------------- receiving
    def results(self, stop: Callable[[], bool],
                meanwhile: Callable[[], None] | None) -> Iterator[tuple[Any, Any]]:
        """Yield ``(chunk, result or exception)`` as the chunks' tasks end."""
        if not stop():
            self.top_up()
        if meanwhile is not None:
            meanwhile()
        while self.out or self.spare or self.suspects or not self.dry:
            if stop():
                return
            try:
                event = self.events.get(timeout=self._wait())
            except queue.Empty:
                self.top_up()
                continue
            if isinstance(event, Answered):
                self._take_answer(event)
                self.top_up()
                continue
            out = self.out.pop(event.number)
            if event.number == self.suspect_out:
                self.suspect_out = None
            self._ask_pause = ASK_AGAIN_SECONDS
            value = self._result(out)
            if isinstance(value, KilledWorker) and len(out.chunk) > 1 and \
                    isinstance(out.chunk, Divisible):
                self.suspects.extend(out.chunk.one_by_one())  # which run killed its workers?
                self.top_up()
                continue
            if not stop():
                self.top_up()  # the next chunks go out before this one is stored
            yield out.chunk, value
            if not stop():
                self.top_up()  # runs handed back meanwhile (a chunk's budget ran out)

    def _result(self, out: Out) -> Any:
        """A chunk task's result, or the exception that failed it as a whole (its
        workers died...); the task is released."""
        try:
            value = out.future.result()
        except Exception as error:
            value = error
        out.future.release()
        seconds = getattr(value, "seconds", None)
        if seconds:
            self._seconds.append(seconds)
        return value

    def close(self) -> None:
        """Cancel the chunks still out and release the job: nothing stays on the workers."""
        futures = [out.future for out in self.out.values()]
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
        threading.Thread(target=self._forget, daemon=True,
                         name=f"explorer-forget-{self.token}").start()

    def _forget(self) -> None:
        """Drop the map's job on the workers (not waited for: a worker busy in a run
        that holds the interpreter lock answers only after it)."""
        try:
            self.client.run(forget_job, self.token, on_error="ignore")
        except Exception:  # the cluster is closing
            pass
