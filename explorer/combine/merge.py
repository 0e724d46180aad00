"""Merging trajectories of several files (say, the jobs of one grid) into one new file.

The inputs must hold trajectories of one name with the same parameters, apart
from the explored ones, whose points are concatenated (each duplicate point kept
once with ``remove_duplicates``). Every run keeps its status, start, duration,
return value, error and per-run results under its new index; per-run items are
copied as stacks, a block of runs at a time; each input's session log is kept.
Everything is read through the store interface, and the output is written as a
new file in one commit (:mod:`.building`): the inputs are only read.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import (
    ExplorerError,
    FileFormatError,
    IncompatibleTrajectoriesError,
    TrajectoryNotFoundError,
)
from ..provenance import collect, now
from ..records import RunStatus
from ..storage.base import (
    ResultRecord,
    RunTable,
    StoredTrajectory,
    TrajectoryChanges,
    TrajectoryStore,
    backend,
)
from ..trajectory import trajectory_names
from .building import BACKEND_NAME, NewTrajectory, new_file, refuse_existing
from .sameness import point_key, same_value

__all__ = ["merge", "MergeWarning", "BLOCK_BYTES"]

#: Per-run items are copied this many bytes of runs at a time, at most (a block of runs).
BLOCK_BYTES = 64 * 2**20


class MergeWarning(UserWarning):
    """Something of an input that the merged trajectory does not keep (the message says what)."""


@dataclass
class _Input:
    """One input trajectory: its store, what it holds, and which of its runs are kept."""

    filename: str
    store: TrajectoryStore
    stored: StoredTrajectory
    table: RunTable  # read once: for duplicates, then for copying
    n_runs: int
    kept: np.ndarray  # indices of the runs kept, ascending
    new: np.ndarray  # their indices in the output, aligned with ``kept``


def merge(out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]],
          name: str | None = None, *, remove_duplicates: bool = False,
          allow_pickle: bool = False) -> int:
    """Merge one trajectory of several files into a new file.

    Parameters
    ----------
    out : str or path
        The new file; it must not exist.
    inputs : sequence of str or path
        Files holding the trajectory, merged in this order (runs of the first
        input come first). They are not changed.
    name : str, optional
        The trajectory's name; may be left out when the first input holds only one.
    remove_duplicates : bool
        Keep each point (the same values of every explored parameter) once: the
        first completed run of it, else its first run. By default every run is kept.
    allow_pickle : bool
        Copy pickled items (reading them runs code from the inputs).

    Returns
    -------
    int
        The merged trajectory's number of runs.

    Raises
    ------
    OutputExistsError
        ``out`` exists.
    IncompatibleTrajectoriesError
        The inputs' parameters differ (the message names the parameter and the
        files), or they explore different parameters, or several explore
        nothing and ``remove_duplicates`` is off (one run each of one point).
    FileFormatError, TrajectoryNotFoundError
        An input is not an explorer file, or does not hold the trajectory.
    """
    out = os.fspath(out)
    filenames = [os.fspath(path) for path in inputs]
    if not filenames:
        raise ValueError("merge needs at least one input file")
    refuse_existing(out)
    _refuse_repeats(filenames)
    name = name if name is not None else _only_name(filenames[0])
    opened = [_open(filename, name, allow_pickle) for filename in filenames]
    try:
        _check_compatible(opened)
        if not opened[0].stored.exploration and len(opened) > 1 and not remove_duplicates:
            raise IncompatibleTrajectoriesError(
                f"the trajectories {name!r} explore nothing: each is one run of the same "
                "point, and a trajectory of several runs needs explored parameters; pass "
                "remove_duplicates=True to keep one run (the first completed)")
        points = _plan(opened, remove_duplicates)
        with new_file(out) as path:
            _write(path, name, opened, points, allow_pickle, remove_duplicates)
    finally:
        for one in opened:
            one.store.close()
    return sum(len(one.kept) for one in opened)


def _refuse_repeats(filenames: list[str]) -> None:
    seen: dict[str, str] = {}
    for filename in filenames:
        key = os.path.realpath(filename)
        if key in seen:
            raise ValueError(f"{filename!r} is given twice (as {seen[key]!r}): each input "
                             "file once")
        seen[key] = filename


def _only_name(filename: str) -> str:
    names = trajectory_names(filename)
    if len(names) != 1:
        raise ExplorerError(f"{filename!r} holds {len(names)} trajectories "
                            f"({', '.join(names) or 'none'}); pass name=...")
    return names[0]


def _open(filename: str, name: str, allow_pickle: bool) -> _Input:
    if not os.path.exists(filename):
        raise FileFormatError(f"input file {filename!r} does not exist")
    names = trajectory_names(filename)  # FileFormatError for a file that is not explorer's
    if name not in names:
        raise TrajectoryNotFoundError(f"{filename!r} holds no trajectory named {name!r}; it "
                                      f"holds: {', '.join(names) or 'none'}")
    store = backend(BACKEND_NAME).open(filename, name)
    stored = store.read("all", allow_pickle)
    n_runs = len(next(iter(stored.exploration.values()))) if stored.exploration else 1
    return _Input(filename, store, stored, store.run_table(), n_runs, np.zeros(0, np.int64),
                  np.zeros(0, np.int64))


def _check_compatible(opened: list[_Input]) -> None:
    """Refuse inputs whose parameters (explored ones aside) or explored names differ."""
    first = opened[0]
    explored = list(first.stored.exploration)
    reference = {record.full_name: record for record in first.stored.tree}
    for other in opened[1:]:
        theirs = list(other.stored.exploration)
        if theirs != explored:
            raise IncompatibleTrajectoriesError(
                f"{other.filename!r} explores {', '.join(theirs) or 'nothing'}, "
                f"{first.filename!r} explores {', '.join(explored) or 'nothing'}: only "
                "explorations of the same parameters can be merged")
        records = {record.full_name: record for record in other.stored.tree}
        for full_name in sorted(set(reference) | set(records)):
            mine, yours = reference.get(full_name), records.get(full_name)
            if mine is None or yours is None:
                holder = first.filename if yours is None else other.filename
                raise IncompatibleTrajectoriesError(
                    f"{full_name!r} is in {holder!r} only (merging {first.filename!r} and "
                    f"{other.filename!r}): the trajectories' parameters must be the same")
            if full_name in explored or (mine.kind is None and yours.kind is None):
                continue
            if mine.kind != yours.kind or not same_value(mine.value, yours.value):
                raise IncompatibleTrajectoriesError(
                    f"parameter {full_name!r} differs: {_short(mine.value)} in "
                    f"{first.filename!r}, {_short(yours.value)} in {other.filename!r}; only "
                    "trajectories with the same parameters (apart from explored ones) merge")


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _plan(opened: list[_Input], remove_duplicates: bool) -> dict[str, list[Any]]:
    """Choose the runs kept and their new indices; the output's exploration."""
    explored = list(opened[0].stored.exploration)
    if not remove_duplicates:
        offset = 0
        for one in opened:
            one.kept = np.arange(one.n_runs, dtype=np.int64)
            one.new = one.kept + offset
            offset += one.n_runs
    else:
        chosen: dict[Any, tuple[int, int, bool]] = {}  # point -> (input, run, completed)
        order: list[Any] = []
        for k, one in enumerate(opened):
            completed = set(one.table.with_status(RunStatus.COMPLETED).tolist())
            for idx in range(one.n_runs):
                key = point_key([one.stored.exploration[name][idx] for name in explored])
                done = idx in completed
                held = chosen.get(key)
                if held is None:
                    order.append(key)
                    chosen[key] = (k, idx, done)
                elif done and not held[2]:
                    chosen[key] = (k, idx, done)
        picked: list[list[tuple[int, int]]] = [[] for _ in opened]
        for new, key in enumerate(order):
            k, idx, _ = chosen[key]
            picked[k].append((idx, new))
        for one, pairs in zip(opened, picked):
            pairs.sort()
            one.kept = np.array([idx for idx, _ in pairs], dtype=np.int64)
            one.new = np.array([new for _, new in pairs], dtype=np.int64)
    total = sum(len(one.kept) for one in opened)
    exploration: dict[str, list[Any]] = {name: [None] * total for name in explored}
    for one in opened:
        for name in explored:
            values = one.stored.exploration[name]
            column = exploration[name]
            for idx, new in zip(one.kept.tolist(), one.new.tolist()):
                column[new] = values[idx]
    return exploration


