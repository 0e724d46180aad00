"""Chunk sizes: enough work per chunk that handing it out costs little.

Each chunk handed to a worker costs processor time in this process and the
worker's, more as a dask task than as a call to the worker's chunk runner (see
:mod:`.dask`). The planner measures what a run costs (running and encoding it)
and sizes chunks to about ``target_seconds`` of work, smaller near the end to
keep workers busy, but not below a quarter of that.

Before anything is measured, chunks are either small (a 16th of the runs per
worker, at most 256), or, when the runs are *time-boxed*, large: each of the
first chunks, two per worker, carries a ``4 * slots``-th of the runs and a time
budget; the worker stops after the run that spends it, and the runs it did not
reach come back through :meth:`ChunkPlanner.give_back`. A short exploration is
then done in a few chunks. The first chunks carry half the runs, not all: the
measured chunks of the other half balance a worker that runs slow, and an
optimizer's generation is not cut by the budgets into leftovers that go out
again. What these choices cost and save is measured by ``bench_scaling.py``
and ``bench_fit.py`` (see ``benchmarks/README.md``).

Chunks of runs that are taken one at a time are *splittable*: on a cluster, a
worker left idle at the end of a map takes over half the runs another has not
started (:meth:`Points.give_up`, asked for by :mod:`.dask`), so the last
chunks end close together whatever their size.
"""
from __future__ import annotations

import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["ChunkPlanner", "Points"]


class Points:
    """The runs of a chunk: their indices and explored values, column by column.

    It iterates as ``(run index, {parameter: value})`` pairs, which are only
    built where the chunk runs: handing a chunk out costs the planner a few
    list operations, and pickling it a few flat lists, however many
    parameters the runs have.

    A *splittable* chunk can be cut short while it runs (:meth:`give_up`,
    from another thread of the worker), so that a worker left without work at
    the end of a map takes over runs that another has not started yet.

    Parameters
    ----------
    indices : list of int
        The runs.
    columns : dict
        Explored parameter name -> one value per run.
    budget : float, optional
        Seconds of work after which the worker stops (after the run that
        spends them), leaving the runs it did not reach; ``None``: run all.
    splittable : bool
        Whether the chunk may be split while it runs: only where the runs are
        taken one at a time and whoever receives the chunk's report stores
        the runs the report covers and no others.
    """

    __slots__ = ("indices", "columns", "budget", "splittable", "_limit", "_started", "_since",
                 "_lock")

    def __init__(self, indices: list[int], columns: dict[str, list[Any]],
                 budget: float | None = None, splittable: bool = False):
        self.indices = indices
        self.columns = columns
        self.budget = budget
        self.splittable = splittable
        self._progress()

    def _progress(self) -> None:
        self._limit = len(self.indices)  # runs it will take at most
        self._started = 0                # runs taken so far
        self._since: float | None = None  # when the first was taken
        self._lock = threading.Lock()

    def __getstate__(self) -> tuple[Any, ...]:
        return self.indices, self.columns, self.budget, self.splittable

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.indices, self.columns, self.budget, self.splittable = state
        self._progress()

    @classmethod
    def select(cls, indices: Sequence[int], ranges: dict[str, Sequence[Any]],
               budget: float | None = None, splittable: bool = False) -> Points:
        """The points ``indices`` of full exploration ``ranges``."""
        indices = list(indices)
        if not indices:
            return cls([], {name: [] for name in ranges}, budget, splittable)
        pick = operator.itemgetter(*indices)
        single = len(indices) == 1
        return cls(indices, {name: [pick(values)] if single else list(pick(values))
                             for name, values in ranges.items()}, budget, splittable)

    @classmethod
    def joined(cls, parts: Sequence[Points]) -> Points:
        """One chunk of the runs of ``parts``, in order (without a time budget)."""
        names = list(parts[0].columns) if parts else []
        return cls([idx for part in parts for idx in part.indices],
                   {name: [value for part in parts for value in part.columns[name]]
                    for name in names},
                   None, all(part.splittable for part in parts))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        names = list(self.columns)
        for position, (idx, *values) in enumerate(zip(self.indices, *self.columns.values())):
            with self._lock:
                if position >= self._limit:  # split off meanwhile
                    return
                self._started = position + 1
                if self._since is None:
                    self._since = time.perf_counter()
            yield idx, dict(zip(names, values))

    def column(self, name: str) -> list[Any]:
        """Every run's value of parameter ``name`` (all the runs are then taken)."""
        with self._lock:
            self._started = self._limit
        return self.columns[name]

    def left(self) -> int:
        """Runs neither taken yet nor given up."""
        with self._lock:
            return self._limit - self._started

    def taken(self) -> int:
        """Runs taken so far (done, or under way)."""
        with self._lock:
            return self._started

    def pace(self) -> float | None:
        """Seconds a run takes, judging by those taken so far; ``None`` before the
        second run is taken (the first may have only just begun).

        The time since the first run was taken, shared among the runs before
        the last one taken: no less than their own time, as the last one has
        begun too.
        """
        with self._lock:
            if self._since is None or self._started < 2:
                return None
            return (time.perf_counter() - self._since) / (self._started - 1)

    def give_up(self, most: int) -> tuple[int, int] | None:
        """Stop before the last ``most`` runs not taken yet (fewer, if fewer are left).

        Called while the chunk runs, or waits to run, from another thread.
        Returns ``(kept, given)``: the chunk now ends after its first ``kept``
        runs, and the ``given`` runs after those are for someone else (see
        :meth:`split_at`); ``None`` if nothing was given up, or the chunk is
        not splittable.
        """
        if not self.splittable or most < 1:
            return None
        with self._lock:
            given = min(most, self._limit - self._started)
            if given < 1:
                return None
            self._limit -= given
            return self._limit, given

    def one_by_one(self) -> list[Points]:
        """Each run, as a chunk of its own."""
        return [Points([idx], {name: [values[position]] for name, values in self.columns.items()},
                       self.budget, self.splittable)
                for position, idx in enumerate(self.indices)]

    def split_at(self, keep: int) -> tuple[Points, Points]:
        """The first ``keep`` runs and the others, as two chunks of their own."""
        def part(window: slice) -> Points:
            return Points(self.indices[window],
                          {name: values[window] for name, values in self.columns.items()},
                          self.budget, self.splittable)

        return part(slice(None, keep)), part(slice(keep, None))


