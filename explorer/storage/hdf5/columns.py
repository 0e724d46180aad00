"""Stacked columns: one item of every run in a few datasets, not one group per run.

A *column* is an HDF5 group holding the values of one item (``V`` of
``results.neuron.$``, say) for many runs. It holds *segments* ``s0, s1, ...``;
each segment has a ``runs`` dataset (int64, the run index of each row) and its
values in one of four encodings:

``fixed``
    Values of one dtype and shape stacked along a first, run axis in one chunked,
    compressed EArray (``data``, shape ``(rows, *shape)``). Scalars are shape ``()``.
``ragged``
    Numeric arrays whose shapes vary, or that are empty (a chunk cannot have a
    zero-length axis): a VLArray ``data`` of flattened rows and an EArray
    ``shapes`` (``(rows, ndim)``).
``strings``
    Python strings: a VLArray ``data`` of UTF-8 bytes.
``nodes``
    Anything else (DataFrames, dicts, sparse matrices...): one child of group
    ``data`` per row, named ``r<row>``, written by :mod:`.nodes`.

A later row for the same run replaces an earlier one when read. The segment's
``dtype`` attribute is the values' own (a big-endian one, say), which rows read
from HDF5 are given back.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tables

from ...values import NUMBER_TYPES, is_uniform, result_kind
from .checksum import has_checksum, mark, seal, verify, verify_tree
from .hdf5guard import check_chunks
from .nodes import attr, copy_node, read_value, write_value
from .parts import PACK_MIN_ROW_BYTES, NodesPart, PackedPart, RawPart, unpack

__all__ = ["append_column", "append_packed", "append_nodes", "packed_parts", "ColumnIndex",
           "chunk_rows", "signature"]

_FIXED_KINDS = {"bool", "int", "float", "complex", "npscalar", "ndarray", "list", "tuple"}
#: Target size of one chunk of a stacked dataset, in bytes...
CHUNK_BYTES = 1024 * 1024
#: ...and of one of small rows (scalars, run indices): every append of a few
#: rows compresses the chunk they land in again, so these chunks stay small.
SMALL_CHUNK_BYTES = 64 * 1024
SMALL_ROW_BYTES = 4096
#: Rows per chunk of a variable-length dataset. Its chunks hold 16-byte
#: references to the rows, uncompressed: PyTables' default for many expected
#: rows (65,536) makes every such dataset take 1 MB, however few its rows.
VARIABLE_CHUNK_ROWS = 256


def chunk_rows(row_bytes: int, target: int | None = None) -> int:
    """Rows per chunk so that a chunk holds about ``target`` bytes."""
    if target is None:
        target = CHUNK_BYTES if row_bytes >= SMALL_ROW_BYTES else SMALL_CHUNK_BYTES
    return int(min(max(1, math.ceil(target / max(row_bytes, 1))), 65536))


_PY_FIXED = {bool: ("bool", "|b1"), int: ("int", "<i8"), float: ("float", "<f8"),
             complex: ("complex", "<c16")}
#: Rows are stacked and appended in pieces of about this many bytes.
APPEND_BYTES = 32 * 1024 * 1024


def signature(value: Any, allow_pickle: bool) -> tuple[str, str, str, tuple[int, ...]]:
    """``(encoding, kind, dtype, shape)`` of the segment a value of one run belongs in."""
    if value is None:
        return ("fixed", "none", "|b1", ())
    if type(value) is np.ndarray and value.dtype.kind in "biufc":
        return ("fixed", "ndarray", value.dtype.str, value.shape)
    fixed = _PY_FIXED.get(type(value))
    if fixed is not None and (fixed[0] != "int" or -2**63 <= value < 2**63):
        return ("fixed", fixed[0], fixed[1], ())
    kind = result_kind("item", value, allow_pickle)
    if kind in _FIXED_KINDS and kind != "int" and (kind not in ("list", "tuple") or (
            is_uniform(value) and not (value and isinstance(value[0], np.generic)))):
        array = np.asarray(value)
        if array.dtype.kind in "biufc":
            return ("fixed", kind, array.dtype.str, array.shape)
    elif kind == "str":
        return ("strings", kind, "", ())
    return ("nodes", kind, "", ())


def _variable(filters: tables.Filters) -> tables.Filters:
    """``filters`` for a VLArray: HDF5 refuses a checksum on variable-length data."""
    if not filters.fletcher32:
        return filters
    return tables.Filters(complevel=filters.complevel, complib=filters.complib,
                          shuffle=filters.shuffle, bitshuffle=filters.bitshuffle)


class _Segment:
    """Writes rows into one segment."""

    def __init__(self, group: tables.Group):
        verify(group)  # rows are added by what its attributes say
        self.group = group
        self.encoding = attr(group, "encoding")
        self.kind = attr(group, "kind")
        self.dtype = attr(group, "dtype")
        self.shape = tuple(json.loads(attr(group, "shape")))

    def key(self) -> tuple[str, str, str, int]:
        return (self.encoding, self.kind, self.dtype, len(self.shape))

    @classmethod
    def create(cls, column: tables.Group, encoding: str, kind: str, dtype: str,
               shape: tuple[int, ...], filters: tables.Filters, expected: int) -> _Segment:
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
                                  filters=_variable(filters), chunkshape=(VARIABLE_CHUNK_ROWS,))
            handle.create_earray(group, "shapes", tables.Int64Atom(), (0, len(shape)),
                                 filters=filters, expectedrows=expected)
        elif encoding == "strings":
            handle.create_vlarray(group, "data", tables.VLStringAtom(),
                                  filters=_variable(filters), chunkshape=(VARIABLE_CHUNK_ROWS,))
        else:
            handle.create_group(group, "data")
        mark(group)
        mark(column)
        return cls(group)

    def append(self, runs: Sequence[int], values: Sequence[Any], filters: tables.Filters) -> None:
        data = self.group.data
        if self.encoding == "fixed":
            cells = int(np.prod(self.shape, dtype=np.int64))
            row_bytes = max(1, cells * np.dtype(self.dtype).itemsize)
            step = max(1, APPEND_BYTES // row_bytes)
            for start in range(0, len(values), step):
                piece = values[start:start + step]
                if self.kind == "none":  # nothing to keep but that the run has a None
                    block = np.zeros(len(piece), dtype=bool)
                else:
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
                data.append(value.encode("utf-8", "surrogatepass"))
        else:
            start = self.group.runs.nrows
            for offset, value in enumerate(values):
                write_value(data, f"r{start + offset}", value, self.kind, filters)
        self.group.runs.append(np.asarray(runs, dtype=np.int64))


def _uniform_signature(values: Sequence[Any],
                       allow_pickle: bool) -> tuple[str, str, str, tuple[int, ...]] | None:
    """The signature every value has, when all are Python floats, bools, int64s or None.

    Return values and parameter ranges mostly look like that; checking the type
    of each value at once is far cheaper than a signature per value.
    """
    if len(values) < 2:
        return None
    types = set(map(type, values))
    if len(types) != 1:
        return None
    kind = types.pop()
    if kind not in (float, bool, int, type(None)) or \
            (kind is int and not -2**63 <= min(values) <= max(values) < 2**63):
        return None
    return signature(values[0], allow_pickle)


def append_column(parent: tables.Group, item: str, runs: Sequence[int], values: Sequence[Any],
                  *, filters: tables.Filters, allow_pickle: bool, expected: int = 1000) -> None:
    """Append ``values`` (one per run in ``runs``) to column ``item`` below ``parent``."""
    column = _column(parent, item)
    segments = [_Segment(group) for group in _segments(column)]
    batches: dict[tuple[str, str, str, tuple[int, ...]], tuple[list[int], list[Any]]] = {}
    uniform = _uniform_signature(values, allow_pickle)
    if uniform is not None:
        batches[uniform] = (list(runs), list(values))
    else:
        for run, value in zip(runs, values):
            rows = batches.setdefault(signature(value, allow_pickle), ([], []))
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
            if shape and (ragged is not None or len(shapes[family]) > 1 or (fixed and not exact)
                          or 0 in shape):
                encoding = "ragged"
                segment = ragged
            else:
                segment = exact
        else:
            segment = next((s for s in segments if (s.encoding, s.kind) == (encoding, kind)),
                           None)
        if segment is not None and _rerun_after(segments, segment, batch_runs):
            segment = None  # its rows must come after the later segment's to replace them
        if segment is None:
            segment = _Segment.create(column, encoding, kind, dtype, shape, filters, expected)
            segments.append(segment)
        segment.append(batch_runs, batch_values, filters)


def _segments(column: tables.Group) -> list[tables.Group]:
    """The column's segments in the order they were made (``s0, s1, ..., s10``)."""
    groups = list(column._f_iter_nodes("Group"))
    if all(group._v_name[1:].isdigit() for group in groups):
        groups.sort(key=lambda group: int(group._v_name[1:]))
    return groups