def _write(path: str, name: str, opened: list[_Input], exploration: dict[str, list[Any]],
           allow_pickle: bool, remove_duplicates: bool) -> None:
    first = opened[0].stored
    results, ignored = _results(opened)
    comment = first.comment
    if ignored:
        message = ("merged trajectory keeps the first input's result of each name; "
                   "left out: " + "; ".join(ignored))
        warnings.warn(message, MergeWarning, stacklevel=3)
    n_runs = sum(len(one.kept) for one in opened)
    with NewTrajectory(path, name, comment, allow_pickle=allow_pickle) as new:
        new.write(TrajectoryChanges(comment, n_runs, opened[0].stored.tree, {},
                                    list(exploration), exploration, 0, results, []))
        for one in opened:
            _copy_runs(new, one)
            for session in one.store.sessions():
                new.add_session(session)
        new.add_session({**collect(), "end": now(), "merged": [one.filename for one in opened],
                         "runs": n_runs, "remove_duplicates": remove_duplicates})


def _results(opened: list[_Input]) -> tuple[list[ResultRecord], list[str]]:
    """Results outside runs of every input; for a name in several, the first input's."""
    results: dict[str, ResultRecord] = {}
    ignored = []
    for one in opened:
        groups = dict(one.stored.result_groups)
        for record in one.stored.results:
            if record.full_name in results:
                ignored.append(f"{record.full_name} of {one.filename!r}")
                continue
            results[record.full_name] = ResultRecord(
                record.full_name, record.comment, record.items,
                [(group, comment) for group, comment in groups.items()
                 if record.full_name.startswith(f"{group}.")])
    return list(results.values()), ignored


