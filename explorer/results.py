"""Results: named items, some of them lazy handles into a file.

Two shapes of result live in a trajectory:

* a :class:`Result` node, added outside runs (``summary.firing_rates``), holds its
  items itself, each either a value or a :class:`LazyItem` read on first access;
* per-run results (names with ``$``, such as ``neuron.$``) are not nodes: their
  values sit in a :class:`RunResultSource` (a file's stacked columns or memory),
  and :class:`RunNode` is the light view that ``traj.res.neuron.run_00000013``
  or ``traj.res.neuron.crun`` gives.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from .errors import NodeNotFoundError
from .naming import run_index, run_name
from .tree import Node

__all__ = ["LazyItem", "Result", "RunResultSource", "MemoryRunResults", "RunNode", "RunItem",
           "RunItems", "ItemInfo", "value_info", "stack_values"]


class LazyItem:
    """A handle that reads one stored item when first asked."""

    __slots__ = ("_loader", "description")

    def __init__(self, loader: Callable[[], Any], description: str = ""):
        self._loader = loader
        self.description = description

    def load(self) -> Any:
        """Read the item and return its value."""
        return self._loader()

    def __repr__(self) -> str:
        return f"<not loaded: {self.description}>"


class _ItemAccess:
    """Attribute and ``[]`` access to the items of a result-like object."""

    def _child(self, item: str) -> Any:
        raise NotImplementedError

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_"):
            raise AttributeError(item)
        return self._child(item)

    def __getitem__(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        value = self._child(head)
        return value[rest] if rest else value

    def _natural(self) -> Any:
        return self


class Result(_ItemAccess, Node):
    """A named bundle of items (arrays, frames, scalars...) with a comment.

    ``result.V`` or ``result["V"]`` gives an item, reading it from the file on first
    access when the trajectory was loaded lazily.
    """

    __slots__ = ("_items", "stored")

    def __init__(self, full_name: str, items: dict[str, Any], comment: str = ""):
        Node.__init__(self, full_name, comment)
        self._items = dict(items)
        self.stored = False

    def keys(self) -> list[str]:
        """Names of the items."""
        return list(self._items)

    def is_loaded(self, item: str) -> bool:
        """Whether ``item`` is in memory (not a lazy handle)."""
        return not isinstance(self._items[item], LazyItem)

    def to_dict(self) -> dict[str, Any]:
        """All items as a dict, reading lazy ones."""
        return {name: self._child(name) for name in self._items}

    def _raw_items(self) -> dict[str, Any]:
        return self._items

    def _child(self, item: str) -> Any:
        try:
            value = self._items[item]
        except KeyError:
            raise NodeNotFoundError(
                f"result {self.full_name!r} has no item {item!r}; it has: "
                f"{', '.join(self._items) or 'nothing'}") from None
        if isinstance(value, LazyItem):
            value = value.load()
            self._items[item] = value
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(object.__dir__(self)) | set(self._items))

    def __repr__(self) -> str:
        return f"<Result {self.full_name} [{', '.join(self._items)}]>"

    def _repr_html_(self) -> str:
        from .display import result_html  # only for notebooks

        return result_html(self)


class RunResultSource(Protocol):
    """Where per-run results live: a file's stacked columns, or memory."""

    def templates(self) -> dict[str, str]:
        """Every template (``results.neuron.$``) with its comment."""

    def items(self, template: str) -> list[str]:
        """Item names stored under ``template``."""

    def runs(self, template: str, item: str) -> Iterable[int]:
        """Run indices that have ``item`` stored."""

    def get(self, template: str, item: str, idx: int) -> Any:
        """The value of ``item`` in run ``idx``; ``KeyError`` if there is none."""

    def has(self, template: str, item: str, idx: int) -> bool:
        """Whether run ``idx`` has ``item`` (in time independent of the number of runs)."""

    def info(self, template: str, item: str) -> ItemInfo:
        """``(kind, dtype, shape)`` of the item's values (see :func:`value_info`)."""

    def read(self, template: str, item: str, runs: np.ndarray) -> np.ndarray | list[Any]:
        """The values of ``runs`` (each must have one, else ``KeyError``), in their
        order: stacked along a first axis when of one numeric dtype and shape, else a list."""


