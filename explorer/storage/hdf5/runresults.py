"""The per-run results of a trajectory in an HDF5 file, read column by column on demand."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import tables

from .checksum import verify
from .columns import ColumnIndex
from .damage import reported
from .files import reading
from .layered import every_node, last_node
from .nodes import attr

if TYPE_CHECKING:
    from .store import Hdf5Store

__all__ = ["StoredRunResults"]


class StoredRunResults:
    """The per-run results in a file, read column by column on demand."""

    def __init__(self, store: Hdf5Store):
        self._store = store

    def templates(self) -> dict[str, str]:
        found: dict[str, str] = {}
        store = self._store
        with reading(store.filename) as view, \
                reported(store.filename, f"{store._what}: its per-run results"):
            for root in every_node(store._layers(view), f"{store.path}/results"):
                for group in root._f_walk_groups():
                    if attr(group, "explorer_node") == "column":
                        template_path = group._v_parent._v_pathname[len(store.path) + 1:]
                        found.setdefault(template_path.replace("/", "."),
                                         attr(_template_root(group), "comment", ""))
        return found

    def items(self, template: str) -> list[str]:
        store = self._store
        path = store._template_path(template)
        with reading(store.filename) as view, \
                reported(store.filename, f"{store._what}: results {template!r}"):
            found: list[str] = []
            for node in every_node(store._layers(view), path):
                verify(node)
                found += [g._v_name for g in node._f_iter_nodes("Group")
                          if attr(g, "explorer_node") == "column" and g._v_name not in found]
            return found

    def runs(self, template: str, item: str) -> np.ndarray:
        store = self._store
        with reading(store.filename) as view, \
                reported(store.filename, f"{store._what}: {template}.{item}"):
            index = store.column_index(store._layers(view),
                                       f"{store._template_path(template)}/{item}")
            return index.runs if index is not None else np.zeros(0, dtype=np.int64)

    def _index(self, template: str, item: str) -> ColumnIndex:
        store = self._store
        with reading(store.filename) as view, \
                reported(store.filename, f"{store._what}: {template}.{item}"):
            index = store.column_index(store._layers(view),
                                       f"{store._template_path(template)}/{item}")
        if index is None:
            raise KeyError(item)
        return index

    def has(self, template: str, item: str, idx: int) -> bool:
        try:
            return self._index(template, item).has(idx)
        except KeyError:
            return False

    def info(self, template: str, item: str) -> tuple[str, np.dtype | None,
                                                      tuple[int, ...] | None]:
        return self._index(template, item).info()

    def read(self, template: str, item: str, runs: np.ndarray) -> np.ndarray | list[Any]:
        store = self._store
        wanted = np.asarray(runs, dtype=np.int64)
        with reading(store.filename):
            index = self._index(template, item)
            missing = [idx for idx in wanted.tolist() if not index.has(idx)] \
                if len(wanted) < 64 else wanted[~np.isin(wanted, index.runs)].tolist()
            if missing:
                raise KeyError(missing[0])
            with reported(store.filename, f"{store._what}: {template}.{item}"):
                stacked = index.stacked(wanted)
                if stacked is not None:
                    return stacked
                found = index.values(wanted.tolist(), store.allow_pickle)
        return [found[idx] for idx in wanted.tolist()]

    def get(self, template: str, item: str, idx: int) -> Any:
        store = self._store
        path = f"{store._template_path(template)}/{item}"
        with reading(store.filename) as view:
            layers = store._layers(view)
            if last_node(layers, path) is None:
                raise KeyError(item)
            with reported(store.filename, f"{store._what}: {template}.{item}"):
                index = store.column_index(layers, path)  # not None: a layer has it
                found = index.values([idx], store.allow_pickle) if index is not None else {}
        if idx not in found:
            raise KeyError(idx)
        return found[idx]


def _template_root(column: tables.Group) -> tables.Group:
    node = column._v_parent
    while attr(node, "explorer_node") != "runs":
        node = node._v_parent
    return node
