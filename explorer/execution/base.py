"""The interface every execution back end implements."""
from __future__ import annotations

import abc
from typing import Any, Callable, Iterable, Iterator, Sequence

__all__ = ["Executor"]


class Executor(abc.ABC):
    """Maps ``func(shared, chunk)`` over chunks, yielding results as chunks finish.

    ``shared`` is sent once per worker; each chunk is a small picklable sequence.
    """

    #: How many chunks the back end can work on at once.
    slots: int = 1

    @abc.abstractmethod
    def map_chunks(self, func: Callable[[Any, Sequence[Any]], Any], shared: Any,
                   chunks: Iterable[Sequence[Any]]) -> Iterator[Any]:
        """Yield ``func(shared, chunk)`` for every chunk, in completion order."""

    def close(self) -> None:
        """Release workers and connections the back end started."""
