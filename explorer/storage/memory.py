"""Trajectories kept in memory: the reference implementation of :mod:`.base`.

A "file" is a name in a dict of this process; every store opened on that name
shares it. A trajectory's data is a :class:`_State`, never changed once
visible: each write makes a changed copy and puts it in place, so a
:meth:`MemoryStore.snapshot` only has to hold on to the state it started with.
While an :class:`MemoryAppender` is open on a file, every write of the file
goes into the appender's draft, which reads see (as a process sees its own
write under way in an HDF5 file), and becomes the committed state at its
commit, or is dropped when it closes. Values are deep-copied in and out.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, overload

import numpy as np

from ..errors import (
    FileFormatError,
    OutputExistsError,
    TrajectoryExistsError,
    TrajectoryNotFoundError,
)
from ..records import RunStatus
from ..results import LazyItem, stack_values, value_info
from .base import (
    RETURN_FIELDS,
    Appender,
    Backend,
    BatchEncoder,
    Encoding,
    ResultRecord,
    RunTable,
    StoredTrajectory,
    TrajectoryChanges,
    TrajectoryStore,
    with_records,
)

__all__ = ["MemoryBackend", "MemoryStore", "MemoryAppender", "MemoryBatch", "BACKEND"]

_PARAMETER_BRANCHES = ("parameters", "derived_parameters")
_SEED = "config.environment.seed"  # what an Environment stores first (see is_unused)
_NUMBERS = (bool, int, float, complex, np.bool_, np.number)


@dataclasses.dataclass
class _State:
    """One trajectory as stored; ``items[template][item][run]`` holds per-run values."""

    comment: str = ""
    tree: list = dataclasses.field(default_factory=list)
    branch_comments: dict = dataclasses.field(default_factory=dict)
    explored: list = dataclasses.field(default_factory=list)
    exploration: dict = dataclasses.field(default_factory=dict)
    results: dict = dataclasses.field(default_factory=dict)
    result_groups: dict = dataclasses.field(default_factory=dict)
    templates: dict = dataclasses.field(default_factory=dict)
    items: dict = dataclasses.field(default_factory=dict)
    rows: list = dataclasses.field(default_factory=list)
    sessions: list = dataclasses.field(default_factory=list)

    def copy(self) -> _State:
        """A copy whose containers can be changed (values are shared, never changed)."""
        return dataclasses.replace(
            self, tree=list(self.tree), branch_comments=dict(self.branch_comments),
            explored=list(self.explored),
            exploration={name: list(values) for name, values in self.exploration.items()},
            results=dict(self.results), result_groups=dict(self.result_groups),
            templates=dict(self.templates),
            items={template: {item: dict(runs) for item, runs in columns.items()}
                   for template, columns in self.items.items()},
            rows=list(self.rows), sessions=list(self.sessions))

    def add_items(self, template: str, comment: str, idx: int, items: dict[str, Any]) -> None:
        if template.startswith("results."):
            self.templates.setdefault(template, comment)
        columns = self.items.setdefault(template, {})
        for item, value in items.items():
            columns.setdefault(item, {})[int(idx)] = value


class _File:
    """A memory "file": committed trajectories, and the draft of an open appender."""

    def __init__(self) -> None:
        self.committed: dict[str, _State] = {}
        self.draft: dict[str, _State] = {}
        self.appender: MemoryAppender | None = None

    def state(self, name: str) -> _State | None:
        return self.draft[name] if name in self.draft else self.committed.get(name)

    def names(self) -> list[str]:
        return sorted(set(self.committed) | set(self.draft))

    def change(self, name: str, changed: Callable[[_State | None], _State],
               stored: Callable[[], None] | None = None,
               dropped: Callable[[], None] | None = None) -> None:
        """Put ``changed(current)`` in place, in the open appender's draft if there is one;
        ``stored()`` is called once that is committed."""
        with _lock:
            new = changed(self.state(name))  # raises before anything is changed
            if self.appender is not None:
                self.draft[name] = new
                self.appender._waiting = True
                if stored is not None:
                    self.appender._stored.append(stored)
                if dropped is not None:
                    self.appender._dropped.append(dropped)
                return
            self.committed[name] = new
        if stored is not None:
            stored()


_lock = threading.RLock()
_files: dict[str, _File] = {}


@overload
def _file(filename: str, make: Literal[True]) -> _File: ...


@overload
def _file(filename: str, make: bool = False) -> _File | None: ...


def _file(filename: str, make: bool = False) -> _File | None:
    with _lock:
        if make and filename not in _files:
            _files[filename] = _File()
        return _files.get(filename)


def _unused(state: _State) -> bool:
    """Whether ``state`` holds nothing to keep: no parameters, results, exploration, runs
    or config but the seed an Environment stores first."""
    for record in state.tree:
        branch, _, rest = record.full_name.partition(".")
        if rest and (branch in _PARAMETER_BRANCHES or
                     record.kind is not None and record.full_name != _SEED):
            return False
    return not (state.results or state.result_groups or any(state.exploration.values()) or
                state.rows or any(template not in ("returns", "errors", RETURN_FIELDS)
                                  for template in state.items))


def _existing(state: _State | None, store: MemoryStore) -> _State:
    if state is None:
        raise TrajectoryNotFoundError(f"{store.filename!r} holds no trajectory named "
                                      f"{store.name!r}")
    return state


# ------------------------------------------------------------------------- batches
@dataclasses.dataclass
class MemoryBatch:
    """Encoded runs: run-table rows ``(idx, status, started, duration)`` and
    items ``(template, comment, idx, {item: value})`` (deep copies)."""

    rows: list = dataclasses.field(default_factory=list)
    items: list = dataclasses.field(default_factory=list)


class MemoryEncoder(BatchEncoder):
    """Encodes run records into a :class:`MemoryBatch` as the HDF5 encoder does."""

    def __init__(self) -> None:
        self._batch = MemoryBatch()

    def add_row(self, idx: int, status: int, started: float, duration: float) -> None:
        self._batch.rows.append((int(idx), int(status), float(started), float(duration)))

    def add_items(self, template: str, comment: str, idx: int, items: dict[str, Any]) -> None:
        self._batch.items.append((template, comment, int(idx), copy.deepcopy(items)))

    def add_block(self, runs: np.ndarray, started: float, seconds: float, template: str,
                  comment: str, items: dict[str, np.ndarray]) -> None:
        duration = seconds / len(runs) if len(runs) else 0.0
        for i, idx in enumerate(np.asarray(runs).tolist()):
            self._batch.rows.append((idx, int(RunStatus.COMPLETED), started + i * duration,
                                     duration))
            self.add_items("returns", "", idx, {"value": None})
            # rows as the HDF5 encoder gives them: Python scalars, or arrays
            self.add_items(template, comment, idx,
                           {name: block[i].tolist() if np.ndim(block) == 1 else block[i]
                            for name, block in items.items()})

    def finish(self) -> MemoryBatch:
        batch, self._batch = self._batch, MemoryBatch()
        return batch

    def abandon(self) -> None:
        self._batch = MemoryBatch()


@dataclasses.dataclass(frozen=True)
class MemoryEncoding(Encoding):
    """Memory batches need no settings; ``allow_pickle`` is the store's."""

    pickle_allowed: bool = False

    @property
    def allow_pickle(self) -> bool:
        return self.pickle_allowed

    def encoder(self) -> MemoryEncoder:
        return MemoryEncoder()


