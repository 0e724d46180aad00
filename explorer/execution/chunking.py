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
    first : int, optional
        Size of the first chunks, before anything is measured (default: a
        64th of the points per slot, between 4 and 256).
    """

    def __init__(self, points: Sequence[Any], slots: int = 1, fixed: int | None = None,
                 target_seconds: float = 0.05, first: int | None = None):
        self._points = points
        self._next = 0
        self.slots = max(1, slots)
        self.fixed = fixed
        self.target_seconds = target_seconds
        # big enough that a chunk's fixed costs don't swamp the first estimate,
        # small enough that the first answer comes back soon
        self._first = first or max(4, min(256, len(points) // (64 * self.slots)))
        self._largest = (0, 0.0)

    def observe(self, runs: int, seconds: float) -> None:
        """Record that a chunk of ``runs`` runs took ``seconds`` of work.

        The largest chunk seen gives the estimate: fixed costs per chunk weigh
        least there.
        """
        if runs >= self._largest[0]:
            self._largest = (runs, seconds)

    @property
    def remaining(self) -> int:
        """Points not handed out yet."""
        return len(self._points) - self._next

    def size(self) -> int:
        """The size of the next chunk."""
        if self.fixed is not None:
            return self.fixed
        balance = max(1, -(-self.remaining // (4 * self.slots)))
        runs, seconds = self._largest
        if not runs:
            return max(1, min(self._first, balance))
        per_run = max(seconds / runs, 1e-7)
        wanted = max(int(self.target_seconds / per_run), 1)
        return max(1, min(wanted, balance, 100_000))

    def __iter__(self) -> Iterator[Sequence[Any]]:
        while self._next < len(self._points):
            size = self.size()
            chunk = self._points[self._next:self._next + size]
            self._next += len(chunk)
            yield chunk
