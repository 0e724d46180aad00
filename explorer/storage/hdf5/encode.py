"""Turning run records into write-ready batches, anywhere: worker or writer.

Encoding is the expensive part of storing: stacking arrays and compressing
them. :func:`encode_records` does it where the records are (a dask worker, say)
and produces an :class:`EncodedBatch` in which large fixed-shape items are
already compressed HDF5 chunks (:class:`PackedPart`). The writer then only copies
those chunks into the file with PyTables' direct chunk writes, so a single writer
does I/O and nothing else. Small and irregular items travel as plain values
(:class:`RawPart`) and are stacked by the writer.
"""
from __future__ import annotations

import itertools
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tables

from ...records import RunRecord, RunStatus
from .columns import chunk_rows, signature

__all__ = ["EncodeSettings", "PackedPart", "RawPart", "NodesPart", "EncodedBatch", "encode_records",
           "pack", "unpack", "RUN_ROW", "PACK_MIN_ROW_BYTES"]

#: The run table's row: one per finished run.
RUN_ROW = np.dtype([("idx", np.int64), ("status", np.int8),
                    ("started", np.float64), ("duration", np.float64)])
#: Items whose rows are at least this large are compressed where they are produced.
PACK_MIN_ROW_BYTES = 4096
_counter = itertools.count()


@dataclass(frozen=True)
class EncodeSettings:
    """How stacked data is compressed (must match the file's datasets)."""

    complib: str = "blosc:lz4"
    complevel: int = 5
    allow_pickle: bool = False

    def filters(self) -> tables.Filters:
        """The PyTables filters these settings describe."""
        if not self.complevel:
            return tables.Filters(complevel=0)
        return tables.Filters(complevel=self.complevel, complib=self.complib, shuffle=True)


@dataclass
class PackedPart:
    """Rows of one fixed-shape item, compressed into whole HDF5 chunks.

    ``runs`` has one entry per row, ``-1`` for the padding rows that fill the
    last chunk.
    """

    kind: str
    dtype: str
    shape: tuple[int, ...]
    runs: np.ndarray
    chunk_rows: int
    chunks: list[tuple[bytes, int]]
    complib: str
    complevel: int


@dataclass
class RawPart:
    """Rows of one item as plain values, stacked by the writer."""

    runs: list[int]
    values: list[Any]


@dataclass
class NodesPart:
    """Rows stored as one node each, copied from another open file as they are.

    Used when moving runs between files: the nodes are copied, never decoded, so
    nothing pickled is ever read on the way.
    """

    kind: str
    runs: list[int]
    nodes: list[Any]


@dataclass
class EncodedBatch:
    """Everything a batch of runs writes: run-table rows and item parts.

    ``items`` maps ``(template, comment)`` to ``{item: [parts]}``; templates
    ``"returns"`` and ``"errors"`` hold return values and failures.
    """

    run_rows: np.ndarray
    items: dict[tuple[str, str], dict[str, list[PackedPart | RawPart | NodesPart]]] = field(
        default_factory=dict)

    @property
    def runs(self) -> np.ndarray:
        """Indices of the runs in the batch."""
        return self.run_rows["idx"]


def _memory_file() -> tables.File:
    name = f"explorer-pack-{os.getpid()}-{next(_counter)}.h5"
    return tables.open_file(name, "w", driver="H5FD_CORE", driver_core_backing_store=0)


