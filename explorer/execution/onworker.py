"""What runs inside a dask worker process: a chunk's task, and the requests the
driver sends a worker while its chunks run.

A map's *job* (the run function and the value every chunk shares) is unpickled
once per worker process and map, and dropped when the map ends
(:func:`forget_job`). A chunk registers itself while it runs, so that the
driver may ask the worker to give up the runs it has not started
(:func:`give_up_runs`) for a worker left idle at the end of a map.
"""
from __future__ import annotations

import collections
import importlib
import pickle
import sys
import threading
from collections.abc import Sequence
from typing import Any

import cloudpickle
from distributed.diagnostics.plugin import WorkerPlugin

from .chunking import Points

__all__ = ["Opaque", "ExplorerImports", "explorer_imports", "run_chunk", "give_up_runs",
           "forget_job", "jobs_kept"]

#: Unpickled jobs a worker process keeps (maps whose end it was not told of).
JOBS_KEPT = 4

# token -> (func, shared) of the maps running in this process lately
_JOBS: collections.OrderedDict[str, Any] = collections.OrderedDict()
_JOBS_LOCK = threading.Lock()
# (token, chunk number) -> the chunk, while it runs in this process
_RUNNING: dict[tuple[str, int], Any] = {}


class Opaque:
    """A value travelling as one pickled blob, unpickled only where it is used.

    dask would otherwise pickle the thousands of small values of a chunk one by
    one, and unpickle them again on the way.
    """

    __slots__ = ("blob",)

    def __init__(self, value: Any):
        # as dask pickles: values may be of classes defined in __main__
        self.blob = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    @property
    def value(self) -> Any:
        return pickle.loads(self.blob)

    def __getstate__(self) -> bytes:
        return self.blob

    def __setstate__(self, blob: bytes) -> None:
        self.blob = blob


class ExplorerImports(WorkerPlugin):
    """Imports explorer's modules in a worker before it runs any task.

    A job unpickled in a task's thread imports the modules it refers to; a
    second thread importing explorer meanwhile (deserialising the next task,
    or another task's job) could then meet a module partly initialised and
    fail with ``ImportError`` (seen once in a few runs of a worker retired
    mid-map). Imported in the plugin's setup, before tasks, nothing is left
    to import concurrently.

    Parameters
    ----------
    modules : list of str
        The explorer modules the driver has imported.
    """

    name = "explorer-imports"

    def __init__(self, modules: list[str]):
        self.modules = modules

    def setup(self, worker: Any) -> None:
        for module in self.modules:
            importlib.import_module(module)


def explorer_imports() -> ExplorerImports:
    """The plugin importing every explorer module this process has imported."""
    return ExplorerImports(sorted(name for name in sys.modules
                                  if name == "explorer" or name.startswith("explorer.")))


def run_chunk(token: str, number: int, job: Any, chunk: Opaque) -> Any:
    """A chunk's task: ``func(shared, chunk)`` for chunk ``number`` of map ``token``.

    ``job`` is the map's ``(func, shared)`` as an :class:`Opaque`; one thread at
    a time unpickles it (and imports what it needs), once per process and map.
    """
    with _JOBS_LOCK:
        found = _JOBS.get(token)
        if found is None:
            found = _JOBS[token] = job.value
            while len(_JOBS) > JOBS_KEPT:
                _JOBS.popitem(last=False)
    func, shared = found
    points = chunk.value
    _RUNNING[token, number] = points
    try:
        return func(shared, points)
    finally:
        _RUNNING.pop((token, number), None)


def give_up_runs(token: str, numbers: Sequence[int], least_seconds: float) -> dict[int, int]:
    """Give up half the runs of chunks ``numbers`` of map ``token`` that this worker
    has not started (the larger half while one of them runs), the last ones
    first: ``{chunk number: runs it keeps}`` for each chunk cut short.

    Run in the worker's event loop (``client.run``) while the chunks run in its
    threads. Chunks not running here, or not splittable, give nothing; nothing
    is given up when the runs left would take less than ``least_seconds`` at
    the pace of those done.
    """
    chunks = [(number, chunk) for number in numbers
              if isinstance(chunk := _RUNNING.get((token, number)), Points) and chunk.splittable]
    left = sum(chunk.left() for _, chunk in chunks)
    pace = next((p for p in (chunk.pace() for _, chunk in chunks) if p is not None), None)
    give = (left + 1) // 2 if any(chunk.taken() for _, chunk in chunks) else left // 2
    if give < 1 or (pace is not None and left * pace < least_seconds):
        return {}
    cuts = {}
    for number, chunk in reversed(chunks):
        if give < 1:
            break
        cut = chunk.give_up(give)
        if cut is not None:
            cuts[number], given = cut
            give -= given
    return cuts


def forget_job(token: str) -> None:
    """Drop map ``token``'s job: the map has ended."""
    _JOBS.pop(token, None)


def jobs_kept() -> int:
    """How many maps' jobs this worker process holds."""
    return len(_JOBS)
