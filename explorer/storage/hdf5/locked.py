"""Workers storing their runs themselves (``storage="lock"``)."""
from __future__ import annotations

from ..lockfile import FileClaim
from .encode import EncodedBatch, EncodeSettings
from .journal import Journal
from .store import Hdf5Store

__all__ = ["LockedAppender", "WRITER_WAIT"]

#: Seconds a worker waits for the other workers' shard writes before giving up.
WRITER_WAIT = 600.0


class LockedAppender:
    """Writes batches into the file's journal from a worker, one worker at a time.

    The batch becomes a journal shard next to the main file (see
    :mod:`.journal`), written atomically, so a worker killed mid-write leaves
    nothing half-written; the environment moves the shards into the main file
    at each commit. Writers take turns through an OS lock on
    ``<file>.writer.lock`` (``flock``, on the file system the workers share),
    which the kernel releases when its holder dies, however it dies: a worker
    killed while it writes holds the others up for no longer than that. A
    cluster-wide lock with a lease (``distributed.Lock``) would keep them
    waiting until the lease expired.

    Parameters
    ----------
    filename, name : str
        The main file and the trajectory.
    settings : EncodeSettings
        Compression settings of the file.
    wait : float
        Seconds to wait for the other writers before raising
        :class:`~explorer.errors.FileLockedError`.
    """

    def __init__(self, filename: str, name: str, settings: EncodeSettings,
                 wait: float = WRITER_WAIT):
        self.filename = filename
        self.name = name
        self.settings = settings
        self.wait = wait

    def __call__(self, batch: EncodedBatch, name: str | None = None) -> None:
        """Write ``batch``; ``name`` (unique to the chunk) makes a rerun replace it."""
        with FileClaim(self.filename, "a worker writing runs", suffix=".writer.lock",
                       wait=self.wait):
            store = Hdf5Store(self.filename, self.name, complib=self.settings.complib,
                              complevel=self.settings.complevel)
            store.allow_pickle = self.settings.allow_pickle
            Journal(store).write(batch, name)
