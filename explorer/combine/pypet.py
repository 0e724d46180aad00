"""Importing the trajectories of a pypet file into a new explorer file.

pypet's layout is read by the HDF5 back end's reader of pypet files
(:func:`explorer.storage.base.reader`; PyTables alone, nothing unpickled unless
asked); this module maps it to explorer's trajectory and writes it through the
store interface (:mod:`.building`): parameters, derived parameters and config
with their comments, the exploration, results outside runs, per-run results as
stacked columns, and the run table.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidNameError, UnsafeDataError, UnsupportedTypeError
from ..naming import split_name
from ..provenance import collect, now
from ..records import RunStatus
from ..storage.base import ResultRecord, TrajectoryChanges, TreeRecord, reader
from ..values import parameter_kind, result_kind
from .building import NewTrajectory, new_file, refuse_existing

__all__ = ["BLOCK_BYTES", "PypetImportWarning", "import_pypet"]

#: Per-run items are read and written this many bytes of runs at a time, at most.
BLOCK_BYTES = 64 * 2**20
_RUN_SET = re.compile(r"^run_set_\d+$")
#: Where per-run derived parameters go when their own name is a result's already.
_DERIVED_PREFIX = "derived_parameters"


class PypetImportWarning(UserWarning):
    """Something of a pypet file that explorer has no equivalent for (the message lists it)."""


@dataclass
class _Column:
    """The per-run leaves of one template: ``(run index, leaf)`` pairs, and where from."""

    template: str
    comment: str
    leaves: list[tuple[int, Any]] = field(default_factory=list)
    item: str | None = None  # a per-run parameter's item name (its leaves hold one value)
    source: str = ""  # the pypet name with ``$`` (for notes)


@dataclass
class _Notes:
    """What one trajectory's import could not keep as it was, for its comment and the warning."""

    missing: list[str] = field(default_factory=list)  # no equivalent
    pickled: list[str] = field(default_factory=list)  # left out: pickles, allow_pickle off
    moved: list[str] = field(default_factory=list)  # kept under another name

    def lines(self) -> list[str]:
        out = []
        if self.missing:
            out += ["Not imported (no equivalent in explorer):", *[f"- {x}" for x in self.missing]]
        if self.pickled:
            out += ["Left out (stored pickled; import again with allow_pickle=True to keep):",
                    *[f"- {x}" for x in self.pickled]]
        if self.moved:
            out += ["Imported under another name:", *[f"- {x}" for x in self.moved]]
        return out


def import_pypet(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 allow_pickle: bool = False) -> list[str]:
    """Import every trajectory of a pypet (0.6-0.7) HDF5 file into a new explorer file.

    pypet is not needed: the file is read with PyTables. Parameters, derived
    parameters and config keep their names and comments; explored parameters
    become the exploration (``ArrayParameter`` ranges as numpy arrays,
    ``SparseParameter`` values as ``scipy.sparse`` matrices); results outside
    runs become results; per-run results (``results.neuron.run_00000007``)
    become per-run items of the template ``results.neuron.$``; run status
    (completed, else pending), start and duration come from pypet's run table.
    pypet stores no return values, so the runs have none. A session record
    says which file the trajectory was imported from.

    Per-run derived parameters (``derived_parameters.runinfo.run_00000003.steps``)
    have no per-run place among explorer's parameters: they become per-run
    results of the same name (``results.runinfo.$`` item ``steps``), or under
    ``results.derived_parameters.`` if a result has that name already.

    What explorer has no equivalent for (links, annotations, Brian2 quantities,
    nested or shared data, unknown nodes) is not imported: it is listed in one
    :class:`PypetImportWarning` and in the trajectory's comment, as are the
    per-run derived parameters' new names.

    Pickled items (``PickleParameter``, ``PickleResult``, DataFrames with object
    columns, which pandas stores pickled) are read only with ``allow_pickle=True``,
    since unpickling runs code from the file; the trajectories are then made
    with ``allow_pickle=True``. Without it, everything else is imported and
    written, the pickled items are listed in the comment, and then
    :class:`~explorer.errors.UnsafeDataError` names them (``dst`` is complete
    without them; its ``imported`` attribute holds the trajectory names).

    Parameters
    ----------
    src : str or path
        The pypet file (only read).
    dst : str or path
        The new explorer file; it must not exist.
    allow_pickle : bool
        Unpickle pickled items (only for a file you trust).

    Returns
    -------
    list of str
        The names of the imported trajectories.

    Raises
    ------
    OutputExistsError
        ``dst`` exists (checked first: nothing is read or written).
    FileFormatError
        ``src`` is missing, not an HDF5 file, an explorer file, or holds no
        pypet trajectory; nothing is written.
    UnsafeDataError
        Pickled items were left out because ``allow_pickle`` is off (after
        ``dst`` was written with everything else).
    """
    src, dst = os.fspath(src), os.fspath(dst)
    refuse_existing(dst)
    layout_module = reader("pypet")  # imports PyTables: when a file is imported, not before
    notes: dict[str, _Notes] = {}
    with layout_module.PypetFile(src) as source:
        names = list(source.names)
        with new_file(dst) as path:
            for name in names:
                notes[name] = _import_one(source, name, path, src, allow_pickle)
    _report(src, dst, names, notes)
    return names


