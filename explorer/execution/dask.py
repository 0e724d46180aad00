"""Runs on dask.distributed: a local cluster by default, or any cluster given.

The only module of explorer that imports ``distributed`` (with :mod:`.tasks`),
and only when a dask back end is asked for.

On explorer's own cluster (``workers=N``) chunks of runs go to a *chunk
runner* on each worker, a dask actor, called from this process without the
scheduler, which can also split a chunk a worker has not finished for an
idle one: the fastest path (see ``benchmarks/bench_scaling.py``). On a user's
cluster each chunk is a plain dask task (:mod:`.tasks`), so that the cluster
may grow, shrink and retire workers, and the runs show on the dashboard;
runners are released at close there if asked for.
"""
from __future__ import annotations

import collections
import ipaddress
import itertools
import logging
import os
import pickle
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .base import ChunkT, Executor
from .chunking import Points
from .mainguard import unguarded_scripts_reported
from .tasks import TaskMap

__all__ = ["DaskExecutor"]

log = logging.getLogger("explorer")

#: How long to wait for a chunk before looking again (also how fast a stop is seen).
POLL_SECONDS = 1.0

#: How often, at most, the workers are counted again while chunks run.
RECOUNT_SECONDS = 2.0

#: How long, at most, the first chunks' calls are waited for before going on.
SENT_SECONDS = 0.02

#: A worker gives up none of its runs when they would take less than this.
SPLIT_LEAST_SECONDS = 0.02

#: How long a worker asked to give up runs waits for chunks still on their way.
ARRIVAL_SECONDS = 0.5

#: How many ended chunks of a map a worker remembers, to tell them from chunks on
#: their way when asked to give up runs.
ENDED_KEPT = 256


def cluster_config() -> dict[str, Any]:
    """dask settings for a local cluster explorer starts (its scheduler and workers).

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
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.nanny.pre-spawn-environ": environ,
            "distributed.worker.profile.enabled": False,
            "distributed.admin.tick.interval": "200ms",
            "distributed.admin.system-monitor.interval": "1s",
            "distributed.worker.memory.monitor-interval": "200ms"}


_DASK_TRIM_DEFAULT = "65536"


class _Opaque:
    """A value travelling as one pickled blob, unpickled only where it is used.

    dask would otherwise pickle the thousands of small values of a chunk one by
    one, and unpickle them again on the way.
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


