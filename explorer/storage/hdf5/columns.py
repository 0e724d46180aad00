"""Stacked columns: one item of every run in a few datasets, not one group per run.

A *column* is an HDF5 group holding the values of one item (``V`` of
``results.neuron.$``, say) for many runs. It holds *segments* ``s0, s1, ...``;
each segment has a ``runs`` dataset (int64, the run index of each row) and its
values in one of four encodings:

``fixed``
    Values of one dtype and shape stacked along a first, run axis in one chunked,
    compressed EArray (``data``, shape ``(rows, *shape)``). Scalars are shape ``()``.
``ragged``
    Numeric arrays whose shapes vary: a VLArray ``data`` of flattened rows and an
    EArray ``shapes`` (``(rows, ndim)``).
``strings``
    Python strings: a VLArray ``data`` of UTF-8 bytes.
``nodes``
    Anything else (DataFrames, dicts, sparse matrices...): one child of group
    ``data`` per row, named ``r<row>``, written by :mod:`.nodes`.

A later row for the same run replaces an earlier one when read.
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import tables

from ...values import is_uniform, result_kind
from .nodes import attr, read_value, write_value

__all__ = ["append_column", "ColumnIndex", "chunk_rows"]

_FIXED_KINDS = {"bool", "int", "float", "complex", "npscalar", "ndarray", "list", "tuple"}
_PY = {"bool": bool, "int": int, "float": float, "complex": complex}
#: Target size of one chunk of a stacked dataset, in bytes.
CHUNK_BYTES = 256 * 1024


def chunk_rows(row_bytes: int, target: int = CHUNK_BYTES) -> int:
    """Rows per chunk so that a chunk holds about ``target`` bytes."""
    return int(min(max(1, math.ceil(target / max(row_bytes, 1))), 65536))


_PY_FIXED = {bool: ("bool", "|b1"), int: ("int", "<i8"), float: ("float", "<f8"),
             complex: ("complex", "<c16")}
#: Rows are stacked and appended in pieces of about this many bytes.
APPEND_BYTES = 32 * 1024 * 1024


def _signature(value: Any, allow_pickle: bool) -> tuple[str, str, str, tuple[int, ...]]:
    if type(value) is np.ndarray and value.dtype.kind in "biufc":
        return ("fixed", "ndarray", value.dtype.str, value.shape)
    fixed = _PY_FIXED.get(type(value))
    if fixed is not None and (fixed[0] != "int" or -2**63 <= value < 2**63):
        return ("fixed", fixed[0], fixed[1], ())
    kind = result_kind("item", value, allow_pickle)
    if kind in _FIXED_KINDS and kind != "int" and (kind not in ("list", "tuple") or
                                                  is_uniform(value)):
        array = np.asarray(value)
        if array.dtype.kind in "biufc":
            return ("fixed", kind, array.dtype.str, array.shape)
    elif kind == "str":
        return ("strings", kind, "", ())
    return ("nodes", kind, "", ())


class _Segment:
    """Writes rows into one segment."""

    def __init__(self, group: tables.Group):
        self.group = group
        self.encoding = attr(group, "encoding")
        self.kind = attr(group, "kind")
        self.dtype = attr(group, "dtype")
        self.shape = tuple(json.loads(attr(group, "shape")))

    def key(self) -> tuple[str, str, str, int]:
        return (self.encoding, self.kind, self.dtype, len(self.shape))

    @classmethod
    def create(cls, column: tables.Group, encoding: str, kind: str, dtype: str,
               shape: tuple[int, ...], filters: tables.Filters, expected: int) -> "_Segment":
        handle = column._v_file
        name = f"s{column._v_nchildren}"
        group = handle.create_group(column, name)
        for key, value in dict(encoding=encoding, kind=kind, dtype=dtype,
                               shape=json.dumps(list(shape))).items():
            setattr(group._v_attrs, key, value)
        handle.create_earray(group, "runs", tables.Int64Atom(), (0,), filters=filters,
                             chunkshape=(chunk_rows(8),), expectedrows=expected)
        if encoding == "fixed":
            np_dtype = np.dtype(dtype)
            row_bytes = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
            handle.create_earray(group, "data", tables.Atom.from_dtype(np_dtype), (0, *shape),
                                 filters=filters, expectedrows=expected,
                                 chunkshape=(chunk_rows(row_bytes), *shape))
        elif encoding == "ragged":
            handle.create_vlarray(group, "data", tables.Atom.from_dtype(np.dtype(dtype)),
                                  filters=filters, expectedrows=expected)
            handle.create_earray(group, "shapes", tables.Int64Atom(), (0, len(shape)),
                                 filters=filters, expectedrows=expected)
        elif encoding == "strings":
            handle.create_vlarray(group, "data", tables.VLStringAtom(), filters=filters,
                                  expectedrows=expected)
        else:
            handle.create_group(group, "data")
        return cls(group)

    def append(self, runs: Sequence[int], values: Sequence[Any], filters: tables.Filters) -> None:
        data = self.group.data
        if self.encoding == "fixed":
            row_bytes = max(1, int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize)
            step = max(1, APPEND_BYTES // row_bytes)
            for start in range(0, len(values), step):
                piece = values[start:start + step]
                block = np.stack(piece) if self.shape else np.array(piece)
                data.append(block.astype(self.dtype, copy=False).reshape((len(piece), *self.shape)))
        elif self.encoding == "ragged":
            arrays = [np.asarray(v, dtype=self.dtype) for v in values]
            for array in arrays:
                data.append(array.ravel())
            self.group.shapes.append(np.array([a.shape for a in arrays], dtype=np.int64)
                                     .reshape(len(arrays), len(self.shape)))
        elif self.encoding == "strings":
            for value in values:
                data.append(value.encode("utf-8"))
        else:
            start = self.group.runs.nrows
            for offset, value in enumerate(values):
                write_value(data, f"r{start + offset}", value, self.kind, filters)
        self.group.runs.append(np.asarray(runs, dtype=np.int64))


def append_column(parent: tables.Group, item: str, runs: Sequence[int], values: Sequence[Any],
                  *, filters: tables.Filters, allow_pickle: bool, expected: int = 1000) -> None:
    """Append ``values`` (one per run in ``runs``) to column ``item`` below ``parent``."""
    handle = parent._v_file
    if item in parent:
        column = parent._f_get_child(item)
    else:
        column = handle.create_group(parent, item)
        column._v_attrs.explorer_node = "column"
    segments = [_Segment(group) for group in column._f_iter_nodes("Group")]
    batches: dict[tuple[str, str, str, tuple[int, ...]], tuple[list[int], list[Any]]] = {}
    for run, value in zip(runs, values):
        signature = _signature(value, allow_pickle)
        rows = batches.setdefault(signature, ([], []))
        rows[0].append(run)
        rows[1].append(value)
    # arrays of one dtype and ndim but several shapes go to one ragged segment
    shapes: dict[tuple[str, str, int], set[tuple[int, ...]]] = {}
    for encoding, kind, dtype, shape in batches:
        if encoding == "fixed" and shape:
            shapes.setdefault((kind, dtype, len(shape)), set()).add(shape)
    for (encoding, kind, dtype, shape), (batch_runs, batch_values) in batches.items():
        segment = None
        if encoding == "fixed":
            family = (kind, dtype, len(shape))
            ragged = next((s for s in segments if s.key() == ("ragged", *family)), None)
            fixed = [s for s in segments if s.key() == ("fixed", *family)]
            exact = next((s for s in fixed if s.shape == shape), None)
            if shape and (ragged is not None or len(shapes[family]) > 1 or (fixed and not exact)):
                encoding = "ragged"
                segment = ragged
            else:
                segment = exact
        else:
            segment = next((s for s in segments if (s.encoding, s.kind) == (encoding, kind)),
                           None)
        if segment is None:
            segment = _Segment.create(column, encoding, kind, dtype, shape, filters, expected)
            segments.append(segment)
        segment.append(batch_runs, batch_values, filters)


class ColumnIndex:
    """Where each run's value of one column is: read once, then one lookup per run.

    Parameters
    ----------
    column : tables.Group
        The column group (read at construction; no node is kept).
    """

    def __init__(self, column: tables.Group):
        self.path = column._v_pathname
        runs, segment_ids, rows, self.segments = [], [], [], []
        for i, group in enumerate(column._f_iter_nodes("Group")):
            seg_runs = group.runs.read()
            runs.append(seg_runs)
            segment_ids.append(np.full(len(seg_runs), i, dtype=np.int32))
            rows.append(np.arange(len(seg_runs), dtype=np.int64))
            self.segments.append((group._v_name, attr(group, "encoding"), attr(group, "kind"),
                                  attr(group, "dtype"), tuple(json.loads(attr(group, "shape")))))
        all_runs = np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)
        self._segment_ids = np.concatenate(segment_ids) if runs else np.zeros(0, np.int32)
        self._rows = np.concatenate(rows) if runs else np.zeros(0, np.int64)
        if len(all_runs) and np.all(all_runs[1:] > all_runs[:-1]):
            self._order = None
            self._sorted = all_runs
        else:
            self._order = np.argsort(all_runs, kind="stable")
            self._sorted = all_runs[self._order]

    @property
    def runs(self) -> np.ndarray:
        """The run indices that have a value (unique, sorted)."""
        return np.unique(self._sorted)

    def locate(self, run: int) -> tuple[int, int] | None:
        """``(segment number, row)`` of the latest value of ``run``, or ``None``."""
        position = int(np.searchsorted(self._sorted, run, side="right")) - 1
        if position < 0 or self._sorted[position] != run:
            return None
        if self._order is not None:
            position = int(self._order[position])
        return int(self._segment_ids[position]), int(self._rows[position])

    def read(self, handle: tables.File, run: int, allow_pickle: bool) -> Any:
        """The value of ``run``; ``KeyError`` if the column has none."""
        found = self.locate(run)
        if found is None:
            raise KeyError(run)
        segment, row = found
        name, encoding, kind, dtype, shape = self.segments[segment]
        group = handle.get_node(f"{self.path}/{name}")
        if encoding == "fixed":
            value = group.data[row]
            if kind in _PY:
                return _PY[kind](value)
            if kind == "npscalar":
                return np.dtype(dtype).type(value)
            if kind in ("list", "tuple"):
                value = np.asarray(value).tolist()
                return value if kind == "list" else tuple(value)
            return np.asarray(value)
        if encoding == "ragged":
            value = group.data[row].reshape(tuple(group.shapes[row]))
            if kind in ("list", "tuple"):
                value = value.tolist()
                return value if kind == "list" else tuple(value)
            return value
        if encoding == "strings":
            return bytes(group.data[row]).decode("utf-8")
        return read_value(group.data._f_get_child(f"r{row}"), allow_pickle)

    def scalars(self, handle: tables.File) -> tuple[np.ndarray, np.ndarray] | None:
        """``(runs, values)`` when every segment holds scalars, latest value per run."""
        if not self.segments or any(enc != "fixed" or shape or kind in ("ndarray",)
                                    for _, enc, kind, _, shape in self.segments):
            return None
        values = [handle.get_node(f"{self.path}/{name}/data").read()
                  for name, *_ in self.segments]
        if len({v.dtype for v in values}) > 1:
            values = [v.astype(object) for v in values]
        flat = np.concatenate(values)
        runs = self._sorted
        values_sorted = flat[self._order] if self._order is not None else flat
        # the latest row of each run: last of each equal run index in the stable sort
        last = np.ones(len(runs), dtype=bool)
        last[:-1] = runs[1:] != runs[:-1]
        return runs[last], values_sorted[last]
