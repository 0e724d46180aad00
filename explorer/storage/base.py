"""The interface between explorer and the back ends that keep trajectories.

A back end (:class:`Backend`) opens a :class:`TrajectoryStore`: one trajectory
in one file (or in memory). The rest of explorer uses only these classes and
the plain records below; it never imports a back end's module. The trajectory
hands a store plain data (:class:`TrajectoryChanges`) and gets plain data
back (:class:`StoredTrajectory`), as xarray's back ends do. Back ends are
found by name (:func:`backend`), and each passes the conformance tests of
``tests/test_backend_conformance.py``.

Runs reach a store as *batches*: the back end's :class:`Encoding` encodes run
records where the runs execute (a worker, say), its :class:`Appender` writes
the batches and commits them, and :meth:`TrajectoryStore.batch_writer` lets
workers write their batches themselves (``storage="lock"``).
"""
from __future__ import annotations

import abc
import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..records import RunRecord, RunStatus, is_record
from ..results import RunResultSource

__all__ = ["Backend", "TrajectoryStore", "RunTable", "RunResultSource", "TreeRecord",
           "ResultRecord", "TrajectoryChanges", "StoredTrajectory", "Encoding", "BatchEncoder",
           "Appender", "backend", "BACKENDS", "reader", "READERS", "RETURN_FIELDS", "is_record",
           "with_records"]

#: Back ends by name: the module that defines ``BACKEND``, imported when first used.
BACKENDS = {"hdf5": "explorer.storage.hdf5", "memory": "explorer.storage.memory"}


