"""The interface every execution back end implements."""
from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

__all__ = ["Executor", "Chunk", "ChunkT"]


class Chunk(Protocol):
    """What an executor hands out: a picklable batch of runs that knows its length
    (:class:`~explorer.execution.chunking.Points`, or a plain list)."""

    def __len__(self) -> int: ...


#: The type of the chunks of one map: what ``func`` takes is what the map yields.
ChunkT = TypeVar("ChunkT", bound=Chunk)


class Executor(abc.ABC):
    """Maps ``func(shared, chunk)`` over chunks, yielding results as chunks finish.

    ``shared`` reaches each worker once per map; each chunk is a small picklable
    sequence.
    """

    #: How many chunks the back end can work on at once.
    slots: int = 1

    @abc.abstractmethod
    def map_chunks(self, func: Callable[[Any, ChunkT], Any], shared: Any,
                   chunks: Iterator[ChunkT],
                   stop: Callable[[], bool] = lambda: False,
                   meanwhile: Callable[[], None] | None = None,
                   ) -> Iterator[tuple[ChunkT, Any]]:
        """Yield ``(chunk, func(shared, chunk))`` in completion order.

        ``meanwhile()``, if given, is called once, when the first chunks are
        handed out and before any result is waited for: work of the caller's
        that can go on while they run (if it raises, the chunks are abandoned).
        It is called even when ``stop()`` is true from the start, and no chunk
        is handed out.

        Chunks are taken from ``chunks`` only as workers free up, so the iterator
        may adapt chunk sizes as results arrive; it may also run dry and fill
        again (runs handed back after a chunk's results were consumed), so it is
        asked again after each yielded result. A chunk whose task failed as a
        whole (not a run inside it) yields the exception instead of a result.
        Once ``stop()`` is true no further chunk is handed out and chunks still
        running are abandoned.
        """

    def close(self) -> None:
        """Release workers and connections the back end started."""
