"""The interface between a trajectory and the file that keeps it.

A :class:`TrajectoryStore` is one trajectory inside one file. The trajectory and
the environment call only these typed methods; each back end lives in its own
module and is the only one that imports its library.
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ContextManager, Iterable

import numpy as np

if TYPE_CHECKING:
    from ..results import RunResultSource
    from ..trajectory import Trajectory

__all__ = ["TrajectoryStore", "RunTable"]


class RunTable:
    """What the file knows of each run: status, start, duration (one entry per run).

    Attributes
    ----------
    idx, status, started, duration : numpy.ndarray
        Aligned arrays, one entry per stored run, sorted by run index.
    """

    def __init__(self, idx: np.ndarray, status: np.ndarray, started: np.ndarray,
                 duration: np.ndarray):
        self.idx = idx
        self.status = status
        self.started = started
        self.duration = duration

    def with_status(self, status: int) -> np.ndarray:
        """Indices of the runs whose latest status is ``status``."""
        return self.idx[self.status == status]


class TrajectoryStore(abc.ABC):
    """One trajectory in one file.

    Parameters
    ----------
    filename : str
        The file.
    name : str
        The trajectory's name inside the file.
    """

    def __init__(self, filename: str, name: str):
        self.filename = filename
        self.name = name

    @abc.abstractmethod
    def same_file(self, filename: str) -> bool:
        """Whether ``filename`` is this store's file."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether the file holds this trajectory."""

    @abc.abstractmethod
    def is_unused(self) -> bool:
        """Whether the stored trajectory holds nothing to keep (no parameters, results,
        exploration or runs), so that starting it afresh loses nothing."""

    @abc.abstractmethod
    def create(self, trajectory: "Trajectory", *, overwrite: bool,
               copy_from: "TrajectoryStore | None" = None) -> None:
        """Make the trajectory's place in the file (copying ``copy_from``'s data)."""

    @abc.abstractmethod
    def write_trajectory(self, trajectory: "Trajectory") -> None:
        """Write parameters, exploration, new results and runs held in memory."""

    @abc.abstractmethod
    def append_batch(self, batch: Any) -> None:
        """Append an encoded batch of runs: status, return values, errors, results."""

    @abc.abstractmethod
    def snapshot(self) -> ContextManager[None]:
        """A block in which every read of this store sees one commit of the file.

        A read made of several reads (a frame: run table, return values,
        per-run items) is wrapped in it, so that a commit by another writer in
        between cannot pair one commit's run table with another's values.
        Blocks nest; writers in other processes are not held up.
        """

    @abc.abstractmethod
    def run_table(self) -> RunTable:
        """The latest status of each stored run."""

    @abc.abstractmethod
    def return_values(self, runs: Iterable[int]) -> dict[int, Any]:
        """Return values of the given runs, in their order (runs without one are left out)."""

    @abc.abstractmethod
    def run_errors(self, runs: Iterable[int]) -> dict[int, str]:
        """``"ExceptionType: message"`` of the given runs that failed last time they ran."""

    @abc.abstractmethod
    def run_results(self) -> "RunResultSource":
        """The per-run results, read lazily."""

    @abc.abstractmethod
    def scalar_columns(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """``{(template, item): (runs, values)}`` for every per-run scalar item."""

    @abc.abstractmethod
    def sessions(self) -> list[dict[str, Any]]:
        """The session log: when, where and with what each exploration ran."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the file."""
