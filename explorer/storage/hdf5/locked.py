"""Workers storing their runs themselves (``storage="lock"``)."""
from __future__ import annotations

from .encode import EncodedBatch, EncodeSettings
from .store import Hdf5Store

__all__ = ["LockedAppender"]


class LockedAppender:
    """Writes batches from a worker, each as a segment of the file.

    Workers write in parallel: a segment is written under a temporary name and
    committed by its rename (see :mod:`.files`), so a worker killed mid-write
    leaves nothing half-written and holds no one up. The environment's commits
    merge segments when due.

    Parameters
    ----------
    filename, name : str
        The file and the trajectory.
    settings : EncodeSettings
        Compression settings of the file.
    """

    def __init__(self, filename: str, name: str, settings: EncodeSettings):
        self.filename = filename
        self.name = name
        self.settings = settings

    def __call__(self, batch: EncodedBatch, name: str | None = None) -> None:
        """Write ``batch`` (``name``, the chunk's, is not needed: a rerun's rows come later
        and replace the earlier ones when read)."""
        store = Hdf5Store(self.filename, self.name, complib=self.settings.complib,
                          complevel=self.settings.complevel)
        store.allow_pickle = self.settings.allow_pickle
        store.add_segment(batch)