class _ChunkRunner:
    """Runs chunks on the worker it lives on: a dask actor, one per worker.

    A map's job (the function and the value its chunks share) comes with the
    first chunk the driver sends to this worker; chunks that arrive before it
    wait for it. Chunks run on the worker's own threads, as its tasks do.
    Runs not started yet can be given up to another worker (:meth:`split`).
    """

    def __init__(self) -> None:
        import asyncio

        self._jobs: dict[str, Any] = {}
        self._arrived: collections.defaultdict[str, asyncio.Event] = \
            collections.defaultdict(asyncio.Event)
        self._forgotten: collections.deque[str] = collections.deque(maxlen=64)
        self._chunks: dict[str, dict[int, Any]] = {}  # token -> number -> chunk not ended
        # the chunks of each map that ended lately (only those the driver may still
        # think are here matter: a few a thread; a long map's would fill memory)
        self._ended: collections.defaultdict[str, collections.deque[int]] = \
            collections.defaultdict(lambda: collections.deque(maxlen=ENDED_KEPT))

    async def run(self, token: str, job: _Opaque | None, chunk: _Opaque,
                  number: int) -> tuple[bool, Any]:
        """``(True, func(shared, chunk))`` or ``(False, the exception)``, for chunk
        ``number`` of map ``token``.

        An exception raised to the caller therefore means that the call failed,
        not the chunk: the worker was lost.
        """
        import asyncio
        import contextvars

        from distributed import get_worker

        held = self._chunks.setdefault(token, {})
        try:
            if token in self._forgotten:  # a call that arrived after its map ended
                return True, None
            held[number] = points = chunk.value
            if job is not None:
                try:
                    self._jobs[token] = job.value
                except Exception as error:  # then every chunk of the map fails with it
                    self._jobs[token] = error
                self._arrived[token].set()
            else:
                await self._arrived[token].wait()
                if token in self._forgotten:
                    return True, None
            context = contextvars.copy_context()  # get_worker() keeps working in the thread
            return True, await asyncio.get_running_loop().run_in_executor(
                get_worker().executors["default"], context.run, self._run, token, points)
        except Exception as error:
            return False, error
        finally:
            held.pop(number, None)
            if not held and self._chunks.get(token) is held:
                del self._chunks[token]
            if token not in self._forgotten:
                self._ended[token].append(number)

    def _run(self, token: str, chunk: Any) -> Any:
        """In one of the worker's threads: the chunk, unless its map was called off."""
        job = self._jobs.get(token)
        if job is None:
            return None
        if isinstance(job, Exception):
            raise job
        func, shared = job
        return func(shared, chunk)

    async def split(self, token: str, least_seconds: float,
                    numbers: Sequence[int] = ()) -> dict[int, int]:
        """Give up half the runs of map ``token`` this worker has not started (the
        larger half while one of them runs here), the last ones first: ``{chunk
        number: runs it keeps}`` for each chunk cut short.

        ``numbers`` are the chunks the driver sent here: their calls may not have
        arrived yet, and are waited for (up to :data:`ARRIVAL_SECONDS`). Nothing
        is given up when the runs left would take less than ``least_seconds`` at
        the pace of those done (splitting costs a few ms). A coroutine, so that
        it runs in the worker's event loop, at once: as a plain method it would
        run in a thread of its own, which waits for the interpreter lock while a
        chunk runs.
        """
        import asyncio

        waited = time.monotonic()
        while time.monotonic() - waited < ARRIVAL_SECONDS and not all(
                number in self._chunks.get(token, ()) or number in self._ended.get(token, ())
                for number in numbers):
            await asyncio.sleep(0.001)
        chunks = [(number, chunk) for number, chunk in self._chunks.get(token, {}).items()
                  if getattr(chunk, "splittable", False)]
        left = sum(chunk.left() for _, chunk in chunks)
        pace = next((p for p in (chunk.pace() for _, chunk in chunks) if p is not None), None)
        # with a run under way here, the asker gets the larger half of those left
        give = (left + 1) // 2 if any(chunk.taken() for _, chunk in chunks) else left // 2
        if give < 1 or (pace is not None and left * pace < least_seconds):
            return {}
        cuts = {}
        for number, chunk in reversed(chunks):
            if give < 1:
                break
            cut = chunk.give_up(give)
            if cut is not None:
                cuts[number], given = cut
                give -= given
        return cuts

    def forget(self, token: str) -> None:
        """Drop map ``token``'s job: its chunks that have not started will not run."""
        self._forgotten.append(token)
        self._jobs.pop(token, None)
        self._ended.pop(token, None)
        arrived = self._arrived.pop(token, None)
        if arrived is not None:
            arrived.set()  # chunks waiting for the job find none, and end


class _Runners:
    """The chunk runners on one client's workers, kept as long as the client.

    A runner is made once per worker, so that a new ``Environment`` on the same
    cluster does not wait for them; the workers are counted again at most every
    :data:`RECOUNT_SECONDS`, and new ones get a runner.
    """

    def __init__(self, client: Any):
        self.client = client
        self.actors: dict[str, tuple[Any, Any, int]] = {}  # address -> (future, actor, threads)
        self._making: dict[str, tuple[Any, int]] = {}  # address -> (future, threads)
        self._counted = -float("inf")

    @classmethod
    def of(cls, client: Any) -> _Runners:
        """The runners of ``client``'s cluster."""
        runners = _RUNNERS.get(client)
        if runners is None:
            runners = _RUNNERS[client] = cls(client)
        return runners

    def current(self) -> dict[str, tuple[Any, Any, int]]:
        """``address -> (future, actor, threads)``: the runners ready.

        Counting the workers, it waits up to :data:`POLL_SECONDS` for the runners it
        starts (a runner starts as a task: a worker busy with other tasks may take
        longer, and its runner is then taken in when ready).
        """
        from distributed import wait

        started = []
        if time.monotonic() - self._counted >= RECOUNT_SECONDS:
            threads = self.client.nthreads()
            for address in [known for known in self.actors if known not in threads]:
                self.lost(address)
            for address in [known for known in self._making if known not in threads]:
                del self._making[address]
            for address in threads:
                if address not in self.actors and address not in self._making:
                    future = self.client.submit(
                        _ChunkRunner, actor=True, workers=[address], allow_other_workers=True,
                        pure=False, key=f"explorer-chunk-runner-{uuid.uuid4().hex[:12]}")
                    self._making[address] = (future, threads[address])
                    started.append(future)
            self._counted = time.monotonic()
        with self.client.as_current():  # the actors call through this client, default or not
            if started:
                try:
                    wait(started, timeout=POLL_SECONDS)
                except TimeoutError:
                    pass
            for address, (future, threads) in list(self._making.items()):
                if future.done():
                    del self._making[address]
                    try:
                        self.actors[address] = (future, future.result(), threads)
                    except Exception:  # its worker went away: at the next count
                        pass
        return self.actors

    def lost(self, address: str) -> None:
        """Forget (and release) the runner of a worker that is gone."""
        self.actors.pop(address, None)

    def release(self) -> None:
        """Release every runner, so that no actor keeps a worker from being retired."""
        futures = [future for future, _, _ in self.actors.values()]
        futures += [future for future, _ in self._making.values()]
        self.actors.clear()
        self._making.clear()
        if futures:
            self.client.cancel(futures)