def _with_batch(state: _State | None, batch: MemoryBatch, store: MemoryStore) -> _State:
    new = _existing(state, store).copy()
    new.rows += batch.rows
    for template, comment, idx, items in batch.items:
        new.add_items(template, comment, idx, items)
    return new


class MemoryAppender(Appender):
    """Holds writes of its store's file in a draft until :meth:`commit`."""

    def __init__(self, store: MemoryStore, interval: float):
        self.store = store
        self.interval = interval
        self._file = _file(store.filename, make=True)
        self._stored: list[Callable[[], None]] = []  # callbacks of the writes it holds
        self._dropped: list[Callable[[], None]] = []
        self._waiting = False
        self._committed = time.monotonic()
        with _lock:
            if self._file.appender is not None:
                raise RuntimeError(f"an appender is already open on {store.filename!r}")
            self._file.appender = self

    def _check_open(self) -> None:
        if self._file.appender is not self:
            raise RuntimeError("the appender is closed")

    def add(self, batch: MemoryBatch) -> None:
        self._check_open()
        self._file.change(self.store.name, lambda state: _with_batch(state, batch, self.store))

    def add_session(self, session: dict[str, Any]) -> None:
        self._check_open()
        self.store.add_session(session)

    def due(self, interval: float | None = None) -> bool:
        wait = self.interval if interval is None else interval
        return self._waiting and time.monotonic() - self._committed >= wait

    def commit(self, final: bool = False) -> None:
        self._check_open()
        with _lock:
            self._file.committed.update(self._file.draft)
            self._file.draft.clear()
            stored, self._stored, self._waiting = self._stored, [], False
            self._dropped = []
        self._committed = time.monotonic()
        for callback in stored:
            callback()

    def close(self) -> None:
        with _lock:
            if self._file.appender is self:
                self._file.draft.clear()
                self._file.appender = None
            dropped, self._dropped = self._dropped, []
            self._stored, self._waiting = [], False
        for callback in dropped:
            callback()


