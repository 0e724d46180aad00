"""Searches that run side by side and have their points evaluated together.

Each search (a CMA-ES instance, a scipy minimizer...) runs in its own thread
and asks for points through :meth:`Rendezvous.evaluate`, which blocks. Once
every live search is waiting, the coordinator (the main thread) evaluates all
their points as one batch, one generation, and wakes them with their losses.
The order of points in a batch is the order of the searches, so that the same
searches with the same seeds always make the same batches.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Exhausted", "Rendezvous", "Request"]


class Exhausted(Exception):
    """Raised in a search when its points do not fit the evaluation budget (or the
    optimization stops): the search ends there."""


@dataclass
class Request:
    """Points one search waits to have evaluated."""

    start: int
    points: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    losses: np.ndarray | None = None
    refused: bool = False


class Rendezvous:
    """Runs ``searches`` in threads and hands out their points in batches.

    Parameters
    ----------
    searches : list of callable
        ``search(evaluate)`` for each start; ``evaluate(points)`` takes an
        ``(n, d)`` array and returns the ``n`` losses (raises :class:`Exhausted`
        when the search must end).
    """

    def __init__(self, searches: list[Callable[[Callable[[np.ndarray], np.ndarray]], Any]]):
        self._searches = searches
        self._lock = threading.Condition()
        self._pending: dict[int, Request] = {}
        self._live: set[int] = set()
        self._stopping = False
        self.errors: dict[int, BaseException] = {}
        self.results: dict[int, Any] = {}

    def _evaluate_for(self, start: int) -> Callable[[np.ndarray], np.ndarray]:
        def evaluate(points: np.ndarray) -> np.ndarray:
            points = np.atleast_2d(np.asarray(points, dtype=float))
            request = Request(start, points)
            with self._lock:
                if self._stopping:
                    raise Exhausted()
                self._pending[start] = request
                self._lock.notify_all()
            request.done.wait()
            if request.refused or request.losses is None:
                raise Exhausted()
            return request.losses

        return evaluate

    def _run(self, start: int) -> None:
        try:
            self.results[start] = self._searches[start](self._evaluate_for(start))
        except Exhausted:
            pass
        except BaseException as err:  # a search's own failure is reported by run()
            self.errors[start] = err
        finally:
            with self._lock:
                self._live.discard(start)
                self._lock.notify_all()

    def run(self, evaluate_batch: Callable[[list[Request]], int]) -> None:
        """Drive every search to its end.

        ``evaluate_batch(requests)`` evaluates the requests it can (setting
        their ``losses``), in order, and returns how many it took; the others
        are refused (their searches end with :class:`Exhausted`).
        """
        threads = [threading.Thread(target=self._run, args=(start,), daemon=True,
                                    name=f"explorer-search-{start}")
                   for start in range(len(self._searches))]
        self._live = set(range(len(threads)))
        for thread in threads:
            thread.start()
        requests: list[Request] = []
        try:
            while True:
                with self._lock:
                    self._lock.wait_for(lambda: all(s in self._pending for s in self._live))
                    if not self._live:
                        break
                    requests = [self._pending.pop(start) for start in sorted(self._pending)]
                taken = evaluate_batch(requests)
                for number, request in enumerate(requests):
                    request.refused = number >= taken
                    request.done.set()
        finally:
            with self._lock:
                self._stopping = True
                for request in [*requests, *self._pending.values()]:
                    if not request.done.is_set():
                        request.refused = True
                        request.done.set()
                self._pending.clear()
            for thread in threads:
                thread.join()
        if self.errors:
            start, error = min(self.errors.items())
            raise error