def _rerun_after(segments: list[_Segment], segment: _Segment, runs: Sequence[int]) -> bool:
    """Whether a segment after ``segment`` holds one of ``runs`` (a later row of a run
    replaces an earlier one when read: appending to ``segment`` would undo that)."""
    later = segments[segments.index(segment) + 1:]
    if not later:
        return False
    wanted = np.asarray(runs, dtype=np.int64)
    return any(np.isin(wanted, other.group.runs.read()).any() for other in later)


def _column(parent: tables.Group, item: str) -> tables.Group:
    if item in parent:
        column = parent._f_get_child(item)
        verify(column)
        return column
    verify(parent)
    column = parent._v_file.create_group(parent, item)
    column._v_attrs.explorer_node = "column"
    mark(column)
    mark(parent)
    return column


def append_packed(parent: tables.Group, item: str, part: Any, *, filters: tables.Filters,
                  allow_pickle: bool, expected: int = 1000) -> None:
    """Append a :class:`~.encode.PackedPart` to column ``item`` by direct chunk writes.

    The compressed chunks are copied as they are; the column's dataset is first
    padded to a whole number of chunks (padding rows have run index ``-1``).
    When the part cannot be copied (the column stores this item differently, or
    with other filters), its values are decoded and appended the usual way.
    """
    column = _column(parent, item)
    segments = [_Segment(group) for group in _segments(column)]
    family = (part.kind, part.dtype, len(part.shape))
    ragged = any(s.key() == ("ragged", *family) for s in segments)
    fixed = [s for s in segments if s.key() == ("fixed", *family)]
    segment = next((s for s in fixed if s.shape == part.shape), None)
    rerun = segment is not None and _rerun_after(segments, segment, part.runs[part.runs >= 0])
    if not ragged and (rerun or (segment is None and not fixed)):
        segment = _Segment.create(column, "fixed", part.kind, part.dtype, part.shape, filters,
                                  expected)
    data = segment.group.data if segment is not None else None
    if ragged or data is None or data.chunkshape[0] != part.chunk_rows or \
            data.filters.complevel != part.complevel or \
            bool(data.filters.fletcher32) != part.checksum or \
            (part.complevel and data.filters.complib != part.complib):
        raw = unpack(part)
        append_column(parent, item, raw.runs, raw.values, filters=filters,
                      allow_pickle=allow_pickle, expected=expected)
        return
    assert segment is not None  # data is its dataset
    start = data.nrows
    pad = (-start) % part.chunk_rows
    runs = segment.group.runs
    if pad:
        runs.append(np.full(pad, -1, dtype=np.int64))
        start += pad
    data.truncate(start + len(part.runs))
    zeros = (0,) * len(part.shape)
    for i, (chunk, mask) in enumerate(part.chunks()):
        data.write_chunk((start + i * part.chunk_rows, *zeros), chunk, filter_mask=mask)
    runs.append(part.runs)


