"""How finished runs reach the main file without ever putting it at risk.

The main file only changes by atomic replacement: a write goes to a copy, which
``os.replace`` moves over the file when it is complete (see :mod:`.files`).
During an exploration the :class:`RunAppender` writes each batch of finished
runs into such an open copy as it arrives and commits it every few seconds, so
a kill at any moment leaves the file as of the last commit.

Workers that store their runs themselves (``storage="lock"``) cannot write the
driver's copy: each of their batches becomes a shard file in
``<file>.journal/<trajectory>/``, written atomically (a temporary file moved
into place). :meth:`Journal.merge` copies shards into a write of the main file
(compressed chunks are copied as they are) and records their names in it; the
shards are deleted after that write is committed. A kill before the commit
leaves the old file and the shards; one after it but before the deletions
leaves shards whose names the file already lists, which the next merge deletes
without copying them again.
"""
from __future__ import annotations

import contextlib
import glob
import itertools
import os
import time
from typing import TYPE_CHECKING, Any, Iterator

import tables

from ...errors import FileLockedError
from ..lockfile import FileClaim
from .checksum import mark
from .damage import reported
from .encode import EncodedBatch
from .files import Transaction, disk_errors, reading, release, rewriting
from .unpickling import refusing

if TYPE_CHECKING:
    from .store import Hdf5Store

__all__ = ["Journal", "RunAppender", "journal_root"]

_sequence = itertools.count()


def journal_root(filename: str) -> str:
    """The folder of a file's journal: next to the file a path resolves to, so that
    every name of the file shares one journal."""
    return f"{os.path.realpath(filename)}.journal"


class Journal:
    """The shard files of one trajectory's main file.

    Parameters
    ----------
    store : Hdf5Store
        The main file's store.
    """

    def __init__(self, store: "Hdf5Store"):
        self.store = store
        self.directory = os.path.join(journal_root(store.filename), f"{store.name}-{store.uid}")

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
        with rewriting(path, claim=False) as (handle, _):  # a rerun replaces, never adds
            shard.create_skeleton(handle)
            shard.write_batch(handle, batch)
        return path

    def merge(self, handle: tables.File) -> list[str]:
        """Copy the shards not yet in the file into ``handle`` (a write of the main file).

        Returns the shard paths to delete once that write is committed. The
        shards' names are recorded in the file in the same write, so shards a
        crash leaves behind after the commit are deleted by the next merge
        without being copied twice.
        """
        from .store import Hdf5Store

        shards = self.shards()
        log_path = f"{self.store.path}/merged_shards"
        present = {os.path.basename(path) for path in shards}
        recorded = {bytes(row).decode() for row in handle.get_node(log_path)} \
            if log_path in handle else set()
        merged = present & recorded
        for path in shards:
            if os.path.basename(path) in merged:
                continue
            shard = Hdf5Store(path, self.store.name)
            with reading(path) as source:
                self.store.write_batch(handle, shard.read_batch(source))
            release(path)
            merged.add(os.path.basename(path))
        if merged != recorded:
            mark(handle.get_node(self.store.path))  # its child is replaced
            if log_path in handle:
                handle.remove_node(log_path)
            log = handle.create_vlarray(self.store.path, "merged_shards", tables.VLStringAtom(),
                                        "journal shards already copied into this file")
            for name in sorted(merged):
                log.append(name.encode())
        return shards

    def tidy(self) -> None:
        """Remove what writers killed mid-write left in the journal.

        Their unfinished shards (``*.tmp``) and the folders left empty go, in
        every trajectory's folder of the file's journal. Workers write shards
        holding ``<file>.writer.lock`` (see :mod:`.locked`), so whoever holds
        it knows that no ``*.tmp`` there is being written; while a worker
        writes, the tidying waits for a later call.
        """
        root = os.path.dirname(self.directory)
        if not os.path.isdir(root):
            return
        folders = [entry.path for entry in os.scandir(root) if entry.is_dir()]
        stale = glob.glob(os.path.join(glob.escape(root), "*", "*.tmp"))
        if folders and not stale and all(os.listdir(folder) for folder in folders):
            return  # nothing to tidy
        try:
            claim = FileClaim(self.store.filename, "explorer tidying the journal",
                              suffix=".writer.lock")
        except (FileLockedError, OSError):  # a worker writes, or a read-only folder
            return
        with claim:
            for leftover in glob.glob(os.path.join(glob.escape(root), "*", "*.tmp")):
                with contextlib.suppress(OSError):
                    os.remove(leftover)
            for folder in [*folders, root]:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only if empty

    def compact(self, session: dict[str, Any] | None = None) -> None:
        """Move every shard into the main file, with ``session`` (a record for the
        file's session log) in the same transaction."""
        RunAppender(self, 0.0).commit(session)


class RunAppender:
    """Writes finished runs into the main file while an exploration goes on.

    Batches are written as they arrive into an open copy of the file
    (:class:`~.files.Transaction`), and committed (moved over the file)
    every ``interval`` seconds or more: at least ten times the last commit's
    cost, so that copying a large file stays a small part of the time. Shards
    written by workers (``storage="lock"``) are merged at each commit. A
    crash loses at most the runs since the last commit (they run again on
    resume) and never damages the file.

    Parameters
    ----------
    journal : Journal
        The main file's journal (its store is the file written).
    interval : float
        Seconds between commits, at least.
    """

    def __init__(self, journal: Journal, interval: float):
        self.journal = journal
        self.store = journal.store
        self.interval = interval
        self._transaction = Transaction(self.store.filename)
        self._committed = time.monotonic()

    @contextlib.contextmanager
    def _step(self) -> Iterator[None]:
        """A write of the copy: if it fails, everything since the last commit is
        taken back; either way the store forgets what it read of the file."""
        try:
            with refusing(), reported(self.store.filename, "storing runs"), \
                    disk_errors(self.store.filename):
                yield
        except BaseException:
            self._transaction.abort()
            raise
        finally:
            self.store._invalidate()

    def add(self, batch: EncodedBatch) -> None:
        """Write a batch of finished runs (committed later).

        A batch that fails half-written takes back everything since the last
        commit: a run is never stored in part.
        """
        with self._step():
            self.store.write_batch(self._transaction.handle, batch)
            self._transaction.write_back()

    def due(self, interval: float | None = None) -> bool:
        """Whether a commit is due (``interval`` overrides the usual one)."""
        wait = max(self.interval if interval is None else interval, 10 * self._transaction.cost)
        return time.monotonic() - self._committed >= wait and \
            (self._transaction.is_open or bool(self.journal.shards()))

    def commit(self, session: dict[str, Any] | None = None) -> None:
        """Merge the workers' shards, add ``session`` to the session log, and commit."""
        shards = []
        with self._step():
            if self._transaction.is_open or session is not None or self.journal.shards():
                handle = self._transaction.handle
                shards = self.journal.merge(handle)
                if session is not None:
                    self.store.write_session(handle, session)
            self._transaction.commit()
        for path in shards:
            os.remove(path)
        self.journal.tidy()
        self._committed = time.monotonic()
