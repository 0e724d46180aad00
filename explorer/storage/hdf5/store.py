"""A trajectory in an HDF5 file, through PyTables. The layout is in ``docs/storage.md``."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tables

from ... import __version__
from ...errors import (
    FileFormatError,
    FileLockedError,
    TrajectoryExistsError,
    TrajectoryNotFoundError,
)
from ...naming import BRANCHES
from ...records import RunStatus
from ...results import LazyItem
from ...values import result_kind
from ..base import (
    RETURN_FIELDS,
    ResultRecord,
    RunTable,
    StoredTrajectory,
    TrajectoryChanges,
    TrajectoryStore,
    TreeRecord,
    with_records,
)
from ..lockfile import claimed
from .appender import RunAppender
from .checksum import mark, verify
from .columns import VARIABLE_CHUNK_ROWS, ColumnIndex, append_column, append_nodes, append_packed
from .compaction import FRESH, compact, merge, trajectory_layers
from .damage import count, damaged, reported
from .encode import BatchEncoder, EncodeSettings
from .files import (
    CHUNK,
    absorbing,
    adding,
    generation,
    last_added,
    private_view,
    reading,
    release,
    writing,
    writing_now,
)
from .hdf5guard import check_chunks
from .layered import child_groups, every_node, last_node, state_group
from .nodes import attr, read_value, write_value
from .parts import RUN_ROW, EncodedBatch, NodesPart, PackedPart
from .runresults import StoredRunResults

__all__ = ["Hdf5Store", "SegmentWriter", "trajectory_names"]

_PARAMETER_BRANCHES = ("parameters", "derived_parameters", "config")
DEFAULT_COMPLIB = "blosc:lz4"
DEFAULT_COMPLEVEL = 5


def _set(node: tables.Node, **attrs: Any) -> None:
    """Set attributes of a group explorer reads (checked first, sealed at the commit)."""
    verify(node)
    for key, value in attrs.items():
        setattr(node._v_attrs, key, value)
    mark(node)


def _group(handle: tables.File, parent: str, name: str, **attrs: Any) -> tables.Group:
    path = f"{parent.rstrip('/')}/{name}"
    if path in handle:
        group = handle.get_node(path)
        verify(group)
        return group
    parent_node = handle.get_node(parent)
    verify(parent_node)
    group = handle.create_group(parent_node, name)
    _set(group, **attrs)
    mark(parent_node)
    return group


def _list_trajectories(handle: tables.File) -> None:
    """Record the file's trajectories on its root, so that one hidden by damage is missed."""
    names = sorted(group._v_name for group in handle.root._f_iter_nodes("Group")
                   if attr(group, "explorer_node") == "trajectory")
    _set(handle.root, trajectories=json.dumps(names))


def trajectory_names(filename: str) -> list[str]:
    """Names of the trajectories stored in ``filename``."""
    with reading(filename) as view, reported(filename, "the list of trajectories"):
        found: list[str] = []
        for handle in view.layers:
            verify(handle.root)
            here = []
            for group in handle.root._f_iter_nodes("Group"):
                verify(group)
                if attr(group, "explorer_node") == "trajectory":
                    here.append(group._v_name)
            listed = json.loads(attr(handle.root, "trajectories", "[]"))
            missing = sorted(set(listed) - set(here)) if isinstance(listed, list) else listed
            if missing:
                raise damaged(filename, "the list of trajectories",
                              f"trajectories {missing!r:.80} are listed on the root group of "
                              f"{handle.filename!r} but their groups are missing or not marked "
                              "as trajectories")
            found += [name for name in here if name not in found and
                      state_group(trajectory_layers(view.layers, name), f"/{name}") is not None]
        return found


