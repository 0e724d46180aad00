"""The interface every execution back end implements."""
from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

__all__ = ["Executor", "Chunk", "ChunkT", "Divisible", "splittable"]


class Chunk(Protocol):
    """What an executor hands out: a picklable batch of runs that knows its length
    (:class:`~explorer.execution.chunking.Points`, or a plain list)."""

    def __len__(self) -> int: ...


@runtime_checkable
class Divisible(Chunk, Protocol):
    """A chunk whose runs can be taken apart (:class:`~explorer.execution.chunking.Points`):
    cut short while it runs (if ``splittable``), or run again one run at a time."""

    splittable: bool

    def split_at(self, keep: int) -> tuple[Self, Self]:
        """The first ``keep`` runs and the others, as two chunks."""
        ...

    def one_by_one(self) -> list[Self]:
        """Each run, as a chunk of its own."""
        ...

    @classmethod
    def joined(cls, parts: Sequence[Self]) -> Self:
        """One chunk of the runs of ``parts``, in order."""
        ...


def splittable(chunk: Any) -> bool:
    """Whether ``chunk`` may be cut short while it runs."""
    return isinstance(chunk, Divisible) and chunk.splittable


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
