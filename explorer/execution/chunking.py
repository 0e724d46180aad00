"""Chunk sizes: enough work per task that the task's own cost stays small.

One dask task costs about 2 ms here; 10,000 trivial tasks took 20-24 s, the
same points in 8 chunks 0.3 s. The planner starts with small chunks, measures
how long runs take, and then sizes chunks to about ``target_seconds`` of work (50 ms: 25 times a task's cost),
while keeping several chunks per worker for load balance.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

__all__ = ["ChunkPlanner"]


class ChunkPlanner:
    """Hands out points in chunks sized from the measured run time.

    Parameters
    ----------
    points : sequence
        What to hand out, in order.
    slots : int
        Workers that take chunks at once.
    fixed : int, optional
        A fixed chunk size (no adaptation).
    target_seconds : float
        Work per chunk to aim for.
    first : int
        Size of the first chunks, before anything is measured.
    """

    def __init__(self, points: Sequence[Any], slots: int = 1, fixed: int | None = None,
                 target_seconds: float = 0.05, first: int = 4):
        self._points = points
        self._next = 0
        self.slots = max(1, slots)
        self.fixed = fixed
        self.target_seconds = target_seconds
        self._first = first
        self._runs = 0
        self._seconds = 0.0

    def observe(self, runs: int, seconds: float) -> None:
        """Record that ``runs`` runs took ``seconds`` of work in total."""
        self._runs += runs
        self._seconds += seconds

    @property
    def remaining(self) -> int:
        """Points not handed out yet."""
        return len(self._points) - self._next

    def size(self) -> int:
        """The size of the next chunk."""
        if self.fixed is not None:
            return self.fixed
        balance = max(1, -(-self.remaining // (4 * self.slots)))
        if not self._runs:
            return max(1, min(self._first, balance))
        per_run = max(self._seconds / self._runs, 1e-7)
        return max(1, min(int(self.target_seconds / per_run), balance, 100_000))

    def __iter__(self) -> Iterator[Sequence[Any]]:
        while self._next < len(self._points):
            size = self.size()
            chunk = self._points[self._next:self._next + size]
            self._next += len(chunk)
            yield chunk