#: ``(kind, dtype, shape)``: the values' kind (``"mixed"`` if they differ), their
#: dtype when numeric, their shape when it is the same for every run.
ItemInfo = tuple[str, "np.dtype | None", "tuple[int, ...] | None"]

_NUMBERS = (bool, int, float, complex, np.bool_, np.number, np.ndarray)


def value_info(values: Iterable[Any]) -> ItemInfo:
    """The :data:`ItemInfo` of values held in memory."""
    kinds, dtypes, shapes = set(), set(), set()
    numeric = True
    for value in values:
        kinds.add("ndarray" if isinstance(value, np.ndarray) else
                  "npscalar" if isinstance(value, np.generic) else type(value).__name__)
        if numeric and isinstance(value, _NUMBERS) and \
                np.asarray(value).dtype.kind in "biufc":
            dtypes.add(np.asarray(value).dtype)
            shapes.add(np.shape(value))
        else:
            numeric = False
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    if not numeric or not dtypes:
        return kind, None, None
    return (kind, dtypes.pop() if len(dtypes) == 1 else None,
            shapes.pop() if len(shapes) == 1 else None)


def stack_values(values: list[Any], info: ItemInfo) -> np.ndarray | list[Any]:
    """``values`` stacked along a first axis when ``info`` says they can be, else as they are."""
    kind, dtype, shape = info
    if dtype is None or shape is None or kind in ("list", "tuple", "mixed"):
        return values
    return np.array(values, dtype=dtype).reshape((len(values), *shape))


_MISSING = object()


class MemoryRunResults:
    """Per-run results held in memory until the trajectory is stored."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, dict[int, Any]]] = {}
        self._comments: dict[str, str] = {}

    def add(self, template: str, idx: int, items: dict[str, Any], comment: str) -> None:
        """Keep ``items`` of run ``idx`` under ``template``."""
        columns = self._data.setdefault(template, {})
        self._comments.setdefault(template, comment)
        for item, value in items.items():
            columns.setdefault(item, {})[idx] = value

    def templates(self) -> dict[str, str]:
        return dict(self._comments)

    def items(self, template: str) -> list[str]:
        return list(self._data.get(template, {}))

    def runs(self, template: str, item: str) -> Iterable[int]:
        return self._data.get(template, {}).get(item, {}).keys()

    def get(self, template: str, item: str, idx: int) -> Any:
        return self._data[template][item][idx]

    def has(self, template: str, item: str, idx: int) -> bool:
        return idx in self._data.get(template, {}).get(item, {})

    def info(self, template: str, item: str) -> ItemInfo:
        return value_info(self._data[template][item].values())

    def read(self, template: str, item: str, runs: np.ndarray) -> np.ndarray | list[Any]:
        column = self._data[template][item]
        return stack_values([column[idx] for idx in np.asarray(runs).tolist()],
                            self.info(template, item))

    def entries(self) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
        """Yield ``(template, comment, idx, items)`` per run."""
        for template, columns in self._data.items():
            by_run: dict[int, dict[str, Any]] = {}
            for item, values in columns.items():
                for idx, value in values.items():
                    by_run.setdefault(idx, {})[item] = value
            for idx in sorted(by_run):
                yield template, self._comments[template], idx, by_run[idx]

    def clear(self) -> None:
        """Forget every value (once they are stored)."""
        self._data.clear()
        self._comments.clear()

    def discard(self, entries: Iterable[tuple[str, str, int, dict[str, Any]]]) -> None:
        """Forget the values of ``entries`` (from :meth:`entries`, once they are stored);
        a value given again since is kept."""
        for template, _, idx, items in entries:
            columns = self._data.get(template, {})
            for item, value in items.items():
                if columns.get(item, {}).get(idx, _MISSING) is value:
                    del columns[item][idx]
                    if not columns[item]:
                        del columns[item]
            if template in self._data and not columns:
                del self._data[template]
                self._comments.pop(template, None)

    def __bool__(self) -> bool:
        return bool(self._data)


class RunNode(_ItemAccess):
    """One run's view of the per-run results below a group.

    Parameters
    ----------
    sources : sequence of RunResultSource
        Where to look, first match wins.
    path : str
        Template path so far, e.g. ``"results.neuron.$"``.
    idx : int
        The run index.
    templates : set of str
        Every template of the trajectory.
    """

    def __init__(self, sources: list[Any], path: str, idx: int, templates: set[str]):
        self._sources = sources
        self._path = path
        self._idx = idx
        self._templates = templates

    @property
    def full_name(self) -> str:
        """The path with the run's name in place of ``$``."""
        return self._path.replace("$", run_name(self._idx))

    def keys(self) -> list[str]:
        """Item names stored under this exact template for this run."""
        names: list[str] = []
        for source in self._sources:
            for item in source.items(self._path):
                if item not in names and source.has(self._path, item, self._idx):
                    names.append(item)
        return names

    def to_dict(self) -> dict[str, Any]:
        """All items of this run under this template."""
        return {item: self._child(item) for item in self.keys()}

    def _child(self, item: str) -> Any:
        if self._path in self._templates:
            for source in self._sources:
                if item in source.items(self._path):
                    try:
                        return source.get(self._path, item, self._idx)
                    except KeyError:
                        continue
        deeper = f"{self._path}.{item}"
        if any(t == deeper or t.startswith(deeper + ".") for t in self._templates):
            return RunNode(self._sources, deeper, self._idx, self._templates)
        raise NodeNotFoundError(
            f"{self.full_name!r} has no item {item!r} (stored items: "
            f"{', '.join(self.keys()) or 'none'}; the run may have failed or not run yet)")

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __repr__(self) -> str:
        return f"<RunNode {self.full_name} [{', '.join(self.keys())}]>"