def _report(src: str, dst: str, names: list[str], notes: dict[str, _Notes]) -> None:
    """One warning for what has no equivalent; then UnsafeDataError for pickles left out."""
    listed = [f"trajectory {name!r}:\n  " + "\n  ".join(notes[name].lines())
              for name in names if notes[name].missing or notes[name].moved]
    if listed:
        warnings.warn(
            f"import_pypet({src!r} -> {dst!r}): what explorer has no equivalent for was not "
            "imported, and some items were imported under other names (also written in each "
            "trajectory's comment):\n" + "\n".join(listed), PypetImportWarning, stacklevel=3)
    pickled = [f"{name}: {item}" for name in names for item in notes[name].pickled]
    if pickled:
        error = UnsafeDataError(
            f"{src!r} holds pickled items, left out because reading them runs code from the "
            f"file: {'; '.join(pickled)}. Everything else was imported into {dst!r}. To import "
            f"them too (only from a file you trust), remove {dst!r} and call "
            "import_pypet(..., allow_pickle=True).")
        error.imported = names  # type: ignore[attr-defined]
        raise error


# ------------------------------------------------------------------- one trajectory
def _import_one(source: Any, name: str, path: str, src: str, allow_pickle: bool) -> _Notes:
    """Read trajectory ``name`` of ``source`` and write it into the new file at ``path``."""
    layout = source.layout(name)
    notes = _Notes()
    _note_layout(layout, notes)
    tree, exploration, explored = _parameters(source, layout, allow_pickle, notes)
    results, columns = _results(source, layout, allow_pickle, notes)
    n_runs = len(next(iter(exploration.values()))) if exploration else max(layout.n_runs, 1)
    with NewTrajectory(path, name, layout.comment, allow_pickle=allow_pickle) as new:
        with_items = _write_columns(new, source, columns, allow_pickle, notes)
        completed = _write_runs(new, layout, n_runs, with_items)
        comment = layout.comment
        if notes.lines():
            comment = "\n\n".join(part for part in (
                comment, f"Imported from the pypet file {os.path.abspath(src)!r}.\n" +
                "\n".join(notes.lines())) if part)
        branch_comments = {branch: layout.groups.get(branch, "")
                           for branch in ("parameters", "derived_parameters", "config")}
        new.write(TrajectoryChanges(comment, n_runs, tree, branch_comments, explored,
                                    exploration, 0, results, []))
        new.add_session({**collect(), "end": now(), "runs": completed,
                         "imported_from": {"file": os.path.abspath(src), "format": "pypet",
                                           "trajectory": name,
                                           "pypet_version": layout.info.get("version"),
                                           "python": layout.info.get("python"),
                                           "created": layout.info.get("time")}})
    return notes


def _note_layout(layout: Any, notes: _Notes) -> None:
    """Links, annotations and unknown nodes: no equivalent in explorer."""
    for link, target in layout.links:
        notes.missing.append(f"link {link} -> {target}")
    seen: set[tuple[str, str]] = set()
    for node, notes_of_node in layout.annotations:
        where = _generic(node)
        text = ", ".join(f"{key}={value!r}" for key, value in notes_of_node.items())
        if (where, text) not in seen:
            seen.add((where, text))
            notes.missing.append(f"annotations of {where}: {text}")
    for node in layout.unknown:
        notes.missing.append(f"{node}: not a pypet group, leaf or link")


def _generic(name: str) -> str:
    """A dotted name with its run segment (and pypet's run-set segment) made ``$``."""
    return ".".join("$" if segment.startswith("run_") and segment[4:].isdigit() else segment
                    for segment in _without_run_sets(name.split(".")))


def _without_run_sets(segments: list[str]) -> list[str]:
    """Segments without pypet's ``run_set_00000`` groups (``$set``) above a run segment."""
    return [segment for i, segment in enumerate(segments)
            if not (_RUN_SET.match(segment) and i + 1 < len(segments)
                    and _run_position([segments[i + 1]]) == 0)]


def _run_position(segments: list[str]) -> int | None:
    for i, segment in enumerate(segments):
        if segment.startswith("run_") and segment[4:].isdigit() and len(segment) >= 12:
            return i
    return None


