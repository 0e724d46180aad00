"""What encoded runs are made of: parts of items, batches, and turning a part back to values.

Shared by the encoder (:mod:`.encode`), which makes parts where runs execute,
and the columns (:mod:`.columns`), which write them into a file or copy them
between files.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tables

__all__ = ["PackedPart", "RawPart", "NodesPart", "EncodedBatch", "unpack", "filters",
           "memory_file", "RUN_ROW", "PACK_MIN_ROW_BYTES"]

_counter = itertools.count()


def filters(complib: str, complevel: int, checksum: bool) -> tables.Filters:
    """The PyTables filters of stacked data compressed with ``complib`` at ``complevel``."""
    if not complevel:
        return tables.Filters(complevel=0, fletcher32=checksum)
    return tables.Filters(complevel=complevel, complib=complib, shuffle=True,
                          fletcher32=checksum)


#: The run table's row: one per finished run.
RUN_ROW = np.dtype([("idx", np.int64), ("status", np.int8),
                    ("started", np.float64), ("duration", np.float64)])
#: Items whose rows are at least this large are compressed where they are produced.
PACK_MIN_ROW_BYTES = 4096
_counter = itertools.count()



@dataclass
class PackedPart:
    """Rows of one fixed-shape item, compressed into whole HDF5 chunks.

    ``runs`` has one entry per row, ``-1`` for the padding rows that fill the
    last chunk. The compressed chunks lie end to end in one buffer, ``data``:
    pickle protocol 5, and so dask, sends such an array without copying it,
    several times faster than a list of bytes objects. Chunk ``i`` is
    ``data[bounds[i]:bounds[i + 1]]``, with HDF5 filter mask ``masks[i]``.
    ``checksum``: the chunks end with HDF5's Fletcher32 checksum (their dataset
    has that filter).
    """

    kind: str
    dtype: str
    shape: tuple[int, ...]
    runs: np.ndarray
    chunk_rows: int
    data: np.ndarray
    bounds: np.ndarray
    masks: list[int]
    complib: str
    complevel: int
    checksum: bool = False

    @classmethod
    def of_chunks(cls, kind: str, dtype: str, shape: tuple[int, ...], runs: np.ndarray,
                  chunk_rows: int, chunks: list[tuple[Any, int]], complib: str,
                  complevel: int, checksum: bool = False) -> PackedPart:
        """A part from its compressed chunks, given as ``(bytes-like, filter mask)`` pairs."""
        bounds = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum([memoryview(chunk).nbytes for chunk, _ in chunks], out=bounds[1:])
        data = np.frombuffer(b"".join(chunk for chunk, _ in chunks), dtype=np.uint8)
        return cls(kind, dtype, shape, runs, chunk_rows, data, bounds,
                   [int(mask) for _, mask in chunks], complib, complevel, checksum)

    def chunks(self) -> Iterator[tuple[np.ndarray, int]]:
        """``(compressed chunk, filter mask)`` of each chunk, in row order (views of ``data``)."""
        for i, mask in enumerate(self.masks):
            yield self.data[self.bounds[i]:self.bounds[i + 1]], mask


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
    items: dict[tuple[str, str], dict[str, Sequence[PackedPart | RawPart | NodesPart]]] = field(
        default_factory=dict)

    @property
    def runs(self) -> np.ndarray:
        """Indices of the runs in the batch."""
        return self.run_rows["idx"]


def memory_file() -> tables.File:
    """A new HDF5 file in memory only (for encoding chunks as a file would hold them)."""
    name = f"explorer-pack-{os.getpid()}-{next(_counter)}.h5"
    return tables.open_file(name, "w", driver="H5FD_CORE", driver_core_backing_store=0)


def unpack(part: PackedPart) -> RawPart:
    """The plain values of a packed part (padding rows left out)."""
    handle = memory_file()
    try:
        data = handle.create_earray("/", "data", tables.Atom.from_dtype(np.dtype(part.dtype)),
                                    (0, *part.shape),
                                    filters=filters(part.complib, part.complevel, part.checksum),
                                    chunkshape=(part.chunk_rows, *part.shape))
        data.truncate(len(part.runs))
        zeros = (0,) * len(part.shape)
        for i, (chunk, mask) in enumerate(part.chunks()):
            data.write_chunk((i * part.chunk_rows, *zeros), chunk, filter_mask=mask)
        block = data.read()
    finally:
        handle.close()
    keep = part.runs >= 0
    values = list(block[keep])
    if part.kind in ("list", "tuple"):
        values = [v.tolist() if part.kind == "list" else tuple(v.tolist()) for v in values]
    return RawPart(part.runs[keep].tolist(), values)
