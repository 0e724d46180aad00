"""Workers appending to the main file themselves (``storage="lock"``)."""
from __future__ import annotations

from typing import Any, ContextManager

from ..lockfile import FileClaim
from .encode import EncodedBatch, EncodeSettings

__all__ = ["LockedAppender"]


class LockedAppender:
    """Appends batches to a file while holding a cluster-wide lock.

    Besides the back end's lock (a ``distributed.Lock`` named after the file),
    each write takes an OS lock on ``<file>.writer.lock``: should the cluster lock
    ever be held twice (an expired lease), the second writer is refused with
    :class:`~explorer.errors.FileLockedError` instead of corrupting the file.

    Parameters
    ----------
    filename, name : str
        The file and the trajectory.
    settings : EncodeSettings
        Compression settings of the file.
    lock : context manager
        The back end's lock.
    """

    def __init__(self, filename: str, name: str, settings: EncodeSettings, lock: ContextManager[Any]):
        self.filename = filename
        self.name = name
        self.settings = settings
        self.lock = lock

    def __call__(self, batch: EncodedBatch) -> None:
        from .store import Hdf5Store

        with self.lock, FileClaim(self.filename, "a worker appending runs",
                                  suffix=".writer.lock"):
            store = Hdf5Store(self.filename, self.name, complib=self.settings.complib,
                              complevel=self.settings.complevel)
            store.allow_pickle = self.settings.allow_pickle
            store.append_batch(batch)
