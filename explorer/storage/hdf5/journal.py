"""The journal: runs land in small shard files first, then move into the main file.

While an exploration runs, the main file is not touched. Each batch of finished
runs is written to its own shard file in ``<file>.journal/<trajectory>/``,
atomically (a temporary file moved into place), so a kill at any moment leaves
either the whole shard or none of it. :meth:`Journal.compact` then copies every
shard into the main file in one atomic transaction (compressed chunks are copied
as they are), records the shards' names in the file, and deletes the shards. A
compaction interrupted before its end leaves the old file and the shards; one
interrupted after it but before the deletions leaves shards whose names the
file already lists, which the next compaction deletes without copying again.
"""
from __future__ import annotations

import glob
import itertools
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import tables

from .encode import EncodedBatch
from .files import reading, release, rewriting, writing

if TYPE_CHECKING:
    from .store import Hdf5Store

__all__ = ["Journal", "merge_batches"]

_sequence = itertools.count()


def merge_batches(batches: list[EncodedBatch]) -> EncodedBatch:
    """One batch holding the runs of several."""
    merged = EncodedBatch(np.concatenate([batch.run_rows for batch in batches]))
    for batch in batches:
        for key, items in batch.items.items():
            target = merged.items.setdefault(key, {})
            for item, parts in items.items():
                target.setdefault(item, []).extend(parts)
    return merged


class Journal:
    """The shard files of one trajectory's main file.

    Parameters
    ----------
    store : Hdf5Store
        The main file's store.
    """

    def __init__(self, store: "Hdf5Store"):
        self.store = store
        self.directory = os.path.join(f"{store.filename}.journal", f"{store.name}-{store.uid}")

    def shards(self) -> list[str]:
        """Complete shard files, oldest first."""
        return sorted(glob.glob(os.path.join(self.directory, "*.h5")))

    def write(self, batch: EncodedBatch, name: str | None = None) -> str:
        """Write ``batch`` as a shard (atomically) and return its path.

        A ``name`` makes the write idempotent: writing the same runs again under
        the same name (a chunk rerun after its worker died) replaces the shard
        instead of adding a second copy.
        """
        from .store import Hdf5Store

        os.makedirs(self.directory, exist_ok=True)
        name = f"{name}.h5" if name else \
            f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence):06d}.h5"
        path = os.path.join(self.directory, name)
        shard = Hdf5Store(path, self.store.name, complib=self.store.settings.complib,
                          complevel=self.store.settings.complevel)
        shard.allow_pickle = self.store.allow_pickle
        with rewriting(path) as (handle, _):  # a fresh file: a rerun replaces, never adds
            shard.create_skeleton(handle)
            shard.write_batch(handle, batch)
        return path

    def compact(self, session: dict[str, Any] | None = None,
                batch: EncodedBatch | None = None) -> int:
        """Move every shard into the main file; return how many runs moved.

        ``batch`` (runs not yet in a shard) and ``session`` (a record for the
        file's session log) are written in the same transaction.
        """
        shards = self.shards()
        if not shards and session is None and batch is None:
            return 0
        from .store import Hdf5Store

        moved = 0
        with writing(self.store.filename) as handle:
            log_path = f"{self.store.path}/merged_shards"
            present = {os.path.basename(path) for path in shards}
            merged = present & ({bytes(row).decode() for row in handle.get_node(log_path)}
                                if log_path in handle else set())
            for path in shards:
                if os.path.basename(path) in merged:
                    continue
                shard = Hdf5Store(path, self.store.name)
                with reading(path) as source:
                    shard_batch = shard.read_batch(source)
                    self.store.write_batch(handle, shard_batch)
                release(path)
                merged.add(os.path.basename(path))
                moved += len(shard_batch.run_rows)
            if batch is not None:
                self.store.write_batch(handle, batch)
                moved += len(batch.run_rows)
            if log_path in handle:
                handle.remove_node(log_path)
            log = handle.create_vlarray(self.store.path, "merged_shards", tables.VLStringAtom(),
                                        "journal shards already copied into this file")
            for name in sorted(merged):
                log.append(name.encode())
            if session is not None:
                self.store.write_session(handle, session)
        self.store._invalidate()
        for path in shards:
            os.remove(path)
        return moved
