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

from typing import Any, Callable, Iterable, Iterator, Protocol

from .errors import NodeNotFoundError
from .naming import run_name
from .tree import Node

__all__ = ["LazyItem", "Result", "RunResultSource", "MemoryRunResults", "RunNode"]


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
                if item not in names and self._idx in _as_set(source.runs(self._path, item)):
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

    def __repr__(self) -> str:
        return f"<RunNode {self.full_name}>"


def _as_set(runs: Iterable[int]) -> Any:
    return runs if hasattr(runs, "__contains__") else set(runs)