# --------------------------------------------------------------------------- store
class MemoryRunResults:
    """The per-run results of a store (see :class:`~explorer.results.RunResultSource`)."""

    def __init__(self, store: MemoryStore):
        self._store = store

    def templates(self) -> dict[str, str]:
        return dict(self._store._view().templates)

    def items(self, template: str) -> list[str]:
        return list(self._store._view().items.get(template, {}))

    def runs(self, template: str, item: str) -> np.ndarray:
        runs = self._store._view().items.get(template, {}).get(item, {})
        return np.array(sorted(runs), dtype=np.int64)

    def get(self, template: str, item: str, idx: int) -> Any:
        return copy.deepcopy(self._store._view().items[template][item][int(idx)])

    def has(self, template: str, item: str, idx: int) -> bool:
        return int(idx) in self._store._view().items.get(template, {}).get(item, {})

    def info(self, template: str, item: str) -> tuple[str, np.dtype | None,
                                                      tuple[int, ...] | None]:
        return value_info(self._store._view().items[template][item].values())

    def read(self, template: str, item: str, runs: np.ndarray) -> np.ndarray | list[Any]:
        column = self._store._view().items[template][item]
        values = [copy.deepcopy(column[idx]) for idx in np.asarray(runs).tolist()]
        return stack_values(values, self.info(template, item))