def backend(name: str = "hdf5") -> Backend:
    """The back end called ``name`` (see :data:`BACKENDS`)."""
    if name not in BACKENDS:
        raise ValueError(f"no storage back end {name!r}; there are: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name]).BACKEND


#: Readers of other tools' files by name: the module, imported when first used (it
#: needs its back end's libraries, which ``import explorer`` does not load).
READERS = {"pypet": "explorer.storage.hdf5.pypet"}


def reader(name: str) -> Any:
    """The module that reads the files of the tool called ``name`` (see :data:`READERS`)."""
    if name not in READERS:
        raise ValueError(f"no reader of {name!r} files; there are: {', '.join(READERS)}")
    return importlib.import_module(READERS[name])


#: Where the keys of return values that are records (see :func:`is_record`) are kept:
#: one stacked column per key, as the items of a per-run result.
RETURN_FIELDS = "returns.fields"

def with_records(values: dict[int, Any], fields: dict[str, dict[int, Any]],
                 runs: Iterable[int]) -> dict[int, Any]:
    """Return values of ``runs`` (in their order): ``values``, and records put together
    from ``fields`` (``{key: {run: value}}``) for the runs that returned one."""
    found: dict[int, Any] = {}
    for idx in runs:
        record = {key: column[idx] for key, column in fields.items() if idx in column}
        if record:
            found[idx] = record
        elif idx in values:
            found[idx] = values[idx]
    return found


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


@dataclasses.dataclass
class TreeRecord:
    """A node of a parameter branch: a group (``kind`` is ``None``) or a value.

    Attributes
    ----------
    full_name : str
        Dotted name with its branch, e.g. ``"parameters.neuron.tau_V"``.
    comment : str
        Its comment.
    kind : str or None
        The value's kind (see :mod:`explorer.values`); ``None`` for a group.
    value : object
        The value (a parameter's default).
    """

    full_name: str
    comment: str = ""
    kind: str | None = None
    value: Any = None


@dataclasses.dataclass
class ResultRecord:
    """A result added outside runs.

    Attributes
    ----------
    full_name : str
        Dotted name, e.g. ``"results.summary.rates"``.
    comment : str
        Its comment.
    items : dict
        Item values; when read, values may be :class:`~explorer.results.LazyItem`.
    groups : list of (str, str)
        Full name and comment of each group above it, outermost first.
    """

    full_name: str
    comment: str
    items: dict[str, Any]
    groups: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrajectoryChanges:
    """What a store writes: what changed since the trajectory's last store.

    Attributes
    ----------
    comment : str
        The trajectory's comment.
    n_runs : int
        The trajectory's number of runs.
    tree : list of TreeRecord, optional
        Every node of the parameter branches, when any changed (``None``: unchanged).
    branch_comments : dict
        Comment of each branch's root group.
    explored : list of str
        Full names of the explored parameters, in order.
    exploration : dict
        Values of each explored parameter for runs ``start`` on (the points
        added since the last store; every point the first time).
    start : int
        The first run ``exploration`` holds values for.
    results : list of ResultRecord
        Results added (or replaced) outside runs.
    run_items : list of (str, str, int, dict)
        Per-run items added outside runs: template, comment, run, items.
    """

    comment: str
    n_runs: int
    tree: list[TreeRecord] | None
    branch_comments: dict[str, str]
    explored: list[str]
    exploration: dict[str, list[Any]]
    start: int
    results: list[ResultRecord]
    run_items: list[tuple[str, str, int, dict[str, Any]]]


@dataclasses.dataclass
class StoredTrajectory:
    """What a store reads back.

    Attributes
    ----------
    comment : str
        The trajectory's comment.
    tree : list of TreeRecord
        Groups and values of the parameter branches, parents first.
    exploration : dict
        Values of each explored parameter, one per run, in the order explored.
    results : list of ResultRecord
        Results stored outside runs (items lazy unless loaded).
    result_groups : list of (str, str)
        Full name and comment of every group of the results branch.
    templates : dict
        Per-run result templates (``"results.neuron.$"``) and their comments.
    """

    comment: str
    tree: list[TreeRecord]
    exploration: dict[str, list[Any]]
    results: list[ResultRecord]
    result_groups: list[tuple[str, str]]
    templates: dict[str, str]


class BatchEncoder(abc.ABC):
    """Encodes run records, one at a time, into a batch its back end writes."""

    def add(self, record: RunRecord) -> None:
        """Encode one run's record: its run-table row, and its return value and results
        (``returns``/``value``, its templates' items) or its failure
        (``errors``/``error`` and ``traceback``)."""
        self.add_row(record.idx, int(record.status), record.started, record.duration)
        if record.status == RunStatus.COMPLETED:
            self.add_return(record.idx, record.value)
            for template, (comment, items) in record.results.items():
                self.add_items(template, comment, record.idx, items)
        else:
            self.add_failure(record.idx, record.error, record.traceback)

    def add_return(self, idx: int, value: Any) -> None:
        """Encode run ``idx``'s return value (a record as one column per key)."""
        if is_record(value):
            self.add_items(RETURN_FIELDS, "", idx, value)
        else:
            self.add_items("returns", "", idx, {"value": value})

    def add_failure(self, idx: int, error: str | None, traceback: str | None) -> None:
        """Encode why run ``idx`` failed."""
        self.add_items("errors", "", idx, {"error": error, "traceback": traceback})

    @abc.abstractmethod
    def add_row(self, idx: int, status: int, started: float, duration: float) -> None:
        """Add a run-table row alone."""

    @abc.abstractmethod
    def add_items(self, template: str, comment: str, idx: int, items: dict[str, Any]) -> None:
        """Encode items of run ``idx`` (no run-table row)."""

    def add_column(self, template: str, comment: str, item: str, runs: np.ndarray,
                   values: np.ndarray | list[Any]) -> None:
        """Encode one item of many runs (no run-table rows): ``values[i]`` is run
        ``runs[i]``'s; a stacked array is kept stacked where the back end can."""
        for idx, value in zip(np.asarray(runs).tolist(), values):
            self.add_items(template, comment, idx, {item: value})

    @abc.abstractmethod
    def add_block(self, runs: np.ndarray, started: float, seconds: float, template: str,
                  comment: str, items: dict[str, np.ndarray]) -> None:
        """Encode completed runs whose items come stacked (``items[name][i]`` is run
        ``runs[i]``'s)."""

    @abc.abstractmethod
    def finish(self) -> Any:
        """The batch of everything added."""

    @abc.abstractmethod
    def abandon(self) -> None:
        """Drop what was encoded (after an error)."""


class Encoding(abc.ABC):
    """How a store's batches are encoded; sent to where runs execute (picklable)."""

    @property
    @abc.abstractmethod
    def allow_pickle(self) -> bool:
        """Whether pickled values may be encoded."""

    @abc.abstractmethod
    def encoder(self) -> BatchEncoder:
        """A new encoder."""


class Appender(abc.ABC):
    """Writes batches of runs while an exploration goes on, and commits them.

    While it is open, the process's other writes of the trajectory's file (its
    stores) go in with the runs and are committed with them.
    """

    @abc.abstractmethod
    def add(self, batch: Any) -> None:
        """Write a batch (committed later)."""

    @abc.abstractmethod
    def add_session(self, session: dict[str, Any]) -> None:
        """Add a record to the session log (committed with the runs)."""

    @abc.abstractmethod
    def due(self, interval: float | None = None) -> bool:
        """Whether a commit is due (``interval`` seconds since the last, if given)."""

    @abc.abstractmethod
    def commit(self, final: bool = False) -> None:
        """Commit everything written so far (``final``: the last commit of the work, after
        which a back end may tidy the file up)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop; what is not committed is dropped."""


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

    # ----------------------------------------------------------------- the file
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
    def close(self) -> None:
        """Release the file."""

    # ------------------------------------------------------------------ writing
    @abc.abstractmethod
    def create(self, comment: str, allow_pickle: bool, *, overwrite: bool,
               copy_from: TrajectoryStore | None = None) -> None:
        """Make the trajectory's place in the file, or copy ``copy_from``'s data there.

        Raises :class:`~explorer.errors.TrajectoryExistsError` if the file holds
        a trajectory of this name with data and ``overwrite`` is off.
        """

    @abc.abstractmethod
    def write(self, changes: TrajectoryChanges, stored: Callable[[], None],
              dropped: Callable[[], None] = lambda: None) -> None:
        """Write ``changes``; ``stored()`` is called once they are committed (at once,
        or with the runs of an open :class:`Appender`), ``dropped()`` if that
        appender drops them instead. Reads in this process see them meanwhile."""

    @abc.abstractmethod
    def add_session(self, session: dict[str, Any]) -> None:
        """Commit one record to the session log."""

    @property
    @abc.abstractmethod
    def encoding(self) -> Encoding:
        """How this store's batches are encoded."""

    @abc.abstractmethod
    def appender(self, interval: float) -> Appender:
        """An appender committing every ``interval`` seconds or more."""

    @abc.abstractmethod
    def batch_writer(self) -> Callable[[Any], None]:
        """A picklable callable that writes and commits a batch from another process
        (``storage="lock"``); ``NotImplementedError`` if the back end cannot."""

    # ------------------------------------------------------------------ reading
    @abc.abstractmethod
    def read(self, load: str, allow_pickle: bool) -> StoredTrajectory:
        """The stored trajectory; results are lazy unless ``load="all"``, left out with
        ``load="parameters"``."""

    @abc.abstractmethod
    def snapshot(self) -> contextlib.AbstractContextManager[None]:
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
    def run_failures(self, runs: Iterable[int]) -> dict[int, tuple[str, str]]:
        """``("ExceptionType: message", traceback)`` of the given runs that failed the
        last time they ran, in their order."""

    def run_errors(self, runs: Iterable[int]) -> dict[int, str]:
        """``"ExceptionType: message"`` of the given runs that failed last time they ran."""
        return {idx: error for idx, (error, _) in self.run_failures(runs).items()}

    @abc.abstractmethod
    def run_results(self) -> RunResultSource:
        """The per-run results, read lazily."""

    @abc.abstractmethod
    def scalar_columns(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """``{(template, item): (runs, values)}`` for every per-run item whose values are
        all numbers (or ``None``), or all strings (``values`` then of dtype object)."""

    @abc.abstractmethod
    def sessions(self) -> list[dict[str, Any]]:
        """The session log: when, where and with what each exploration ran."""


class Backend(abc.ABC):
    """A kind of storage: opens stores, lists trajectories, tidies files."""

    #: The back end's name in :data:`BACKENDS`.
    name: str = ""

    @abc.abstractmethod
    def open(self, filename: str, name: str, *, complib: str | None = None,
             complevel: int | None = None) -> TrajectoryStore:
        """The store of trajectory ``name`` in ``filename`` (compression for new data)."""

    @abc.abstractmethod
    def trajectory_names(self, filename: str) -> list[str]:
        """Names of the trajectories stored in ``filename``."""

    @abc.abstractmethod
    def publish(self, source: str, target: str) -> None:
        """Move the file written at ``source`` (no writer left) to the new path ``target``
        as one file; :class:`~explorer.errors.OutputExistsError` if ``target`` exists."""

    @abc.abstractmethod
    def discard(self, filename: str) -> None:
        """Delete ``filename`` and everything the back end keeps beside it."""

    @abc.abstractmethod
    def tidy(self, filename: str) -> None:
        """Remove what killed writers left beside ``filename`` (its writer holds the claim)."""