class RunItem:
    """One per-run item over all runs: ``traj.res.neuron.V``.

    ``item[13]`` is run 13's value, ``item[[1, 5]]`` those of runs 1 and 5,
    ``item[:]`` (or a slice of run indices) those of every run that has one
    (:attr:`runs`), read in one slice of the stacked dataset: an ndarray stacked
    along runs when every run's value has one dtype and shape, else a list.
    ``len(item)`` is the number of runs that have a value.

    Parameters
    ----------
    sources : list of RunResultSource
        Where the values are; an earlier source wins for a run both have.
    template : str
        The result's template, e.g. ``"results.neuron.$"``.
    item : str
        The item's name, e.g. ``"V"``.
    n_runs : int
        The trajectory's number of runs.
    """

    def __init__(self, sources: list[Any], template: str, item: str, n_runs: int):
        self._sources = [source for source in sources if item in source.items(template)]
        self.template = template
        self.name = item
        self._n_runs = n_runs
        self._runs: list[np.ndarray] | None = None

    @property
    def full_name(self) -> str:
        """``results.neuron.$.V``."""
        return f"{self.template}.{self.name}"

    def _source_runs(self) -> list[np.ndarray]:
        if self._runs is None:
            self._runs = []
            for source in self._sources:
                runs = source.runs(self.template, self.name)
                self._runs.append(runs if isinstance(runs, np.ndarray) else
                                  np.array(sorted(runs), dtype=np.int64))
        return self._runs

    @property
    def runs(self) -> np.ndarray:
        """The indices of the runs that have a value, sorted."""
        found = self._source_runs()
        if len(found) == 1:
            return found[0]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def kind(self) -> str:
        """The values' kind (``"ndarray"``, ``"float"``, ``"str"``...; ``"mixed"``)."""
        return self._info()[0]

    @property
    def dtype(self) -> np.dtype | None:
        """The values' dtype when they are numeric, else ``None``."""
        return self._info()[1]

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Each run's shape when it is the same for every run (``()`` for numbers)."""
        return self._info()[2]

    def _info(self) -> ItemInfo:
        infos = [source.info(self.template, self.name) for source in self._sources]
        if not infos:
            return "mixed", None, None
        kind, dtype, shape = infos[0]
        for other in infos[1:]:
            kind = kind if other[0] == kind else "mixed"
            dtype = dtype if other[1] == dtype else None
            shape = shape if other[2] == shape else None
        return kind, dtype, shape

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(self._n_runs)
            runs = self.runs
            if (start, stop, step) != (0, self._n_runs, 1):
                runs = runs[np.isin(runs, np.arange(start, stop, step))]
            return self._read(runs)
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self._read(np.array([self._index(key)], dtype=np.int64), one=True)
        if isinstance(key, str):
            return self[run_index(key)]
        try:
            runs = np.array([self._index(run) for run in key], dtype=np.int64)
        except TypeError:
            raise TypeError(f"{self.full_name}: index with a run (13), a list of runs "
                            f"([1, 5]) or a slice ([:]), not {key!r:.60}") from None
        return self._read(runs)

    def _index(self, run: Any) -> int:
        if isinstance(run, bool) or not isinstance(run, (int, np.integer)):
            raise TypeError(f"{self.full_name}: runs are given by index, not {run!r:.60}")
        run = int(run)
        if run < 0:
            run += self._n_runs
        if not 0 <= run < self._n_runs:
            raise IndexError(f"{self.full_name}: no run {run}; the trajectory has "
                             f"{self._n_runs} run(s)")
        return run

    def _read(self, runs: np.ndarray, one: bool = False) -> Any:
        found = self._source_runs()
        if len(self._sources) == 1:
            parts = [(self._sources[0], runs, None)]
        else:  # each run from the first source that has it
            owner = np.full(len(runs), -1)
            for number in reversed(range(len(self._sources))):
                owner[np.isin(runs, found[number])] = number
            parts = [(self._sources[number], runs[owner == number], owner == number)
                     for number in range(len(self._sources)) if np.any(owner == number)]
            if np.any(owner < 0):
                parts.append((None, runs[owner < 0][:1], None))
        values: list[Any] = [None] * len(runs)
        for source, wanted, where in parts:
            try:
                if source is None:
                    raise KeyError(int(wanted[0]))
                block = source.read(self.template, self.name, wanted)
            except KeyError as missing:
                raise NodeNotFoundError(
                    f"{self.full_name}: run {missing.args[0]} has no value (it failed, has "
                    f"not run yet, or did not add {self.name!r}); item.runs lists the runs "
                    "that have one") from None
            if one:
                return block[0]
            if where is None:
                return block
            for position, value in zip(np.flatnonzero(where).tolist(), block):
                values[position] = value
        return stack_values(values, self._info())

    def __iter__(self) -> Iterator[Any]:
        return iter(self[:])

    def __repr__(self) -> str:
        kind, dtype, shape = self._info()
        what = f"{dtype} {shape}" if dtype is not None and shape is not None else kind
        return f"<RunItem {self.full_name}: {what} in {len(self)} run(s)>"


class RunItems:
    """The items of a per-run result whose ``$`` sits higher up, e.g. the items
    of ``results.runs.$.spikes`` seen from ``traj.res.runs.spikes``."""

    def __init__(self, sources: list[Any], template: str, n_runs: int):
        self._sources = sources
        self.template = template
        self._n_runs = n_runs

    def keys(self) -> list[str]:
        """The item names."""
        names: list[str] = []
        for source in self._sources:
            names += [item for item in source.items(self.template) if item not in names]
        return names

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __getattr__(self, item: str) -> RunItem:
        if item.startswith("_"):
            raise AttributeError(item)
        if item not in self.keys():
            raise NodeNotFoundError(f"{self.template} has no per-run item {item!r}; it has: "
                                    f"{', '.join(self.keys()) or 'nothing'}")
        return RunItem(self._sources, self.template, item, self._n_runs)

    __getitem__ = __getattr__

    def __repr__(self) -> str:
        return f"<RunItems {self.template} [{', '.join(self.keys())}]>"