def _copy_runs(new: NewTrajectory, one: _Input) -> None:
    """Copy the kept runs of one input: rows, return values, errors, per-run items."""
    renumber = dict(zip(one.kept.tolist(), one.new.tolist()))
    table = one.table
    inside = np.isin(table.idx, one.kept)
    encoder = new.encoder()
    for idx, status, started, duration in zip(table.idx[inside].tolist(),
                                              table.status[inside].tolist(),
                                              table.started[inside].tolist(),
                                              table.duration[inside].tolist()):
        encoder.add_row(renumber[idx], status, started, duration)
    runs = table.idx[inside].tolist()
    for idx, value in one.store.return_values(runs).items():
        encoder.add_return(renumber[idx], value)
    for idx, (error, traceback) in one.store.run_failures(runs).items():
        encoder.add_failure(renumber[idx], error, traceback)
    new.add(encoder)
    source = one.store.run_results()
    for template, comment in source.templates().items():
        for item in source.items(template):
            listed = source.runs(template, item)  # an array for both back ends
            stored_runs = listed if isinstance(listed, np.ndarray) else \
                np.fromiter(listed, dtype=np.int64)
            wanted = stored_runs[np.isin(stored_runs, one.kept)]
            if not len(wanted):
                continue
            step = _block_runs(source.info(template, item))
            for start in range(0, len(wanted), step):
                block = wanted[start:start + step]
                encoder = new.encoder()
                encoder.add_column(template, comment, item,
                                   np.array([renumber[idx] for idx in block.tolist()],
                                            dtype=np.int64),
                                   source.read(template, item, block))
                new.add(encoder)


def _block_runs(info: tuple[str, np.dtype | None, tuple[int, ...] | None]) -> int:
    """How many runs of an item to copy at a time: ``BLOCK_BYTES`` of fixed-size rows."""
    _, dtype, shape = info
    if dtype is None or shape is None:
        return 4096
    row = max(1, int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return max(1, BLOCK_BYTES // row)
