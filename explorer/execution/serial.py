"""Runs in this process, one chunk after the other."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .base import ChunkT, Executor

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    """The in-process back end (``workers=1``)."""

    slots = 1

    def map_chunks(self, func: Callable[[Any, ChunkT], Any], shared: Any,
                   chunks: Iterator[ChunkT],
                   stop: Callable[[], bool] = lambda: False,
                   meanwhile: Callable[[], None] | None = None,
                   ) -> Iterator[tuple[ChunkT, Any]]:
        if meanwhile is not None:
            meanwhile()  # nothing runs beside this process: it comes first
        while not stop():
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            try:
                result = func(shared, chunk)
            except Exception as err:  # reported per chunk, like a remote back end does
                result = err
            yield chunk, result