def append_nodes(parent: tables.Group, item: str, part: Any, *, filters: tables.Filters,
                 expected: int = 1000) -> None:
    """Append a :class:`~.encode.NodesPart` by copying its nodes (nothing is decoded)."""
    column = _column(parent, item)
    segments = [_Segment(group) for group in _segments(column)]
    segment = next((s for s in segments if (s.encoding, s.kind) == ("nodes", part.kind)), None)
    if segment is not None and _rerun_after(segments, segment, part.runs):
        segment = None
    if segment is None:
        segment = _Segment.create(column, "nodes", part.kind, "", (), filters, expected)
    start = segment.group.runs.nrows
    for offset, node in enumerate(part.nodes):
        verify_tree(node)  # copied as it is: its damage must not be sealed anew
        copy = copy_node(node, segment.group.data, f"r{start + offset}")
        if has_checksum(node):
            seal(copy)  # its checksum covers its name
    segment.group.runs.append(np.asarray(part.runs, dtype=np.int64))


def packed_parts(column: tables.Group) -> list[Any]:
    """The column's content as parts that copy without re-encoding.

    Big fixed rows come as their compressed chunks, node rows as the nodes
    themselves (valid while ``column``'s file is open); nothing is unpickled.
    """
    parts: list[Any] = []
    index = ColumnIndex(column)
    for number, (name, encoding, kind, dtype, shape) in enumerate(index.segments):
        group = column._f_get_child(name)
        runs = group.runs.read()
        row_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype or "u1").itemsize
        data = group.data
        if encoding == "fixed" and shape and row_bytes >= PACK_MIN_ROW_BYTES:
            zeros = (0,) * len(shape)
            chunks = [(data.read_chunk((start, *zeros)),
                       data.chunk_info((start, *zeros)).filter_mask)
                      for start in range(0, data.nrows, data.chunkshape[0])]
            parts.append(PackedPart.of_chunks(kind, dtype, shape, runs, data.chunkshape[0],
                                              chunks, data.filters.complib or "",
                                              data.filters.complevel,
                                              bool(data.filters.fletcher32)))
        elif encoding == "nodes":
            rows = [row for row in range(len(runs)) if runs[row] >= 0]
            parts.append(NodesPart(kind, [int(runs[row]) for row in rows],
                                   [data._f_get_child(f"r{row}") for row in rows]))
        else:
            values = index.read_rows(number, 0, len(runs))
            parts.append(RawPart([int(run) for run in runs if run >= 0],
                                 [value for value, run in zip(values, runs) if run >= 0]))
    return parts