def pack(kind: str, dtype: str, shape: tuple[int, ...], runs: list[int], values: list[Any],
         settings: EncodeSettings) -> PackedPart:
    """Compress ``values`` (one per run, all of ``dtype`` and ``shape``) into chunks."""
    row_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    rows = chunk_rows(row_bytes)
    padded = -(-len(values) // rows) * rows
    block = np.empty((padded, *shape), dtype=dtype)
    if shape:
        np.stack(values, out=block[:len(values)])
    else:
        block[:len(values)] = values
    block[len(values):] = 0
    padded_runs = np.full(padded, -1, dtype=np.int64)
    padded_runs[:len(runs)] = runs
    handle = _memory_file()
    try:
        data = handle.create_earray("/", "data", tables.Atom.from_dtype(np.dtype(dtype)),
                                    (0, *shape), filters=settings.filters(),
                                    chunkshape=(rows, *shape))
        data.append(block)
        zeros = (0,) * len(shape)
        chunks = []
        for start in range(0, padded, rows):
            info = data.chunk_info((start, *zeros))
            chunks.append((bytes(data.read_chunk((start, *zeros))), int(info.filter_mask)))
    finally:
        handle.close()
    return PackedPart(kind, dtype, tuple(shape), padded_runs, rows, chunks,
                      settings.complib, settings.complevel)


def unpack(part: PackedPart) -> RawPart:
    """The plain values of a packed part (padding rows left out)."""
    settings = EncodeSettings(part.complib, part.complevel)
    handle = _memory_file()
    try:
        data = handle.create_earray("/", "data", tables.Atom.from_dtype(np.dtype(part.dtype)),
                                    (0, *part.shape), filters=settings.filters(),
                                    chunkshape=(part.chunk_rows, *part.shape))
        data.truncate(len(part.runs))
        zeros = (0,) * len(part.shape)
        for i, (chunk, mask) in enumerate(part.chunks):
            data.write_chunk((i * part.chunk_rows, *zeros), np.frombuffer(chunk, np.uint8),
                             filter_mask=mask)
        block = data.read()
    finally:
        handle.close()
    keep = part.runs >= 0
    values = list(block[keep])
    if part.kind in ("list", "tuple"):
        values = [v.tolist() if part.kind == "list" else tuple(v.tolist()) for v in values]
    return RawPart(part.runs[keep].tolist(), values)


def _parts(runs: list[int], values: list[Any], settings: EncodeSettings) -> list[
        PackedPart | RawPart]:
    groups: dict[tuple, tuple[list[int], list[Any]]] = {}
    for run, value in zip(runs, values):
        encoding, kind, dtype, shape = signature(value, settings.allow_pickle)
        packable = encoding == "fixed" and shape and kind == "ndarray" and \
            int(np.prod(shape)) * np.dtype(dtype).itemsize >= PACK_MIN_ROW_BYTES
        key = ("pack", kind, dtype, len(shape)) if packable else ("raw",)
        rows = groups.setdefault(key, ([], []))
        rows[0].append(run)
        rows[1].append(value)
    parts: list[PackedPart | RawPart] = []
    for key, (part_runs, part_values) in groups.items():
        shapes = {np.shape(v) for v in part_values} if key[0] == "pack" else set()
        if key[0] == "pack" and len(shapes) == 1:
            parts.append(pack(key[1], key[2], shapes.pop(), part_runs, part_values, settings))
        else:  # raw, or arrays whose shape varies (stored ragged)
            parts.append(RawPart(part_runs, part_values))
    return parts


def encode_records(records: list[RunRecord], settings: EncodeSettings) -> EncodedBatch:
    """Encode what runs produced: run-table rows, return values, errors and results."""
    run_rows = np.array([(r.idx, int(r.status), r.started, r.duration) for r in records],
                        dtype=RUN_ROW)
    columns: dict[tuple[str, str], dict[str, tuple[list[int], list[Any]]]] = \
        defaultdict(dict)

    def add(template: str, comment: str, idx: int, items: dict[str, Any]) -> None:
        target = columns[(template, comment)]
        for item, value in items.items():
            rows = target.setdefault(item, ([], []))
            rows[0].append(idx)
            rows[1].append(value)

    for record in records:
        if record.status == RunStatus.COMPLETED:
            add("returns", "", record.idx, {"value": record.value})
            for template, (comment, items) in record.results.items():
                add(template, comment, record.idx, items)
        else:
            add("errors", "", record.idx, {"error": record.error, "traceback": record.traceback})
    batch = EncodedBatch(run_rows)
    for key, items in columns.items():
        batch.items[key] = {item: _parts(runs, values, settings)
                            for item, (runs, values) in items.items()}
    return batch
