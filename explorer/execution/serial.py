"""Runs in this process, one chunk after the other."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

from .base import Executor

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    """The in-process back end (``workers=1``)."""

    slots = 1

    def map_chunks(self, func: Callable[[Any, Sequence[Any]], Any], shared: Any,
                   chunks: Iterable[Sequence[Any]]) -> Iterator[Any]:
        for chunk in chunks:
            yield func(shared, chunk)