def _as_stored(block: np.ndarray, dtype: str) -> np.ndarray:
    """``block`` in the segment's dtype (HDF5 reads big-endian data as little-endian)."""
    return block if block.dtype.str == dtype else block.astype(dtype)


_ENCODINGS = ("fixed", "ragged", "strings", "nodes")
#: The kinds each encoding can hold (a node row carries its own kind).
_SEGMENT_KINDS = {"fixed": _FIXED_KINDS | {"none"}, "ragged": {"ndarray", "list", "tuple"},
                  "strings": {"str"}}


def _checked_segment(group: tables.Group) -> tuple[np.ndarray, tuple[str, str, str, str,
                                                                     tuple[int, ...]]]:
    """A segment's run indices and ``(name, encoding, kind, dtype, shape)``, checked.

    Everything later reads rows by these figures, so a malformed segment (a
    hand-edited or damaged file) is refused here with a ``ValueError`` saying
    what does not fit, before a wrong shape or count sizes a read.
    """
    where = f"segment {group._v_pathname!r}"
    verify(group, explorer=True)
    encoding, kind, dtype = attr(group, "encoding"), attr(group, "kind"), attr(group, "dtype")
    if encoding not in _ENCODINGS or not isinstance(kind, str) or \
            kind not in _SEGMENT_KINDS.get(encoding, (kind,)):
        raise ValueError(f"{where}: unknown encoding {encoding!r} or kind {kind!r}")
    shape = json.loads(attr(group, "shape", "[]"))
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"{where}: shape {shape!r:.60} is not a list of sizes")
    shape = tuple(shape)
    runs_node = group._f_get_child("runs")
    if not isinstance(runs_node, tables.Array) or len(runs_node.shape) != 1 or \
            runs_node.dtype.kind not in "iu":
        raise ValueError(f"{where}: 'runs' is not a 1-d integer dataset")
    check_chunks(runs_node)
    runs = runs_node.read().astype(np.int64, copy=False)
    if len(runs) and runs.min() < -1:
        raise ValueError(f"{where}: negative run index {runs.min()}")
    data = group._f_get_child("data")
    if isinstance(data, tables.Leaf):
        check_chunks(data)
    if encoding in ("fixed", "ragged"):
        expected = np.dtype(dtype).newbyteorder("=")  # other byte orders are stored native
        if expected.kind not in "biufc":
            raise ValueError(f"{where}: dtype {dtype!r} is not numeric")
    if encoding == "fixed":
        if not isinstance(data, tables.Array) or data.shape != (len(runs), *shape) or \
                data.dtype != expected:
            raise ValueError(f"{where}: 'data' should hold {len(runs)} rows of shape "
                             f"{shape} and dtype {expected}, not {getattr(data, 'shape', '?')} "
                             f"of {getattr(data, 'dtype', '?')}")
    elif encoding in ("ragged", "strings"):
        if not isinstance(data, tables.VLArray) or data.nrows != len(runs):
            raise ValueError(f"{where}: 'data' should be a VLArray of {len(runs)} rows")
        if encoding == "ragged":
            shapes = group._f_get_child("shapes")
            if data.atom.dtype != expected or not isinstance(shapes, tables.Array) or \
                    shapes.shape != (len(runs), len(shape)) or shapes.dtype.kind not in "iu":
                raise ValueError(f"{where}: 'data' or 'shapes' does not match {len(runs)} "
                                 f"rows of {len(shape)}-d {expected} arrays")
    elif not isinstance(data, tables.Group):
        raise ValueError(f"{where}: 'data' should be a group of value nodes")
    return runs, (group._v_name, encoding, kind, dtype, shape)