def _valid(name: str, notes: _Notes, what: str) -> bool:
    """Whether explorer accepts ``name`` (a ``$`` segment allowed); noted if not."""
    try:
        split_name(name, allow_wildcard=True)
    except InvalidNameError:
        notes.missing.append(f"{what}: its name is not valid in explorer (each segment must "
                             "be a Python identifier not starting with '_')")
        return False
    return True


# ------------------------------------------------------------------- parameters
def _parameters(source: Any, layout: Any, allow_pickle: bool,
                notes: _Notes) -> tuple[list[TreeRecord], dict[str, list[Any]], list[str]]:
    """The parameter branches' tree records, and the exploration, read from ``source``."""
    records: dict[str, TreeRecord] = {}
    ranges: dict[str, list[Any]] = {}
    for leaf in layout.leaves:
        branch = leaf.name.split(".", 1)[0]
        if branch == "results" or _run_position(leaf.name.split(".")) is not None:
            continue
        if not _valid(leaf.name, notes, leaf.name):
            continue
        default, explored, skipped = source.parameter(leaf, allow_pickle)
        if skipped is not None:
            _note_skipped(leaf.name, {"": skipped}, notes)
            continue
        try:
            kind = parameter_kind(leaf.name, default, allow_pickle)
        except UnsupportedTypeError as problem:
            notes.missing.append(f"{leaf.name}: {problem}")
            continue
        for group in _ancestors(leaf.name):
            if group not in records:
                records[group] = TreeRecord(group, layout.groups.get(group, ""))
        records[leaf.name] = TreeRecord(leaf.name, leaf.comment, kind, default)
        if explored is not None:
            ranges[leaf.name] = explored
    for group in layout.groups:  # empty groups are kept too
        if group.split(".", 1)[0] != "results" and "." in group and group not in records and \
                _run_position(group.split(".")) is None and \
                not any(leaf.name.startswith(f"{group}.") for leaf in layout.leaves) and \
                _valid(group, notes, group):
            for parent in [*_ancestors(group), group]:
                records.setdefault(parent, TreeRecord(parent, layout.groups.get(parent, "")))
    order = [name for name in layout.explored if name in ranges] + \
        [name for name in ranges if name not in layout.explored]
    tree = sorted(records.values(), key=lambda record: record.full_name.split("."))
    return tree, {name: ranges[name] for name in order}, order


def _ancestors(name: str) -> list[str]:
    """Dotted names of the groups above ``name`` below its branch, outermost first."""
    segments = name.split(".")
    return [".".join(segments[:depth]) for depth in range(2, len(segments))]


# ---------------------------------------------------------------------- results
def _results(source: Any, layout: Any, allow_pickle: bool,
             notes: _Notes) -> tuple[list[ResultRecord], list[_Column]]:
    """Results outside runs (read now) and the per-run columns (read when written)."""
    results: list[ResultRecord] = []
    columns: dict[str, _Column] = {}  # by the pypet name with ``$``
    invalid: set[str] = set()
    derived: list[tuple[int, Any, list[str], str]] = []
    for leaf in layout.leaves:
        segments = _without_run_sets(leaf.name.split("."))
        at = _run_position(segments)
        if at is None:
            if segments[0] == "results" and _valid(leaf.name, notes, leaf.name):
                results.append(_result(source, leaf, layout, allow_pickle, notes))
            continue
        idx = int(segments[at][4:])
        generic = ".".join([*segments[:at], "$", *segments[at + 1:]])
        if segments[0] != "results":  # a per-run derived parameter (or config)
            derived.append((idx, leaf, segments, generic))
        elif generic in columns:
            columns[generic].leaves.append((idx, leaf))
        elif generic not in invalid:
            if _valid(generic, notes, generic):
                columns[generic] = _Column(generic, leaf.comment, [(idx, leaf)], source=generic)
            else:
                invalid.add(generic)
    taken = set(columns) | {record.full_name for record in results}
    for idx, leaf, segments, generic in derived:  # per-run results of the same name
        if generic in columns:
            columns[generic].leaves.append((idx, leaf))
            continue
        if generic in invalid:
            continue
        inner = segments[1:]
        at = _run_position(inner)
        assert at is not None
        item = inner[-1] if at < len(inner) - 1 else "value"
        place = [*inner[:at], "$", *inner[at + 1:-1]] if at < len(inner) - 1 else \
            [*inner[:at], "$"]
        template = "results." + ".".join(place)
        if template in taken:
            template = f"results.{_DERIVED_PREFIX}." + ".".join(place)
        if not _valid(f"{template}.{item}", notes, generic):
            invalid.add(generic)
            continue
        columns[generic] = _Column(template, leaf.comment, [(idx, leaf)], item=item,
                                   source=generic)
        notes.moved.append(f"{generic} (a per-run derived parameter) -> per-run result "
                           f"{template}, item {item!r}")
    return results, list(columns.values())