def _as_list(runs: list[int], budget: float | None) -> list[int]:
    return runs


class ChunkPlanner:
    """Hands out runs in chunks sized from the measured cost per run.

    It is an iterator that may run dry and fill again: runs that a time-boxed
    chunk left undone are handed back with :meth:`give_back` and go out again
    before the runs not handed out yet.

    Parameters
    ----------
    indices : sequence of int
        The runs to hand out, in order.
    build : callable
        ``build(runs, budget)`` turns the run indices of a chunk and its time
        budget (``None``: none) into what the chunk carries; called only when
        the chunk is handed out. Default: the list of runs.
    slots : int
        Workers that take chunks at once.
    fixed : int, optional
        A fixed chunk size (no adaptation, no time budget).
    target_seconds : float
        Work per chunk to aim for.
    first : int, optional
        Size of the first chunks, before anything is measured (default: a
        16th of the runs per slot, between 16 and 256).
    time_boxed : bool
        Whether whoever runs a chunk honours its budget. Then, until a cost is
        measured, each chunk takes a ``4 * slots``-th of all the runs, with
        ``budget_seconds`` as its budget (unless that share is no larger than
        ``first``): the first chunks, two a slot, carry half the runs, and the
        other half goes out in measured chunks that balance the workers.
    budget_seconds : float
        The time budget of those first chunks. Longer than ``target_seconds``,
        so that a short exploration is not cut into leftovers that go out
        again (runs handed back at the end leave a worker idle).
    """

    def __init__(self, indices: Sequence[int],
                 build: Callable[[list[int], float | None], Any] = _as_list,
                 slots: int = 1, fixed: int | None = None, target_seconds: float = 0.3,
                 first: int | None = None, time_boxed: bool = False,
                 budget_seconds: float = 1.0):
        self._indices = indices
        self._build = build
        self._next = 0
        self._returned: deque[list[int]] = deque()
        self._returned_runs = 0
        self.slots = max(1, slots)
        self.fixed = fixed
        self.target_seconds = target_seconds
        self.time_boxed = time_boxed
        self.budget_seconds = budget_seconds
        # big enough that a chunk's fixed costs don't swamp the first estimate,
        # small enough that the first answer comes back soon
        self._first = first or max(16, min(256, len(indices) // (16 * self.slots)))
        self._per_run: float | None = None

    def observe(self, runs: int, seconds: float) -> None:
        """Record that a chunk of ``runs`` runs took ``seconds`` of work.

        The cheapest chunk per run seen so far gives the estimate: a chunk's
        fixed costs (and one-off costs such as loading compiled code) only ever
        make a run look dearer.
        """
        if runs:
            per_run = max(seconds / runs, 1e-7)
            self._per_run = per_run if self._per_run is None else min(self._per_run, per_run)

    def give_back(self, runs: Sequence[int]) -> None:
        """Hand out ``runs`` again: a time-boxed chunk stopped before them."""
        if len(runs):
            self._returned.append(list(runs))
            self._returned_runs += len(runs)

    @property
    def remaining(self) -> int:
        """Runs not handed out yet (or handed back)."""
        return len(self._indices) - self._next + self._returned_runs

    def plan(self) -> tuple[int, float | None]:
        """The size of the next chunk and its time budget (``None``: run it all)."""
        if self.fixed is not None:
            return self.fixed, None
        balance = max(1, -(-self.remaining // (2 * self.slots)))
        if self._per_run is None:
            share = -(-len(self._indices) // (4 * self.slots))
            if self.time_boxed and share > self._first:
                return min(share, self.remaining), self.budget_seconds
            return min(self._first, balance), None
        wanted = max(int(self.target_seconds / self._per_run), 1)
        # near the end, smaller chunks balance the workers (an optimizer waits
        # for the last run of each generation), but not below a quarter of the
        # target: every task costs the workers and the driver a few ms
        return max(1, min(wanted, max(balance, wanted // 4), 100_000)), None

    def __iter__(self) -> ChunkPlanner:
        return self

    def __next__(self) -> Any:
        """The next chunk; ``StopIteration`` while there is none (more may come back)."""
        if not self.remaining:
            raise StopIteration
        size, budget = self.plan()
        runs: list[int] = []
        while self._returned and len(runs) < size:
            returned = self._returned.popleft()
            take = size - len(runs)
            runs += returned[:take]
            if len(returned) > take:
                self._returned.appendleft(returned[take:])
        self._returned_runs -= len(runs)
        if len(runs) < size:
            fresh = self._indices[self._next:self._next + size - len(runs)]
            self._next += len(fresh)
            runs += fresh
        return self._build(runs, budget)