class MemoryStore(TrajectoryStore):
    """One trajectory in a memory "file" (see the module's docstring)."""

    def __init__(self, filename: str, name: str):
        super().__init__(os.fspath(filename), name)
        self._allow_pickle = False
        self._pinned = threading.local()  # .state: what a snapshot sees (per thread)

    # ----------------------------------------------------------------- the file
    def same_file(self, filename: str) -> bool:
        return os.fspath(filename) == self.filename

    def _current(self) -> _State | None:
        file = _file(self.filename)
        if file is None:
            raise FileFormatError(f"no memory file {self.filename!r}")
        return file.state(self.name)

    def _view(self) -> _State:
        """The state reads see: the snapshot's, or the current one."""
        pinned = getattr(self._pinned, "state", None)
        return _existing(pinned[0] if pinned is not None else self._current(), self)

    def exists(self) -> bool:
        file = _file(self.filename)
        return file is not None and file.state(self.name) is not None

    def is_unused(self) -> bool:
        return _unused(self._view())

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ writing
    def _write(self, changed: Callable[[_State | None], _State],
               stored: Callable[[], None] | None = None,
               dropped: Callable[[], None] | None = None) -> None:
        _file(self.filename, make=True).change(self.name, changed, stored, dropped)

    def create(self, comment: str, allow_pickle: bool, *, overwrite: bool,
               copy_from: TrajectoryStore | None = None) -> None:
        self._allow_pickle = bool(allow_pickle)
        new = _State(comment=comment)
        if copy_from is not None and copy_from.exists():
            new = _copied(copy_from)

        def created(state: _State | None) -> _State:
            if state is not None and not overwrite and not _unused(state):
                raise TrajectoryExistsError(
                    f"{self.filename!r} already holds a trajectory named {self.name!r}; "
                    "pass overwrite_file=True to replace it")
            return new

        self._write(created)

    def write(self, changes: TrajectoryChanges, stored: Callable[[], None],
              dropped: Callable[[], None] = lambda: None) -> None:
        results = [ResultRecord(record.full_name, record.comment,
                                {item: copy.deepcopy(value.load() if isinstance(value, LazyItem)
                                                     else value)
                                 for item, value in record.items.items()},
                                list(record.groups)) for record in changes.results]
        changes = dataclasses.replace(changes, results=[])
        changes = copy.deepcopy(changes)

        def written(state: _State | None) -> _State:
            new = _existing(state, self).copy()
            if changes.explored and new.explored and changes.explored != new.explored:
                raise FileFormatError(
                    f"{self.filename!r}: trajectory {self.name!r} is stored explored over "
                    f"{new.explored}, not {changes.explored}")
            new.comment = changes.comment
            if changes.tree is not None:
                new.tree = changes.tree
            new.branch_comments.update(changes.branch_comments)
            if changes.explored:
                new.explored = changes.explored
                for name in changes.explored:
                    column = new.exploration.setdefault(name, [])
                    values = changes.exploration.get(name, [])
                    if changes.start > len(column):
                        raise ValueError(f"exploration of {name!r} starts at run "
                                         f"{changes.start}, but {len(column)} runs are stored")
                    column[changes.start:changes.start + len(values)] = values
            for record in results:
                new.results[record.full_name] = record
                new.result_groups.update(record.groups)
            for template, comment, idx, items in changes.run_items:
                new.add_items(template, comment, idx, items)
            return new

        self._write(written, stored, dropped)

    def add_session(self, session: dict[str, Any]) -> None:
        record = json.loads(json.dumps(session, default=str))  # as a file keeps it

        def added(state: _State | None) -> _State:
            new = _existing(state, self).copy()
            new.sessions.append(record)
            return new

        self._write(added)

    @property
    def encoding(self) -> MemoryEncoding:
        return MemoryEncoding(self._allow_pickle)

    def appender(self, interval: float) -> MemoryAppender:
        return MemoryAppender(self, interval)

    def batch_writer(self) -> Callable[[Any], None]:
        raise NotImplementedError("memory trajectories live in one process: workers cannot "
                                  "write their runs themselves")

    # ------------------------------------------------------------------ reading
    def read(self, load: str, allow_pickle: bool) -> StoredTrajectory:
        if load not in ("lazy", "parameters", "all"):
            raise ValueError(f"load must be 'lazy', 'parameters' or 'all', got {load!r}")
        self._allow_pickle = bool(allow_pickle)
        state = self._view()
        stored = StoredTrajectory(state.comment, copy.deepcopy(state.tree),
                                  copy.deepcopy(state.exploration), [], [], {})
        if load != "parameters":
            for record in state.results.values():
                items = {item: copy.deepcopy(value) if load == "all" else
                         LazyItem(functools.partial(copy.deepcopy, value),
                                  f"{record.full_name}.{item} in memory {self.filename!r}")
                         for item, value in record.items.items()}
                stored.results.append(ResultRecord(record.full_name, record.comment, items,
                                                   list(record.groups)))
            stored.result_groups = [(name, comment) for name, comment
                                    in state.result_groups.items() if "." in name]  # not the root
            stored.templates = dict(state.templates)
        return stored

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        if getattr(self._pinned, "state", None) is not None:  # nested: the outer one's
            yield
            return
        self._pinned.state = (self._current(),)
        try:
            yield
        finally:
            self._pinned.state = None

    def run_table(self) -> RunTable:
        latest = {row[0]: row for row in self._view().rows}
        rows = [latest[idx] for idx in sorted(latest)]
        columns: list[tuple[Any, ...]] = list(zip(*rows)) if rows else [()] * 4
        return RunTable(np.array(columns[0], dtype=np.int64), np.array(columns[1], dtype=np.int8),
                        np.array(columns[2], dtype=np.float64),
                        np.array(columns[3], dtype=np.float64))

    def _values(self, template: str, item: str, runs: Iterable[int]) -> dict[int, Any]:
        column = self._view().items.get(template, {}).get(item, {})
        return {int(idx): copy.deepcopy(column[int(idx)]) for idx in runs if int(idx) in column}

    def return_values(self, runs: Iterable[int]) -> dict[int, Any]:
        wanted = [int(idx) for idx in runs]
        with self.snapshot():
            values = self._values("returns", "value", wanted)
            fields = {key: self._values(RETURN_FIELDS, key, wanted)
                      for key in sorted(self._view().items.get(RETURN_FIELDS, {}))}
        return with_records(values, fields, wanted) if fields else values

    def run_failures(self, runs: Iterable[int]) -> dict[int, tuple[str, str]]:
        with self.snapshot():
            failed = set(self.run_table().with_status(RunStatus.FAILED).tolist())
            wanted = [int(idx) for idx in runs if int(idx) in failed]
            errors = self._values("errors", "error", wanted)
            tracebacks = self._values("errors", "traceback", wanted)
        return {idx: (errors[idx], tracebacks.get(idx) or "") for idx in wanted
                if idx in errors}

    def run_results(self) -> MemoryRunResults:
        return MemoryRunResults(self)

    def scalar_columns(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        state = self._view()
        found = {}
        for template in state.templates:
            for item, column in state.items.get(template, {}).items():
                if not column:
                    continue
                numbers = all(isinstance(value, _NUMBERS) for value in column.values())
                if numbers or all(type(value) is str for value in column.values()):
                    runs = sorted(column)
                    found[(template, item)] = (
                        np.array(runs, dtype=np.int64),
                        np.array([column[idx] for idx in runs],
                                 dtype=None if numbers else object))
        return found

    def sessions(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._view().sessions)


def _copied(source: TrajectoryStore) -> _State:
    """Everything ``source`` (a store of any back end) holds, read through the interface."""
    with source.snapshot():
        stored = source.read("all", allow_pickle=True)
        table = source.run_table()
        runs = table.idx.tolist()
        returns = source.return_values(runs)
        failures = source.run_failures(runs)
        results = source.run_results()
        state = _State(comment=stored.comment, tree=stored.tree,
                       explored=list(stored.exploration), exploration=stored.exploration,
                       results={record.full_name: record for record in stored.results},
                       result_groups=dict(stored.result_groups),
                       sessions=source.sessions())
        state.rows = list(zip(runs, table.status.tolist(), table.started.tolist(),
                              table.duration.tolist()))
        for template, comment in results.templates().items():
            state.templates[template] = comment
            for item in results.items(template):
                for idx in results.runs(template, item):
                    state.add_items(template, comment, idx,
                                    {item: results.get(template, item, int(idx))})
        encoder = MemoryEncoder()
        for idx, value in returns.items():
            encoder.add_return(idx, value)
        for idx, (error, traceback) in failures.items():
            encoder.add_failure(idx, error, traceback)
        for template, comment, idx, items in encoder.finish().items:
            state.add_items(template, comment, idx, items)
    return state


class MemoryBackend(Backend):
    """Trajectories in "files" that are names in this process's memory."""

    name = "memory"

    def open(self, filename: str, name: str, *, complib: str | None = None,
             complevel: int | None = None) -> MemoryStore:
        return MemoryStore(filename, name)

    def trajectory_names(self, filename: str) -> list[str]:
        file = _file(os.fspath(filename))
        if file is None:
            raise FileFormatError(f"no memory file {os.fspath(filename)!r}")
        return file.names()

    def tidy(self, filename: str) -> None:
        pass

    def publish(self, source: str, target: str) -> None:
        with _lock:
            if os.fspath(target) in _files:
                raise OutputExistsError(f"memory file {os.fspath(target)!r} exists already")
            _files[os.fspath(target)] = _files.pop(os.fspath(source))

    def discard(self, filename: str) -> None:
        with _lock:
            _files.pop(os.fspath(filename), None)

    def remove(self, filename: str) -> None:
        """Forget the memory file ``filename`` (:meth:`discard`, kept for tests)."""
        self.discard(filename)


BACKEND = MemoryBackend()