def _result(source: Any, leaf: Any, layout: Any, allow_pickle: bool,
            notes: _Notes) -> ResultRecord:
    """A result outside runs, its unreadable items noted."""
    items, skipped = source.items(leaf, allow_pickle)
    _note_skipped(leaf.name, skipped, notes)
    kept = {}
    for item, value in items.items():
        if _valid(f"{leaf.name}.{item}", notes, f"{leaf.name}.{item}"):
            try:
                result_kind(f"{leaf.name}.{item}", value, allow_pickle)
            except UnsupportedTypeError as problem:
                notes.missing.append(f"{leaf.name}.{item}: {problem}")
                continue
            kept[item] = value
    groups = [(group, layout.groups.get(group, ""))
              for group in ["results", *_ancestors(leaf.name)]]
    return ResultRecord(leaf.name, leaf.comment, kept, groups)


def _note_skipped(where: str, skipped: dict[str, Any], notes: _Notes) -> None:
    """Note the items of ``where`` not read (``""``: all of it), by why."""
    for item, why in skipped.items():
        what = f"{where}.{item}" if item else where
        if why.pickled:
            notes.pickled.append(f"{what}: {why.reason}")
        else:
            notes.missing.append(f"{what}: {why.reason}")


# ------------------------------------------------------------------- per-run data
def _write_columns(new: NewTrajectory, source: Any, columns: list[_Column],
                   allow_pickle: bool, notes: _Notes) -> set[int]:
    """Read and write every per-run column, a block of runs at a time; the runs with items."""
    with_items: set[int] = set()
    for column in columns:
        column.leaves.sort(key=lambda pair: pair[0])
        refused: dict[str, Any] = {}  # item: why (a Skipped, or a str)
        values: dict[str, tuple[list[int], list[Any]]] = {}
        size = 0
        for idx, leaf in column.leaves:
            items, skipped = source.items(leaf, allow_pickle)
            for item, why in skipped.items():
                refused.setdefault(column.item or item, why)
            for item, value in items.items():
                item = column.item or item
                if item not in refused:
                    runs, stack = values.setdefault(item, ([], []))
                    runs.append(idx)
                    stack.append(value)
                    size += getattr(value, "nbytes", 64)
            with_items.add(idx)
            if size >= BLOCK_BYTES:
                _flush(new, column, values, refused, allow_pickle)
                values, size = {}, 0
        _flush(new, column, values, refused, allow_pickle)
        for item, why in refused.items():
            what = column.source if column.item is not None else f"{column.source}.{item}"
            if isinstance(why, str):
                notes.missing.append(f"{what}: {why}")
            else:
                _note_skipped(what, {"": why}, notes)
    return with_items


def _flush(new: NewTrajectory, column: _Column, values: dict[str, tuple[list[int], list[Any]]],
           refused: dict[str, Any], allow_pickle: bool) -> None:
    """Encode the collected runs of each item of ``column`` as stacks and write them."""
    encoder = new.encoder()
    added = False
    for item, (runs, stack) in values.items():
        if item in refused:
            continue
        try:
            split_name(item)
            result_kind(f"{column.template}.{item}", stack[0], allow_pickle)
        except (InvalidNameError, UnsupportedTypeError) as problem:
            refused[item] = str(problem)
            continue
        encoder.add_column(column.template, column.comment, item, np.asarray(runs),
                           _stacked(stack))
        added = True
    if added:
        new.add(encoder)


def _stacked(values: list[Any]) -> np.ndarray | list[Any]:
    """Runs' values as one array when they are arrays of one shape and dtype, or numbers
    of one type; as the list otherwise."""
    first = values[0]
    if isinstance(first, np.ndarray) and first.dtype.kind in "biufc":
        if all(isinstance(value, np.ndarray) and value.shape == first.shape and
               value.dtype == first.dtype for value in values):
            return np.stack(values)
    elif type(first) in (int, float, bool, complex) and \
            all(type(value) is type(first) for value in values):
        try:
            return np.asarray(values)
        except OverflowError:  # ints beyond 64 bits
            return values
    return values


def _write_runs(new: NewTrajectory, layout: Any, n_runs: int, with_items: set[int]) -> int:
    """The run table: pypet's completed runs (with start and duration); the number of them."""
    encoder = new.encoder()
    count = 0
    runs = layout.runs
    rows: Iterable[tuple[int, bool, float, float]]
    if runs is not None:
        rows = zip(runs.idx.tolist(), runs.completed.tolist(), runs.started.tolist(),
                   runs.duration.tolist())
    else:  # no run table: a run with per-run items completed
        rows = ((idx, True, float("nan"), float("nan")) for idx in sorted(with_items))
    for idx, completed, started, duration in rows:
        if completed and 0 <= idx < n_runs:
            encoder.add_row(idx, int(RunStatus.COMPLETED), started, duration)
            count += 1
    if count:
        new.add(encoder)
    return count