class Hdf5Store(TrajectoryStore):
    """One trajectory in an HDF5 file.

    Parameters
    ----------
    filename : str
        The HDF5 file (created on first write).
    name : str
        The trajectory's group below the root.
    complib, complevel : str, int
        Compression of stacked and large datasets; ``complevel=0`` turns it off.
        The default, blosc:lz4 level 5, is chosen for its write speed (see
        ``bench_codec.py`` in ``benchmarks/README.md``).
    checksum : bool
        Whether datasets created from now on carry HDF5's Fletcher32 checksum
        (checked on every read, so damaged data is reported instead of returned).
    """

    def __init__(self, filename: str, name: str, *, complib: str = DEFAULT_COMPLIB,
                 complevel: int = DEFAULT_COMPLEVEL, checksum: bool = True):
        super().__init__(os.fspath(filename), name)
        self.settings = EncodeSettings(complib, complevel, checksum=checksum)
        self.filters = self.settings.filters()
        self.path = f"/{name}"
        self._indexes: dict[str, ColumnIndex] = {}
        self._source = StoredRunResults(self)
        self._uid: str | None = None
        self._generation = -1
        self._seen: tuple[str | None, int] | None = None  # see _check_unchanged

    # ------------------------------------------------------------------ basics
    def same_file(self, filename: str) -> bool:
        return os.path.realpath(filename) == os.path.realpath(self.filename)

    def _layers(self, view: Any) -> list[tables.File]:
        """The layers of ``view`` that hold this trajectory (from its last fresh start)."""
        return trajectory_layers(view.layers, self.name)

    def _state(self, layers: Sequence[tables.File]) -> tables.Group:
        group = state_group(layers, self.path)
        if group is None:
            raise TrajectoryNotFoundError(f"{self.filename!r} holds no trajectory named "
                                          f"{self.name!r}")
        return group

    def exists(self) -> bool:
        if not os.path.exists(self.filename):
            return False
        with reading(self.filename) as view, reported(self.filename, self._what):
            return state_group(self._layers(view), self.path) is not None

    def close(self) -> None:
        release(self.filename)

    @property
    def uid(self) -> str:
        """A name unique to this trajectory's creation (a replaced one gets another)."""
        if self._uid is None:
            with reading(self.filename) as view, reported(self.filename, self._what):
                self._uid = str(attr(self._state(self._layers(view)), "uid", "") or "legacy")
        return self._uid

    @property
    def _what(self) -> str:
        return f"trajectory {self.name!r}"

    def _template_path(self, template: str) -> str:
        return f"{self.path}/{template.replace('.', '/')}"

    @property
    def allow_pickle(self) -> bool:
        """Whether pickled objects may be written and read."""
        return self.settings.allow_pickle

    @allow_pickle.setter
    def allow_pickle(self, allowed: bool) -> None:
        self.settings = dataclasses.replace(self.settings, allow_pickle=bool(allowed))

    def _invalidate(self) -> None:
        self._indexes.clear()

    def column_index(self, layers: Sequence[tables.File], path: str) -> ColumnIndex | None:
        """The (cached) index of the column at ``path``, or ``None`` if no layer has it."""
        current = generation(self.filename)
        if current != self._generation:
            self._indexes.clear()
            self._generation = current
        index = self._indexes.get(path)
        if index is None:
            parts = every_node(layers, path)
            if not parts:
                return None
            n_runs = attr(self._state(layers), "n_runs")
            limit = n_runs if type(n_runs) is int and n_runs > 0 else None
            index = self._indexes[path] = ColumnIndex(parts, limit)
        return index

    def compact(self, added: int | None = None) -> None:
        """Merge the file's layers as due (see :mod:`.compaction`); ``added``: the bytes
        of a writer whose work ends here (by default, the last write's)."""
        added = last_added(self.filename) if added is None else added
        with claimed(self.filename, "explorer compacting the file"), \
                reported(self.filename, "merging its segments"):
            while compact(self.filename, added=added):  # a merge may fill the next level
                added = 0
        self._invalidate()

    # ---------------------------------------------------------------- creating
    def create(self, comment: str, allow_pickle: bool, *, overwrite: bool,
               copy_from: TrajectoryStore | None = None) -> None:
        with claimed(self.filename, "explorer creating a trajectory"):  # check + replace
            self._create(comment, allow_pickle, overwrite, copy_from)
        self.compact()

    def _create(self, comment: str, allow_pickle: bool, overwrite: bool,
                copy_from: TrajectoryStore | None) -> None:
        self.allow_pickle = allow_pickle
        fresh = False
        if self.exists():
            if not overwrite and not self.is_unused():
                raise TrajectoryExistsError(
                    f"{self.filename!r} already holds a trajectory named {self.name!r}; "
                    "pass overwrite_file=True to replace it, or load it with "
                    "ex.load_trajectory / ex.Environment.resume")
            fresh = True  # what the file held of it is ignored from now on
        foreign = copy_from is not None and copy_from.exists() and \
            not isinstance(copy_from, Hdf5Store)
        self._uid = None
        with writing(self.filename) as handle, \
                reported(self.filename, f"{self._what}: creating it"):
            if copy_from is not None and copy_from.exists() and not foreign:
                with private_view(copy_from.filename) as source:
                    merge(handle, trajectory_layers(source.layers, copy_from.name),
                          keep_fresh=False, only=copy_from.name, rename=self.name)
                group = handle.get_node(self.path)
            else:
                group = self.create_skeleton(handle)
                _set(group, comment=comment)
                for branch in BRANCHES:
                    _group(handle, self.path, branch, explorer_node="group", comment="")
            if fresh:
                _set(group, **{FRESH: 1})
            created = self._stored_state(group)
        self._seen = created  # committed
        self._invalidate()
        if foreign:
            assert copy_from is not None
            self._copy_through_interface(copy_from, allow_pickle)

    def _copy_through_interface(self, source: TrajectoryStore, allow_pickle: bool) -> None:
        """Copy what another back end's store holds, read through the interface (in
        two commits: the trajectory, then its runs)."""
        stored = source.read("all", allow_pickle)
        groups = dict(stored.result_groups)
        results = [ResultRecord(record.full_name, record.comment, record.items,
                                [(name, comment) for name, comment in groups.items()
                                 if record.full_name.startswith(f"{name}.")])
                   for record in stored.results]
        n_runs = len(next(iter(stored.exploration.values()))) if stored.exploration else 1
        self.write(TrajectoryChanges(stored.comment, n_runs, stored.tree, {},
                                     list(stored.exploration), stored.exploration, 0, results,
                                     []), lambda: None)
        table = source.run_table()
        encoder = self.settings.encoder()
        for idx, status, started, duration in zip(table.idx.tolist(), table.status.tolist(),
                                                  table.started.tolist(),
                                                  table.duration.tolist()):
            encoder.add_row(idx, status, started, duration)
        runs = table.idx.tolist()
        for idx, value in source.return_values(runs).items():
            encoder.add_return(idx, value)
        for idx, (error, traceback) in source.run_failures(runs).items():
            encoder.add_failure(idx, error, traceback)
        results_source = source.run_results()
        for template, comment in results_source.templates().items():
            for item in results_source.items(template):
                for idx in results_source.runs(template, item):
                    encoder.add_items(template, comment, int(idx),
                                      {item: results_source.get(template, item, int(idx))})
        self.append_batch(encoder.finish())
        for session in source.sessions():
            self.add_session(session)

    def is_unused(self) -> bool:
        """Whether the stored trajectory holds nothing to keep: no parameters, results,
        exploration, runs or config but an Environment's seed (a process stopped right
        after creating it), so that starting it afresh loses nothing."""
        with reading(self.filename) as view, reported(self.filename, self._what):
            layers = self._layers(view)
            group = self._state(layers)
            empty = True
            for branch in ("parameters", "derived_parameters"):
                node = last_node(layers, f"{self.path}/{branch}")
                empty = empty and (node is None or not node._v_nchildren)
            empty = empty and all(not node._v_nchildren
                                  for node in every_node(layers, f"{self.path}/results"))
            config = last_node(layers, f"{self.path}/config")
            if config is not None:  # nothing but the seed an Environment stores first
                root = config._v_pathname
                leaves = [node._v_pathname[len(root) + 1:] for node in config._f_walknodes("Leaf")]
                empty = empty and leaves in ([], ["environment/seed"])
            return empty and int(attr(group, "explored_runs", 0) or 0) == 0 and \
                all(node.nrows == 0 for node in every_node(layers, f"{self.path}/runs"))

    # ----------------------------------------------------------------- writing
    def _own_group(self, handle: tables.File, state: tables.Group | None) -> tables.Group:
        """The trajectory's group in the layer being written, holding its state."""
        if self.path in handle:
            group = handle.get_node(self.path)
        else:
            group = handle.create_group("/", self.name)
            group._v_attrs.explorer_node = "trajectory"
            _list_trajectories(handle)
        if state is not None and state is not group:
            for key in state._v_attrs._f_list("user"):
                if key not in ("crc", FRESH):
                    group._v_attrs[key] = state._v_attrs[key]
        mark(group)
        return group

    def write(self, changes: TrajectoryChanges, stored: Callable[[], None],
              dropped: Callable[[], None] = lambda: None) -> None:
        """Write ``changes`` (see :class:`~explorer.storage.base.TrajectoryChanges`)."""
        with writing(self.filename) as handle, reading(self.filename) as view, \
                reported(self.filename, f"{self._what}: storing it"):
            state = self._state(self._layers(view))
            self._check_unchanged(state, changes)
            group = self._own_group(handle, state)
            _set(group, comment=changes.comment)
            if changes.tree is not None:
                self._write_tree(handle, changes)
                _set(group, tree_stamp=uuid.uuid4().hex)
            self._write_exploration(handle, group, changes)
            _set(group, n_runs=max(changes.n_runs, int(attr(group, "explored_runs", 0))))
            # what this copy now knows of the file (not what others added meanwhile)
            stamp = self._stored_state(group)[0] \
                if changes.tree is not None or self._seen is None else self._seen[0]
            seen = stamp, changes.n_runs if changes.explored else 0
            for result in changes.results:
                self._write_result(handle, result)
            if changes.run_items:  # results only, no run rows
                encoder = BatchEncoder(self.settings)
                for template, comment, idx, items in changes.run_items:
                    encoder.add_items(template, comment, idx, items)
                self.write_batch(handle, encoder.finish())
        self._invalidate()
        before = self._seen

        def committed() -> None:
            self._seen = seen
            stored()

        def taken_back() -> None:
            self._seen = before
            dropped()

        transaction = absorbing(self.filename)
        if transaction is not None:  # committed with the transaction, later
            self._seen = seen
            transaction.when_done(committed, taken_back)
            return
        committed()
        self._compact_after_write()

    def _compact_after_write(self) -> None:
        """Merge layers as due, unless a write of this process is still open."""
        if not writing_now(self.filename):
            self.compact()

    @staticmethod
    def _stored_state(group: tables.Group) -> tuple[str | None, int]:
        """What another writer changes when it stores the trajectory: the stamp of its
        parameter tree and the number of explored runs."""
        return attr(group, "tree_stamp", None), int(attr(group, "explored_runs", 0) or 0)

    def _check_unchanged(self, group: tables.Group, changes: TrajectoryChanges) -> None:
        """Refuse to store over what another writer stored since this store last looked."""
        if self._seen is None:
            return
        stamp, explored = self._stored_state(group)
        changed = []
        if changes.tree is not None and stamp != self._seen[0]:
            changed.append("its parameters")
        if explored != self._seen[1] and changes.n_runs > self._seen[1]:
            changed.append(f"its exploration ({explored} runs now, {self._seen[1]} then)")
        if changed:
            raise FileLockedError(
                f"{self.filename!r}: trajectory {self.name!r} was changed by another writer "
                f"since it was loaded here ({' and '.join(changed)}); storing this copy would "
                "overwrite those changes, so nothing was stored. Load it again with "
                "ex.load_trajectory and repeat the changes")

    def _write_tree(self, handle: tables.File, changes: TrajectoryChanges) -> None:
        """Write the parameter branches whole (readers take the latest layer's)."""
        group = handle.get_node(self.path)
        for branch in _PARAMETER_BRANCHES:
            if f"{self.path}/{branch}" in handle:  # written earlier in this transaction
                handle.remove_node(f"{self.path}/{branch}", recursive=True)
                mark(group)
            _group(handle, self.path, branch, explorer_node="group",
                   comment=changes.branch_comments.get(branch, ""))
        for record in changes.tree or []:
            segments = record.full_name.split(".")
            parent = f"{self.path}/" + "/".join(segments[:-1])
            if record.kind is None:
                _group(handle, parent, segments[-1], explorer_node="group",
                       comment=record.comment)
            else:
                write_value(handle.get_node(parent), segments[-1], record.value, record.kind,
                            self.filters, comment=record.comment)

    def _write_exploration(self, handle: tables.File, group: tables.Group,
                           changes: TrajectoryChanges) -> None:
        """Add the explored points not stored yet (``group`` holds the stored state)."""
        names = changes.explored
        if not names:
            return
        stored_names = json.loads(attr(group, "explored", "[]"))
        if stored_names and stored_names != names:
            raise FileFormatError(
                f"{self.filename!r}: trajectory {self.name!r} is stored explored over "
                f"{stored_names}, not {names}")
        start = max(int(attr(group, "explored_runs", 0)), changes.start)
        stop = changes.start + min(len(values) for values in changes.exploration.values())
        if stop <= start:
            return
        exploration = _group(handle, self.path, "exploration", explorer_node="exploration")
        runs = list(range(start, stop))
        for i, name in enumerate(names):
            values = changes.exploration[name][start - changes.start:stop - changes.start]
            append_column(exploration, f"p{i}", runs, values, filters=self.filters,
                          allow_pickle=self.allow_pickle, expected=stop)
        _set(group, explored=json.dumps(names), explored_runs=stop)

    def _write_result(self, handle: tables.File, result: ResultRecord) -> None:
        """Write one result outside runs, replacing one of the same name."""
        segments = result.full_name.split(".")
        comments = dict(result.groups)
        parent = self.path
        for depth, segment in enumerate(segments[:-1]):
            name = ".".join(segments[:depth + 1])
            _group(handle, parent, segment, explorer_node="group",
                   comment=comments.get(name, ""))
            parent = f"{parent}/{segment}"
        path = f"{parent}/{segments[-1]}"
        if path in handle:
            handle.remove_node(path, recursive=True)
        target = handle.create_group(parent, segments[-1])
        _set(target, explorer_node="result", comment=result.comment)
        mark(handle.get_node(parent))
        for item, value in result.items.items():
            write_value(target, item, value, result_kind(item, value, self.allow_pickle),
                        self.filters)

    def append_batch(self, batch: EncodedBatch) -> None:
        """Write an encoded batch of runs into the file (see :mod:`.encode`)."""
        with writing(self.filename) as handle, \
                reported(self.filename, f"{self._what}: storing runs"):
            self.write_batch(handle, batch)
        self._invalidate()
        self._compact_after_write()

    def add_segment(self, batch: EncodedBatch, chunk: str | None = None) -> None:
        """Write ``batch`` as a segment of its own, without the file's claim.

        Workers storing their runs themselves (``storage="lock"``) write in
        parallel this way: each segment is committed by its rename alone.
        ``chunk`` names the runs' chunk: a later segment of the same chunk (a
        rerun after its worker died) replaces this one (see :mod:`.files`).
        """
        with adding(self.filename) as handle, \
                reported(self.filename, f"{self._what}: storing runs"):
            if chunk is not None:
                handle.root._v_attrs[CHUNK] = chunk
            self.write_batch(handle, batch)

    def write_batch(self, handle: tables.File, batch: EncodedBatch) -> None:
        """Write ``batch`` into a layer being written of this store's file."""
        self._runs_group(handle)
        expected = 1000
        for (template, comment), items in batch.items.items():
            target = self._template_group(handle, template, comment)
            for item, parts in items.items():
                for part in parts:
                    if isinstance(part, PackedPart):
                        append_packed(target, item, part, filters=self.filters,
                                      allow_pickle=self.allow_pickle, expected=expected)
                    elif isinstance(part, NodesPart):
                        append_nodes(target, item, part, filters=self.filters,
                                     expected=expected)
                    else:
                        append_column(target, item, part.runs, part.values,
                                      filters=self.filters, allow_pickle=self.allow_pickle,
                                      expected=expected)
        if len(batch.run_rows):
            handle.get_node(f"{self.path}/runs").append(batch.run_rows)

    def _runs_group(self, handle: tables.File) -> tables.Group:
        """The trajectory's group and run table in a layer being written (made if missing)."""
        if self.path not in handle:
            group = handle.create_group("/", self.name)
            _set(group, explorer_node="trajectory")
            _list_trajectories(handle)
        group = handle.get_node(self.path)
        if f"{self.path}/runs" not in handle:
            handle.create_table(group, "runs", RUN_ROW, "status of each run",
                                filters=self.filters)
            mark(group)
        return group

    def _template_group(self, handle: tables.File, template: str, comment: str) -> tables.Group:
        parent = self.path
        for segment in template.split("."):
            _group(handle, parent, segment,
                   explorer_node="runs" if segment == "$" else "group",
                   comment=comment if segment == "$" else "")
            parent = f"{parent}/{segment}"
        return handle.get_node(parent)

    def create_skeleton(self, handle: tables.File) -> tables.Group:
        """Make the trajectory's group, holding its state, and its run table in ``handle``."""
        group = self._runs_group(handle)
        _set(group, explorer_node="trajectory", comment="", explorer_version=__version__,
             uid=uuid.uuid4().hex,
             allow_pickle=self.allow_pickle, n_runs=0, explored="[]", explored_runs=0,
             created=_dt.datetime.now().isoformat(timespec="seconds"))
        return group

    def write_session(self, handle: tables.File, session: dict[str, Any]) -> None:
        """Append one session record (JSON) to the trajectory's session log."""
        self._runs_group(handle)
        path = f"{self.path}/sessions"
        if path not in handle:
            mark(handle.get_node(self.path))  # a new child
        log = handle.get_node(path) if path in handle else handle.create_vlarray(
            self.path, "sessions", tables.VLStringAtom(), "one JSON record per env.run",
            chunkshape=(VARIABLE_CHUNK_ROWS,))
        log.append(json.dumps(session, default=str).encode("utf-8"))

    @property
    def encoding(self) -> EncodeSettings:
        """How runs' data is encoded for this file (its compression)."""
        return self.settings

    def appender(self, interval: float) -> RunAppender:
        """An appender of runs committing every ``interval`` seconds or more."""
        return RunAppender(self, interval)

    def batch_writer(self) -> SegmentWriter:
        """Writes a batch as a segment of the file, from a worker (``storage="lock"``)."""
        return SegmentWriter(self.filename, self.name, self.settings)

    def add_session(self, session: dict[str, Any]) -> None:
        """Commit one session record to the session log."""
        with writing(self.filename) as handle, \
                reported(self.filename, f"{self._what}: its sessions"):
            self.write_session(handle, session)
        self._compact_after_write()

    def sessions(self) -> list[dict[str, Any]]:
        """The session log: when, where and with what each exploration ran."""
        with reading(self.filename) as view, \
                reported(self.filename, f"{self._what}: its sessions"):
            logs = every_node(self._layers(view), f"{self.path}/sessions")
            return [json.loads(bytes(row).decode("utf-8")) for log in logs for row in log]

    # ----------------------------------------------------------------- reading
    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this store within the block sees one commit of the file.

        The reads share one view, whose files stay readable even when a
        compaction replaces them meanwhile (nothing is changed in place).
        """
        with reading(self.filename):
            yield

    def run_table(self) -> RunTable:
        with reading(self.filename) as view, \
                reported(self.filename, f"{self._what}: its run table"):
            blocks = []
            columns = RUN_ROW.names or ()
            for node in every_node(self._layers(view), f"{self.path}/runs"):
                if not isinstance(node, tables.Table) or not set(columns) <= set(node.coldtypes):
                    raise damaged(self.filename, f"{self._what}: its run table",
                                  f"expected a table with columns {', '.join(columns)}")
                check_chunks(node)
                blocks.append(node.read())
        table = np.concatenate(blocks) if blocks else np.zeros(0, dtype=RUN_ROW)
        order = np.argsort(table["idx"], kind="stable")
        table = table[order]
        last = np.ones(len(table), dtype=bool)
        last[:-1] = table["idx"][1:] != table["idx"][:-1]
        table = table[last]
        return RunTable(table["idx"], table["status"], table["started"], table["duration"])

    def return_values(self, runs: Iterable[int]) -> dict[int, Any]:
        wanted = list(runs)
        with self.snapshot():
            values = self._per_run_values("returns/value", wanted)
            fields = {key: self._per_run_values(f"{self._template_path(RETURN_FIELDS)}/{key}",
                                                wanted, absolute=True)
                      for key in self._source.items(RETURN_FIELDS)}
        return with_records(values, fields, wanted) if fields else values

    def run_failures(self, runs: Iterable[int]) -> dict[int, tuple[str, str]]:
        with self.snapshot():
            failed = set(self.run_table().with_status(RunStatus.FAILED).tolist())
            wanted = [idx for idx in runs if idx in failed]
            errors = self._per_run_values("errors/error", wanted)
            tracebacks = self._per_run_values("errors/traceback", wanted)
        return {idx: (errors[idx], tracebacks.get(idx) or "") for idx in wanted
                if idx in errors}

    def _per_run_values(self, column: str, runs: Iterable[int],
                        absolute: bool = False) -> dict[int, Any]:
        wanted = list(runs)
        path = column if absolute else f"{self.path}/{column}"
        with reading(self.filename) as view, \
                reported(self.filename, f"{self._what}: column {column!r}"):
            index = self.column_index(self._layers(view), path)
            if index is None:
                return {}
            scalars = index.scalars(python=True)
            if scalars is not None:
                stored = scalars[0].tolist()
                values = dict(zip(stored, scalars[1].tolist()))
                if stored == wanted:  # every stored run, in order: what env.run asks
                    return values
                return {idx: values[idx] for idx in wanted if idx in values}
            found = index.values(wanted, self.allow_pickle)
            return {idx: found[idx] for idx in wanted if idx in found}

    def run_results(self) -> StoredRunResults:
        return self._source

    def scalar_columns(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        found: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        with reading(self.filename) as view, \
                reported(self.filename, f"{self._what}: its per-run scalars"):
            layers = self._layers(view)
            for template in self._source.templates():
                for item in self._source.items(template):
                    path = f"{self._template_path(template)}/{item}"
                    index = self.column_index(layers, path)
                    scalars = index.scalars() if index is not None else None
                    if scalars is not None:
                        found[(template, item)] = scalars
        return found

    def read(self, load: str, allow_pickle: bool) -> StoredTrajectory:
        """The stored trajectory; results are lazy unless ``load="all"``."""
        if load not in ("lazy", "parameters", "all"):
            raise ValueError(f"load must be 'lazy', 'parameters' or 'all', got {load!r}")
        self.allow_pickle = allow_pickle
        with reading(self.filename) as view, reported(self.filename, self._what):
            layers = self._layers(view)
            group = state_group(layers, self.path)
            if group is None or attr(group, "explorer_node") != "trajectory":
                names = trajectory_names(self.filename)
                raise TrajectoryNotFoundError(
                    f"{self.filename!r} holds no trajectory named {self.name!r}; it holds: "
                    f"{', '.join(names) or 'none'}")
            verify(group)
            tree: list[TreeRecord] = []
            for branch in _PARAMETER_BRANCHES:
                tree += self._read_branch(layers, branch, allow_pickle)
            kinds = {record.full_name: record.kind for record in tree}
            exploration = self._read_exploration(layers, group, kinds)
            stored = StoredTrajectory(attr(group, "comment", ""), tree, exploration, [], [], {})
            if load != "parameters":
                self._read_results(every_node(layers, f"{self.path}/results"), stored, "results",
                                   eager=load == "all", allow_pickle=allow_pickle)
            self._seen = self._stored_state(group)
        return stored

    def _read_branch(self, layers: Sequence[tables.File], branch: str,
                     allow_pickle: bool) -> list[TreeRecord]:
        node = last_node(layers, f"{self.path}/{branch}")
        if node is None:
            node = last_node(layers, f"{self.path}/{branch}_new")  # an older version's swap
            if node is None:
                return []
        path = node._v_pathname
        verify(node)
        found = []
        for child in node._f_walknodes():
            if attr(child._v_parent, "explorer_node") != "group":
                continue  # a part of a value node, read with it
            name = f"{branch}.{child._v_pathname[len(path) + 1:].replace('/', '.')}"
            if attr(child, "kind") is None:  # a group, or damage that hides a node's kind
                verify(child, explorer=True)
            if attr(child, "explorer_node") == "group":
                found.append(TreeRecord(name, attr(child, "comment", "")))
            elif attr(child, "kind") is not None:
                value = read_value(child, allow_pickle)  # checked there
                found.append(TreeRecord(name, attr(child, "comment", ""), attr(child, "kind"),
                                        value))
        return found

    def _read_exploration(self, layers: Sequence[tables.File], group: tables.Group,
                          kinds: dict[str, str | None]) -> dict[str, list[Any]]:
        what = f"{self._what}: its exploration"
        names = json.loads(attr(group, "explored", "[]"))
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise damaged(self.filename, what, f"attribute 'explored' is {names!r:.80}, "
                          "not a list of parameter names")
        n_runs = count(self.filename, f"{what} (attribute 'explored_runs')",
                       attr(group, "explored_runs", 0))
        if not names:
            return {}
        for node in every_node(layers, f"{self.path}/exploration"):
            verify(node)
        ranges: dict[str, list[Any]] = {}
        for i, name in enumerate(names):
            index = self.column_index(layers, f"{self.path}/exploration/p{i}")
            stored = index.runs if index is not None else np.zeros(0, dtype=np.int64)
            if n_runs and (len(stored) < n_runs or stored[0] != 0
                           or stored[n_runs - 1] != n_runs - 1):
                raise damaged(self.filename, what,
                              f"{n_runs} explored runs, but the column of {name!r} holds values "
                              f"for {len(stored)} runs, not runs 0 to {n_runs - 1}")
            if index is None:
                ranges[name] = []
                continue
            scalars = index.scalars()
            if scalars is not None and len(scalars[0]) == n_runs:
                ranges[name] = list(scalars[1]) if kinds.get(name) == "npscalar" else \
                    scalars[1].tolist()
            else:
                found = index.values(range(n_runs), self.allow_pickle)
                ranges[name] = [found[idx] for idx in range(n_runs)]
        return ranges

    def _read_results(self, nodes: list[tables.Group], stored: StoredTrajectory, name: str,
                      eager: bool, allow_pickle: bool) -> None:
        for child_name, parts in child_groups(nodes).items():
            last = parts[-1]
            verify(last, explorer=True)
            child = f"{name}.{child_name}"
            role = attr(last, "explorer_node")
            if role == "group":
                stored.result_groups.append((child, attr(last, "comment", "")))
                self._read_results(parts, stored, child, eager, allow_pickle)
            elif role == "result":
                items = {}
                for leaf in last._f_iter_nodes():
                    loader = _ItemLoader(self, leaf._v_pathname, allow_pickle)
                    items[leaf._v_name] = loader() if eager else \
                        LazyItem(loader, f"{child}.{leaf._v_name} in {self.filename}")
                stored.results.append(ResultRecord(child, attr(last, "comment", ""), items))
            elif role == "runs":
                self._register_templates(parts, f"{name}.$", stored)

    def _register_templates(self, groups: list[tables.Group], template: str,
                            stored: StoredTrajectory) -> None:
        comment = attr(groups[-1], "comment", "")
        has_columns = False
        for child_name, parts in child_groups(groups).items():
            verify(parts[-1], explorer=True)
            if attr(parts[-1], "explorer_node") == "column":
                has_columns = True
            else:
                self._register_templates(parts, f"{template}.{child_name}", stored)
        if has_columns:
            stored.templates[template] = comment


class _ItemLoader:
    """Reads one stored item by path, from the latest layer of the file holding it."""

    def __init__(self, store: Hdf5Store, path: str, allow_pickle: bool):
        self.store, self.path, self.allow_pickle = store, path, allow_pickle

    def __call__(self) -> Any:
        filename = self.store.filename
        with reading(filename) as view, reported(filename, f"item {self.path!r}"):
            node = last_node(self.store._layers(view), self.path)
            if node is None:
                raise KeyError(self.path)
            return read_value(node, self.allow_pickle)


class SegmentWriter:
    """Writes batches from a worker, each as a segment of the file (``storage="lock"``).

    Workers write in parallel: a segment is written under a temporary name and
    committed by its rename (see :mod:`.files`), so a worker killed mid-write
    leaves nothing half-written and holds no one up. The environment's commits
    merge segments when due. Picklable: it is sent to the workers.

    Parameters
    ----------
    filename, name : str
        The file and the trajectory.
    settings : EncodeSettings
        Compression settings of the file.
    """

    def __init__(self, filename: str, name: str, settings: EncodeSettings):
        self.filename = filename
        self.name = name
        self.settings = settings

    def __call__(self, batch: EncodedBatch, name: str | None = None) -> None:
        """Write ``batch``; ``name`` is its chunk's (a rerun of the chunk replaces it)."""
        store = Hdf5Store(self.filename, self.name, complib=self.settings.complib,
                          complevel=self.settings.complevel)
        store.allow_pickle = self.settings.allow_pickle
        store.add_segment(batch, name)
