"""Chunk sizes: enough work per task that the task's own cost stays small.

One dask task costs about 2 ms of the worker's time and 3 ms of the client's
here; 10,000 trivial tasks took 20-24 s, the same points in 8 chunks 0.3 s. The
planner starts with modest chunks, measures what a run costs (running and
encoding it), and then sizes chunks to about ``target_seconds`` of work (0.3 s:
a hundred times a task's cost), smaller near the end to keep workers busy, but
not below a quarter of that. On a 10,000-run LIF grid with 2 workers (medians
of 7 interleaved tries), first chunks of a 16th of the runs per worker instead
of 4-5 chunks of 78 runs took 1.12 s down to 1.02 s, and 0.3 s chunks instead
of 0.2 s to 0.95 s (shrinking to half the target at the end: 1.01 s with 0.2 s).
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Iterator, Sequence

__all__ = ["ChunkPlanner", "Points"]


class Points:
    """The runs of a chunk: their indices and explored values, column by column.

    It iterates as ``(run index, {parameter: value})`` pairs, which are only
    built where the chunk runs: handing a chunk out costs the planner a few
    list operations, and pickling it a few flat lists, however many
    parameters the runs have.

    Parameters
    ----------
    indices : list of int
        The runs.
    columns : dict
        Explored parameter name -> one value per run.
    """

    __slots__ = ("indices", "columns")

    def __init__(self, indices: list[int], columns: dict[str, list[Any]]):
        self.indices = indices
        self.columns = columns

    @classmethod
    def select(cls, indices: Sequence[int], ranges: dict[str, Sequence[Any]]) -> "Points":
        """The points ``indices`` of full exploration ``ranges``."""
        indices = list(indices)
        if not indices:
            return cls([], {name: [] for name in ranges})
        pick = operator.itemgetter(*indices)
        single = len(indices) == 1
        return cls(indices, {name: [pick(values)] if single else list(pick(values))
                             for name, values in ranges.items()})

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        names = list(self.columns)
        for idx, *values in zip(self.indices, *self.columns.values()):
            yield idx, dict(zip(names, values))

    def column(self, name: str) -> list[Any]:
        """Every run's value of parameter ``name``."""
        return self.columns[name]


class ChunkPlanner:
    """Hands out points in chunks sized from the measured cost per run.

    Parameters
    ----------
    indices : sequence of int
        The runs to hand out, in order.
    build : callable
        Turns the run indices of a chunk into what the chunk carries (called
        only when the chunk is handed out).
    slots : int
        Workers that take chunks at once.
    fixed : int, optional
        A fixed chunk size (no adaptation).
    target_seconds : float
        Work per chunk to aim for.
    first : int, optional
        Size of the first chunks, before anything is measured (default: a
        16th of the runs per slot, between 16 and 256).
    """

    def __init__(self, indices: Sequence[int], build: Callable[[list[int]], Any] = list,
                 slots: int = 1, fixed: int | None = None, target_seconds: float = 0.3,
                 first: int | None = None):
        self._indices = indices
        self._build = build
        self._next = 0
        self.slots = max(1, slots)
        self.fixed = fixed
        self.target_seconds = target_seconds
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

    @property
    def remaining(self) -> int:
        """Runs not handed out yet."""
        return len(self._indices) - self._next

    def size(self) -> int:
        """The size of the next chunk."""
        if self.fixed is not None:
            return self.fixed
        balance = max(1, -(-self.remaining // (2 * self.slots)))
        if self._per_run is None:
            return max(1, min(self._first, balance))
        wanted = max(int(self.target_seconds / self._per_run), 1)
        # near the end, smaller chunks balance the workers (an optimizer waits
        # for the last run of each generation), but not below a quarter of the
        # target: every task costs the workers and the driver a few ms
        return max(1, min(wanted, max(balance, wanted // 4), 100_000))

    def __iter__(self) -> Iterator[Any]:
        while self._next < len(self._indices):
            size = self.size()
            chunk = self._indices[self._next:self._next + size]
            self._next += len(chunk)
            yield self._build(chunk)