class ColumnIndex:
    """Where each run's value of one column is: read once, then one lookup per run.

    A column may be spread over several files (the layers of an explorer file,
    oldest first): its segments are then those of each part in turn, and a
    later row of a run replaces an earlier one as within one file.

    Parameters
    ----------
    columns : tables.Group or list of tables.Group
        The column group, or its parts in the layers holding it, oldest first
        (read at construction; no node is kept).
    limit : int, optional
        The trajectory's number of runs: a run index from there on is damage.
    """

    def __init__(self, columns: tables.Group | Sequence[tables.Group], limit: int | None = None):
        parts = [columns] if isinstance(columns, tables.Group) else list(columns)
        self.path = parts[-1]._v_pathname
        self.files = [part._v_file for part in parts]
        runs: list[np.ndarray] = []
        segment_ids: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        #: ``(name, encoding, kind, dtype, shape)`` of each segment
        self.segments: list[tuple[str, str, str, str, tuple[int, ...]]] = []
        self._where: list[tuple[int, str]] = []  # (part, segment's path) of each segment
        for number, column in enumerate(parts):
            verify(column, explorer=True)
            for group in _segments(column):
                seg_runs, entry = _checked_segment(group)
                runs.append(seg_runs)
                segment_ids.append(np.full(len(seg_runs), len(self.segments), dtype=np.int32))
                rows.append(np.arange(len(seg_runs), dtype=np.int64))
                self.segments.append(entry)
                self._where.append((number, group._v_pathname))
        all_runs = np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)
        self._segment_ids = np.concatenate(segment_ids) if runs else np.zeros(0, np.int32)
        self._rows = np.concatenate(rows) if runs else np.zeros(0, np.int64)
        if limit is not None and len(all_runs) and all_runs.max() >= limit:
            raise ValueError(f"column {self.path!r} holds run {all_runs.max()}, beyond the "
                             f"trajectory's {limit} runs")
        real = all_runs >= 0  # -1 marks padding rows
        if not real.all():
            all_runs, self._segment_ids, self._rows = \
                all_runs[real], self._segment_ids[real], self._rows[real]
        self._real = real
        if len(all_runs) and np.all(all_runs[1:] > all_runs[:-1]):
            self._order = None
            self._sorted = all_runs
        else:
            self._order = np.argsort(all_runs, kind="stable")
            self._sorted = all_runs[self._order]

    def _group(self, segment: int) -> tables.Group:
        number, path = self._where[segment]
        return self.files[number].get_node(path)

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

    def has(self, run: int) -> bool:
        """Whether ``run`` has a value (one lookup)."""
        return self.locate(run) is not None

    def info(self) -> tuple[str, np.dtype | None, tuple[int, ...] | None]:
        """``(kind, dtype, shape)`` of the values: the kind of every row (``"mixed"``
        when they differ), their dtype when numeric, their shape when it is one."""
        kinds = {kind for _, _, kind, _, _ in self.segments}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        numeric = [(enc, dtype, shape) for _, enc, k, dtype, shape in self.segments
                   if enc in ("fixed", "ragged") and k != "none"]
        if not numeric or len(numeric) != len(self.segments):
            return kind, None, None
        dtypes = {np.dtype(dtype).newbyteorder("=") for _, dtype, _ in numeric}
        dtype = dtypes.pop() if len(dtypes) == 1 else None
        shapes = {shape for enc, _, shape in numeric if enc == "fixed"}
        shape = shapes.pop() if len(shapes) == 1 and all(enc == "fixed" for enc, _, _ in
                                                          numeric) else None
        return kind, dtype, shape

    def stacked(self, runs: np.ndarray) -> np.ndarray | None:
        """The values of ``runs`` (each must have one) stacked along a first axis,
        when every segment holds numeric arrays or numbers of one dtype and shape;
        else ``None``. A segment's rows are read in one slice where they lie close."""
        kind, dtype, shape = self.info()
        if dtype is None or shape is None or kind in ("list", "tuple", "mixed") or \
                any(enc != "fixed" for _, enc, _, _, _ in self.segments):
            return None
        runs = np.asarray(runs, dtype=np.int64)
        position = np.searchsorted(self._sorted, runs, side="right") - 1
        if len(runs) and (position.min() < 0 or np.any(self._sorted[position] != runs)):
            missing = runs[(position < 0) | (self._sorted[np.maximum(position, 0)] != runs)]
            raise KeyError(int(missing[0]))
        if self._order is not None:
            position = self._order[position]
        segment_of, row_of = self._segment_ids[position], self._rows[position]
        if len(runs) and segment_of[0] == segment_of[-1] and \
                row_of[-1] - row_of[0] == len(runs) - 1 and np.all(segment_of == segment_of[0]) \
                and np.all(np.diff(row_of) == 1):  # one stretch of one segment: as read
            first = int(row_of[0])
            return self._group(int(segment_of[0])).data[first:first + len(runs)]
        out = np.empty((len(runs), *shape), dtype=dtype)
        for segment in np.unique(segment_of).tolist():
            where = np.flatnonzero(segment_of == segment)
            rows = row_of[where]
            first, last = int(rows.min()), int(rows.max()) + 1
            data = self._group(segment).data
            if last - first <= 8 * len(rows):
                out[where] = data[first:last][rows - first]
            else:  # rows far apart: those rows alone (a list selects rows, with "...")
                distinct = np.unique(rows)
                out[where] = data[distinct.tolist(), ...][np.searchsorted(distinct, rows)]
        return out

    def read(self, run: int, allow_pickle: bool) -> Any:
        """The value of ``run``; ``KeyError`` if the column has none."""
        found = self.values([run], allow_pickle)
        if run not in found:
            raise KeyError(run)
        return found[run]

    def values(self, runs: Sequence[int], allow_pickle: bool = False) -> dict[int, Any]:
        """``{run: value}`` for those of ``runs`` that have a value.

        The rows wanted from a segment are read in one go (the stretch from the
        first to the last of them) unless they are few and far apart: read one
        at a time, they more than doubled the time of an exploration of small runs.
        """
        wanted: dict[int, list[tuple[int, int]]] = {}
        for run in runs:
            found = self.locate(run)
            if found is not None:
                wanted.setdefault(found[0], []).append((found[1], run))
        values: dict[int, Any] = {}
        for segment, rows in wanted.items():
            first, last = min(rows)[0], max(rows)[0] + 1
            if self.segments[segment][1] == "nodes" or 8 * len(rows) < last - first:
                for row, run in rows:
                    values[run] = self.read_rows(segment, row, row + 1, allow_pickle)[0]
            else:
                stretch = self.read_rows(segment, first, last, allow_pickle)
                for row, run in rows:
                    values[run] = stretch[row - first]
        return values

    def read_rows(self, segment: int, start: int, stop: int,
                  allow_pickle: bool = False) -> list[Any]:
        """The values in rows ``start:stop`` of segment number ``segment``."""
        name, encoding, kind, dtype, shape = self.segments[segment]
        group = self._group(segment)
        if encoding == "fixed":
            if kind == "none":
                return [None] * (stop - start)
            block = _as_stored(group.data[start:stop], dtype)
            if kind == "ndarray" and not shape:  # 0-d arrays stay arrays
                return [block[row, ...] for row in range(len(block))]
            if kind in NUMBER_TYPES:
                return [NUMBER_TYPES[kind](value) for value in block.tolist()]
            if kind == "npscalar":
                return [np.dtype(dtype).type(value) for value in block]
            if kind in ("list", "tuple"):
                return block.tolist() if kind == "list" else \
                    [tuple(value) for value in block.tolist()]
            return list(block)
        if encoding == "ragged":
            arrays = [_as_stored(flat, dtype).reshape(tuple(dims)) for flat, dims in
                      zip(group.data[start:stop], group.shapes[start:stop])]
            if kind in ("list", "tuple"):
                return [array.tolist() if kind == "list" else tuple(array.tolist())
                        for array in arrays]
            return arrays
        if encoding == "strings":
            return [bytes(value).decode("utf-8", "surrogatepass")
                    for value in group.data[start:stop]]
        return [read_value(group.data._f_get_child(f"r{row}"), allow_pickle)
                for row in range(start, stop)]

    def scalars(self, python: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """``(runs, values)`` when every segment holds scalars (or every one strings,
        given as an object array), latest value per run.

        With ``python=True``, only when they are Python numbers or ``None``, so
        that ``values.tolist()`` gives each run's value as it was (numpy scalars
        would lose their type).
        """
        if self.segments and all(enc == "strings" for _, enc, *_ in self.segments):
            values = [np.array(self.read_rows(number, 0, self._group(number).data.nrows),
                               dtype=object) for number in range(len(self.segments))]
        elif not self.segments or any(enc != "fixed" or shape or kind in ("ndarray",)
                                      or python and kind not in (*NUMBER_TYPES, "none")
                                      for _, enc, kind, _, shape in self.segments):
            return None
        else:
            values = [np.full(self._group(number).data.nrows, None, dtype=object)
                      if kind == "none" else self._group(number).data.read()
                      for number, (name, _, kind, *_) in enumerate(self.segments)]
        if len({v.dtype for v in values}) > 1:
            values = [v.astype(object) for v in values]
        flat = np.concatenate(values)[self._real]
        runs = self._sorted
        values_sorted = flat[self._order] if self._order is not None else flat
        # the latest row of each run: last of each equal run index in the stable sort
        last = np.ones(len(runs), dtype=bool)
        last[:-1] = runs[1:] != runs[:-1]
        return runs[last], values_sorted[last]