_RUNNERS: weakref.WeakKeyDictionary[Any, _Runners] = weakref.WeakKeyDictionary()


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


class _Placement:
    """Which chunk is on which worker, during one map; chunks lost with a worker.

    The chunks a worker held when it was lost go out again, each *alone* on a
    worker (nothing else is sent there while it runs): a worker runs its
    chunks one after the other, but which of them killed it, or was running
    when it died, cannot be told from here; alone, a chunk that is lost again
    is lost by its own doing, or its worker's. A chunk lost more than
    ``retries`` times is given up.

    When the source has run dry, runs that a worker gave up (split off the
    chunks it holds) go out as *spare* chunks, before anything else.
    """

    def __init__(self, source: Iterator[Points], retries: int):
        self.source = source
        self.retries = retries
        self.dry = False  # the source had nothing when last asked
        self.suspects: collections.deque[tuple[Points, int]] = collections.deque()
        self.held: dict[int, tuple[str, Points, int]] = {}  # address, chunk, losses
        self.busy: collections.Counter[str] = collections.Counter()
        self.alone: dict[str, int] = {}  # address -> the suspect it runs
        self.spare: collections.deque[Points] = collections.deque()
        self.refused: set[str] = set()  # workers that had nothing worth giving up
        self._numbers = itertools.count()

    @property
    def pending(self) -> bool:
        """Whether chunks are out, to go out again, or may still come from the source."""
        return bool(self.held or self.suspects or self.spare or not self.dry)

    @property
    def exhausted(self) -> bool:
        """Whether nothing is left to hand out: the source is dry, no chunk waits."""
        return self.dry and not self.suspects and not self.spare

    def victim(self, asking: str, skip: set[str]) -> str | None:
        """The worker, other than ``asking`` and those in ``skip``, holding the most
        runs of splittable chunks, if any (none that runs a lost chunk alone)."""
        runs: collections.Counter[str] = collections.Counter()
        for address, chunk, losses in self.held.values():
            if getattr(chunk, "splittable", False) and not losses:
                runs[address] += len(chunk)
        for address in (asking, *skip, *self.refused, *self.alone):
            runs.pop(address, None)
        return max(runs, key=runs.__getitem__) if runs else None

    def numbers(self, address: str) -> list[int]:
        """The chunks worker ``address`` holds."""
        return [number for number, held in self.held.items() if held[0] == address]

    def cut(self, number: int, keep: int) -> Points | None:
        """Chunk ``number`` now ends after its first ``keep`` runs: the others, as a
        chunk, or ``None`` if it is no longer held (it came back meanwhile, and the
        runs it did not do were handed back with it)."""
        if number not in self.held:
            return None
        address, chunk, losses = self.held[number]
        head, tail = chunk.split_at(keep)
        self.held[number] = (address, head, losses)
        return tail

    def take(self, address: str, most: int) -> tuple[int, Points] | None:
        """The next chunk for worker ``address`` and its number, if the worker holds
        fewer than ``most`` chunks and runs no lost chunk. While lost chunks wait, a
        worker gets one only once it holds none, and nothing else meanwhile."""
        if address in self.alone or self.busy[address] >= most:
            return None
        if self.suspects:
            if self.busy[address]:
                return None
            chunk, losses = self.suspects.popleft()
            number = self._hold(address, chunk, losses)
            self.alone[address] = number
            return number, chunk
        if self.spare:
            chunk = self.spare.popleft()
            return self._hold(address, chunk, 0), chunk
        try:
            chunk = next(self.source)
        except StopIteration:
            self.dry = True
            return None
        self.dry = False
        return self._hold(address, chunk, 0), chunk

    def _hold(self, address: str, chunk: Points, losses: int) -> int:
        self.refused.discard(address)
        number = next(self._numbers)
        self.held[number] = (address, chunk, losses)
        self.busy[address] += 1
        return number

    def where(self, number: int) -> tuple[str, Points] | None:
        """The worker holding chunk ``number``, and the chunk; ``None`` if it is no
        longer held (it went out again when its worker was lost)."""
        if number not in self.held:
            return None
        address, chunk, _ = self.held[number]
        return address, chunk

    def _release(self, number: int) -> tuple[str, Points, int]:
        address, chunk, losses = self.held.pop(number)
        self.busy[address] -= 1
        if self.alone.get(address) == number:
            del self.alone[address]
        return address, chunk, losses

    def finished(self, number: int) -> None:
        """Chunk ``number`` came back."""
        self._release(number)

    def lost(self, address: str, error: BaseException) -> list[tuple[Points, Exception]]:
        """Worker ``address`` is gone: its chunks go out again, alone, but those lost
        too often, which are returned with the error to report for them."""
        failed: list[tuple[Points, Exception]] = []
        for number in sorted(number for number, held in self.held.items()
                             if held[0] == address):
            _, chunk, losses = self._release(number)
            losses += 1
            if losses <= self.retries:
                self.suspects.append((chunk, losses))
            else:
                failed.append((chunk, RuntimeError(
                    f"the worker running this chunk was lost {losses} times, last "
                    f"{address}: {error!r}")))
        return failed


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
        An existing client; left open. Chunks reach the workers straight from
        this process if the client was made with ``direct_to_workers=True``,
        otherwise through the scheduler.
    retries_after_worker_death : int
        With chunk runners: how often a chunk whose worker died is run again
        (alone on a worker, so that an innocent chunk is not blamed) before its
        runs are recorded failed. Plain tasks follow the cluster's
        ``distributed.scheduler.allowed-failures`` (3 by default).
    actors : bool, optional
        Send chunks through a chunk runner (a dask actor) on each worker: the
        fastest path (see ``bench_scaling.py`` in ``benchmarks/README.md``),
        for a cluster whose workers stay, as explorer's own does; the runners
        pin the workers while the environment is open and the runs do not show
        in the dashboard's task stream.
        Otherwise each chunk is a plain task (:mod:`.tasks`): workers may join,
        be retired or scaled down. Default: runners on explorer's own cluster
        (``workers=N``), tasks on a user's (``scheduler=``, ``client=``).
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 client: Any = None, retries_after_worker_death: int = 1,
                 actors: bool | None = None):
        import dask
        import distributed

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
            with dask.config.set(cluster_config()), unguarded_scripts_reported():
                self._cluster = distributed.LocalCluster(
                    n_workers=workers or 1, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = distributed.Client(self._cluster, direct_to_workers=True)
        link = getattr(self.client, "dashboard_link", None)
        if link:
            log.info("dask dashboard: %s", link)
        self.slots = max(1, sum(self.client.nthreads().values()))
        self.retries = retries_after_worker_death
        self.actors = self._cluster is not None if actors is None else bool(actors)

    @property
    def dashboard_link(self) -> str | None:
        """The address of the cluster's dask dashboard, if it has one."""
        return getattr(self.client, "dashboard_link", None) or None

    def map_chunks(self, func: Callable[[Any, ChunkT], Any], shared: Any,
                   chunks: Iterator[ChunkT],
                   stop: Callable[[], bool] = lambda: False,
                   meanwhile: Callable[[], None] | None = None,
                   ) -> Iterator[tuple[ChunkT, Any]]:
        if not self.actors:
            tasks = TaskMap(self.client, func, shared, chunks, _Opaque)
            try:
                yield from tasks.results(stop, meanwhile)
            finally:
                tasks.close()
            return
        yield from self._map_on_runners(func, shared, chunks, stop, meanwhile)

    def _map_on_runners(self, func: Callable[[Any, Any], Any], shared: Any,
                        chunks: Iterator[Any], stop: Callable[[], bool],
                        meanwhile: Callable[[], None] | None,
                        ) -> Iterator[tuple[Any, Any]]:
        """``map_chunks`` through a chunk runner on each worker (``actors=True``)."""
        runners = _Runners.of(self.client)
        actors = runners.current()
        token = uuid.uuid4().hex[:12]
        job = _Opaque((func, shared))
        placed = _Placement(iter(chunks), self.retries)
        has_job: set[str] = set()  # keys of the runners sent the job (a worker's may be new)
        asking: dict[str, str] = {}  # idle worker -> the worker asked to give up runs
        # ("ran", number, ok, value), ok None when the call failed (the worker was
        # lost), or ("split", asking worker, asked worker, {number: runs kept})
        finished: queue.Queue[tuple[Any, ...]] = queue.Queue()

        async def deliver(number: int, call: Any) -> None:
            try:
                ok, value = await call
            except BaseException as error:  # also when the client's loop shuts down
                finished.put(("ran", number, None, error))
                if not isinstance(error, Exception):
                    raise
            else:
                finished.put(("ran", number, ok, value))

        async def deliver_split(idle: str, asked: str, call: Any) -> None:
            try:
                cuts = await call
            except Exception:  # the asked worker is gone: its chunks tell
                cuts = {}
            finished.put(("split", idle, asked, cuts))

        def top_up(only: str | None = None) -> None:
            """Send chunks until each worker has two a thread (it finds its next chunk
            waiting), round by round; with ``only``, to that worker alone. When
            nothing is left to hand out, idle workers ask for runs (:func:`split`)."""
            for depth in (1, 2):
                for address, (future, actor, threads) in list(actors.items()):
                    while only is None or address == only:
                        taken = placed.take(address, depth * threads)
                        if taken is None:
                            break
                        number, chunk = taken
                        try:
                            call = actor.run(token, None if future.key in has_job else job,
                                             _Opaque(chunk), number)
                        except Exception as error:  # dask knows the worker is gone
                            finished.put(("ran", number, None, error))
                            break
                        has_job.add(future.key)
                        self.client.loop.add_callback(deliver, number, call)
            split()

        def split() -> None:
            """When nothing is left to hand out, ask for each idle worker that another
            give up half the runs it has not started (see :meth:`_ChunkRunner.split`)."""
            if not placed.exhausted:
                return
            for address, (_, _, threads) in list(actors.items()):
                if placed.busy[address] >= threads or address in asking:
                    continue
                asked = placed.victim(address, set(asking.values()))
                if asked is None or asked not in actors:
                    return
                try:
                    call = actors[asked][1].split(token, SPLIT_LEAST_SECONDS,
                                                  placed.numbers(asked))
                except Exception:  # dask knows the worker is gone
                    continue
                asking[address] = asked
                self.client.loop.add_callback(deliver_split, address, asked, call)

        def sent() -> None:
            """Wait (a few ms at most) until the client's event loop has sent the calls
            handed to it. Otherwise it sends them only as this thread lets go of the
            GIL while running ``meanwhile``, and the second worker's first chunk
            starts later."""
            done = threading.Event()

            async def mark() -> None:  # runs after the sends' first steps, in order
                done.set()

            self.client.loop.add_callback(mark)
            done.wait(timeout=SENT_SECONDS)

        try:
            top_up()
            if meanwhile is not None:
                sent()
                meanwhile()
            while placed.pending:
                try:
                    event = finished.get(timeout=POLL_SECONDS)
                except queue.Empty:  # no worker, or long chunks
                    if stop():
                        return
                    actors = runners.current()
                    top_up()
                    continue
                if event[0] == "split":
                    _, idle, asked, cuts = event
                    del asking[idle]
                    tails = [tail for tail in (placed.cut(number, keep)
                                               for number, keep in cuts.items())
                             if tail is not None and len(tail)]
                    if tails:
                        placed.spare.append(tails[0] if len(tails) == 1 else
                                            Points.joined(tails))
                    elif not cuts:
                        placed.refused.add(asked)
                    if not stop():
                        top_up()
                    continue
                _, number, ok, value = event
                held = placed.where(number)
                if held is None:  # lost with its worker, and dealt with then
                    continue
                address, chunk = held
                if ok is None:  # its chunks go out again; its replacement, when counted
                    runners.lost(address)
                    failed = placed.lost(address, value)
                    if not stop():
                        top_up()
                    for chunk, error in failed:
                        yield chunk, error
                        if stop():
                            return
                    continue
                placed.finished(number)
                if not stop():
                    top_up(address)  # its next chunk, before this one is stored
                yield chunk, value
                if stop():
                    return
                actors = runners.current()
                top_up()  # runs handed back meanwhile, or a source that ran dry and filled
        finally:
            for future, actor, _ in list(actors.values()):
                if future.key in has_job:
                    try:
                        actor.forget(token)  # not waited for
                    except Exception:  # the worker is gone: nothing to forget
                        pass

    def close(self) -> None:
        runners = _RUNNERS.pop(self.client, None)
        if runners is not None and not self._owns_client:  # nothing stays on a user's workers
            runners.release()
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
