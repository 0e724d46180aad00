"""Turning run records into write-ready batches, anywhere: worker or writer.

Encoding is the expensive part of storing: stacking arrays and compressing them.
:class:`BatchEncoder` does it where the runs execute (a dask worker, say), run
by run as they finish, and produces an :class:`EncodedBatch` in which large
fixed-shape items are already compressed HDF5 chunks (:class:`PackedPart`). The
writer then only copies those chunks into the file with PyTables' direct chunk
writes, so a single writer does I/O and nothing else. Small and irregular items
travel as plain values (:class:`RawPart`) and are stacked by the writer.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import tables

from ...records import RunStatus
from .. import base
from ..base import Encoding
from .codec import chunk_compressor
from .columns import chunk_rows, signature
from .parts import (
    PACK_MIN_ROW_BYTES,
    RUN_ROW,
    EncodedBatch,
    PackedPart,
    RawPart,
    filters,
    memory_file,
    unpack,
)

__all__ = ["EncodeSettings", "BatchEncoder"]

@dataclass(frozen=True)
class EncodeSettings(Encoding):
    """How stacked data is compressed (must match the file's datasets)."""

    complib: str = "blosc:lz4"
    complevel: int = 5
    allow_pickle: bool = False
    #: HDF5's Fletcher32 checksum on every chunk, checked on read.
    checksum: bool = True

    def encoder(self) -> BatchEncoder:
        """A new encoder of run records for a file of these settings."""
        return BatchEncoder(self)

    def filters(self) -> tables.Filters:
        """The PyTables filters these settings describe."""
        return filters(self.complib, self.complevel, self.checksum)


class _Packer:
    """Compresses the rows of one fixed-shape item chunk by chunk, as they arrive.

    Rows are copied into a buffer of one HDF5 chunk; a full buffer is
    compressed into the bytes the file's filter would store for it, by
    python-blosc when the codec allows (see :mod:`.codec`), or else by writing
    it to the single chunk of an in-memory dataset and reading the compressed
    chunk back. Each run's array can thus be freed as soon as it is copied, and
    the data is compressed while it is still in the processor's cache.
    """

    def __init__(self, kind: str, dtype: str, shape: tuple[int, ...], settings: EncodeSettings):
        self.kind, self.dtype, self.shape, self.settings = kind, dtype, shape, settings
        itemsize = np.dtype(dtype).itemsize
        row_bytes = int(np.prod(shape, dtype=np.int64)) * itemsize
        self.rows = chunk_rows(row_bytes)
        self.runs: list[int] = []
        self.chunks: list[tuple[Any, int]] = []  # (bytes-like, filter mask)
        self._buffer = np.empty((self.rows, *shape), dtype=dtype)
        self._filled = 0
        filters = settings.filters()
        self._compressor = chunk_compressor(filters.complib, filters.complevel, filters.shuffle,
                                            itemsize, self.rows * row_bytes, filters.fletcher32)
        self._handle = None
        if self._compressor is None:
            self._handle = memory_file()
            self._data = self._handle.create_earray(
                "/", "data", tables.Atom.from_dtype(np.dtype(dtype)), (0, *shape),
                filters=filters, chunkshape=(self.rows, *shape))
            self._data.truncate(self.rows)
            self._origin = (0,) * (1 + len(shape))

    def add(self, run: int, value: np.ndarray) -> None:
        self._buffer[self._filled] = value
        self._filled += 1
        self.runs.append(run)
        if self._filled == self.rows:
            self._compress()

    def add_rows(self, runs: np.ndarray, block: np.ndarray) -> None:
        """Add stacked rows (one per run) at once (copied: ``block`` may be reused)."""
        done = 0
        while done < len(runs):
            if not self._filled and len(runs) - done >= self.rows:
                self._compress(block[done:done + self.rows])  # a whole chunk, as it is
                done += self.rows
                continue
            take = min(self.rows - self._filled, len(runs) - done)
            self._buffer[self._filled:self._filled + take] = block[done:done + take]
            self._filled += take
            done += take
            if self._filled == self.rows:
                self._compress()
        self.runs += runs.tolist()

    def _compress(self, rows: np.ndarray | None = None) -> None:
        """Compress one chunk: ``rows`` (a whole chunk), or the buffer padded with zeros."""
        if rows is None:
            self._buffer[self._filled:] = 0
            rows = self._buffer
        if self._compressor is not None:
            self.chunks.append((self._compressor(np.ascontiguousarray(rows)), 0))
        else:
            self._data[:] = rows
            info = self._data.chunk_info(self._origin)
            self.chunks.append((self._data.read_chunk(self._origin), int(info.filter_mask)))
        self._filled = 0

    def finish(self) -> PackedPart:
        """The compressed rows; the last chunk is padded with rows of run ``-1``."""
        try:
            if self._filled:
                self._compress()
        finally:
            self.abandon()
        runs = np.full(len(self.chunks) * self.rows, -1, dtype=np.int64)
        runs[:len(self.runs)] = self.runs
        return PackedPart.of_chunks(self.kind, self.dtype, self.shape, runs, self.rows,
                                    self.chunks, self.settings.complib, self.settings.complevel,
                                    self.settings.checksum)

    def abandon(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class _ItemRows:
    """The rows of one item: packers for large fixed-shape arrays, plain values for the rest."""

    def __init__(self) -> None:
        self.packers: dict[tuple[str, str, tuple[int, ...]], _Packer] = {}
        self.runs: list[int] = []
        self.values: list[Any] = []

    def _packer(self, dtype: np.dtype, shape: tuple[int, ...],
                settings: EncodeSettings) -> _Packer | None:
        """The packer of arrays of ``dtype`` and ``shape``, if their rows are worth packing."""
        key = ("ndarray", dtype.str, shape)
        packer = self.packers.get(key)
        if packer is None:
            if not shape or dtype.kind not in "biufc" or not dtype.isnative or \
                    math.prod(shape) * dtype.itemsize < PACK_MIN_ROW_BYTES:
                return None
            packer = self.packers[key] = _Packer(*key, settings)
        return packer

    def add(self, run: int, value: Any, settings: EncodeSettings) -> None:
        encoding, kind, dtype, shape = signature(value, settings.allow_pickle)
        packer = self._packer(np.dtype(dtype), shape, settings) \
            if encoding == "fixed" and kind == "ndarray" else None
        if packer is not None:
            packer.add(run, value)
        else:
            self.runs.append(run)
            self.values.append(value)

    def add_block(self, runs: np.ndarray, block: np.ndarray, settings: EncodeSettings) -> None:
        """Add one row per run from a stacked array (``block[i]`` is run ``runs[i]``'s)."""
        shape = block.shape[1:]
        packer = self._packer(block.dtype, shape, settings)
        if packer is not None:
            packer.add_rows(runs, block)
        else:  # small rows travel as plain values (copies), as when runs add them one by one
            self.runs += runs.tolist()
            self.values += block.tolist() if not shape else list(block.copy())

    def parts(self) -> list[PackedPart | RawPart]:
        """Packed parts, one per dtype; arrays whose shape varies become plain rows."""
        parts: list[PackedPart | RawPart] = []
        families: dict[tuple[str, str, int], list[PackedPart]] = defaultdict(list)
        for (kind, dtype, shape), packer in self.packers.items():
            families[(kind, dtype, len(shape))].append(packer.finish())
        for family in families.values():
            if len(family) == 1:
                parts.append(family[0])
            else:  # stored ragged, as plain rows
                for part in family:
                    raw = unpack(part)
                    self.runs += raw.runs
                    self.values += raw.values
        if self.runs:
            parts.append(RawPart(self.runs, self.values))
        return parts

    def abandon(self) -> None:
        for packer in self.packers.values():
            packer.abandon()


class BatchEncoder(base.BatchEncoder):
    """Encodes run records one at a time into an :class:`EncodedBatch`.

    Large fixed-shape arrays are compressed as soon as a chunk's worth of runs
    has produced them, so an encoder holds about one compressed chunk per item
    in raw form, however many runs it encodes.

    Parameters
    ----------
    settings : EncodeSettings
        The compression of the file the batch is for.
    """

    def __init__(self, settings: EncodeSettings):
        self.settings = settings
        self._rows: list[tuple[int, int, float, float]] = []
        self._items: dict[tuple[str, str], dict[str, _ItemRows]] = \
            defaultdict(lambda: defaultdict(_ItemRows))

    def add_items(self, template: str, comment: str, idx: int, items: dict[str, Any]) -> None:
        """Encode run ``idx``'s items of result ``template`` (no run-table row)."""
        target = self._items[(template, comment)]
        for item, value in items.items():
            target[item].add(idx, value, self.settings)

    def add_row(self, idx: int, status: int, started: float, duration: float) -> None:
        """Add a run-table row alone (its items come through :meth:`add_items`)."""
        self._rows.append((idx, int(status), started, duration))

    def add_column(self, template: str, comment: str, item: str, runs: np.ndarray,
                   values: np.ndarray | list[Any]) -> None:
        """Encode one item of many runs (no run-table rows); a stacked array stays stacked."""
        target = self._items[(template, comment)][item]
        if isinstance(values, np.ndarray) and values.dtype.kind != "O":
            target.add_block(np.asarray(runs), values, self.settings)
        else:
            for idx, value in zip(np.asarray(runs).tolist(), values):
                target.add(idx, value, self.settings)

    def add_block(self, runs: np.ndarray, started: float, seconds: float, template: str,
                  comment: str, items: dict[str, np.ndarray]) -> None:
        """Encode completed runs whose items come stacked (``items[name][i]`` is run ``runs[i]``'s).

        The runs return ``None``; ``seconds`` (their total time) is shared out evenly.
        """
        n = len(runs)
        duration = seconds / n if n else 0.0
        self._rows += [(idx, int(RunStatus.COMPLETED), started + i * duration, duration)
                       for i, idx in enumerate(runs.tolist())]
        returns = self._items[("returns", "")]["value"]
        returns.runs += runs.tolist()
        returns.values += [None] * n
        target = self._items[(template, comment)]
        for item, block in items.items():
            target[item].add_block(runs, block, self.settings)

    def finish(self) -> EncodedBatch:
        """The batch of every record added."""
        batch = EncodedBatch(np.array(self._rows, dtype=RUN_ROW))
        try:
            for key, items in self._items.items():
                batch.items[key] = {item: rows.parts() for item, rows in items.items()}
        finally:
            self.abandon()
        return batch

    def abandon(self) -> None:
        """Release the in-memory files of the encoding (after an error, say)."""
        for items in self._items.values():
            for rows in items.values():
                rows.abandon()
        self._items.clear()

