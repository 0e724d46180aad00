"""Workers storing their runs themselves (``storage="lock"``)."""
from __future__ import annotations

from typing import Any, ContextManager

from ..lockfile import FileClaim
from .encode import EncodedBatch, EncodeSettings

__all__ = ["LockedAppender"]


class LockedAppender:
    """Writes batches into the file's journal from a worker, under a cluster-wide lock.

    The batch becomes a journal shard next to the main file (see
    :mod:`.journal`), written atomically, so a worker killed mid-write leaves
    nothing half-written; the environment moves the shards into the main file
    when the runs end. Writes are serialized by the back end's lock (a
    ``distributed.Lock`` named after the file) and, in case that lock were ever
    held twice (an expired lease), by an OS lock on ``<file>.writer.lock``: a
    second writer is refused with :class:`~explorer.errors.FileLockedError`
    rather than allowed to interleave.

    Parameters
    ----------
    filename, name : str
        The main file and the trajectory.
    settings : EncodeSettings
        Compression settings of the file.
    lock : context manager
        The back end's lock.
    """

    def __init__(self, filename: str, name: str, settings: EncodeSettings,
                 lock: ContextManager[Any]):
        self.filename = filename
        self.name = name
        self.settings = settings
        self.lock = lock

    def __call__(self, batch: EncodedBatch, name: str | None = None) -> None:
        """Write ``batch``; ``name`` (unique to the chunk) makes a rerun replace it."""
        from .journal import Journal
        from .store import Hdf5Store

        with self.lock, FileClaim(self.filename, "a worker writing runs",
                                  suffix=".writer.lock"):
            store = Hdf5Store(self.filename, self.name, complib=self.settings.complib,
                              complevel=self.settings.complevel)
            store.allow_pickle = self.settings.allow_pickle
            Journal(store).write(batch, name)
