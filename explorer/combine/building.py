"""Writing a new file in one go: a trajectory made whole, or no file at all.

Merging and importing write a file that did not exist. :func:`new_file` gives a
temporary path beside the output to write at; when the block ends the back end
publishes it at the output's path (never over a file there), and if the block
fails, nothing of it is left. :class:`NewTrajectory` fills one trajectory of
such a file through the store interface, everything in one commit.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

from ..errors import OutputExistsError
from ..storage.base import Appender, BatchEncoder, TrajectoryChanges, TrajectoryStore, backend

__all__ = ["new_file", "NewTrajectory", "BACKEND_NAME"]

#: The back end new files are written with.
BACKEND_NAME = "hdf5"


def refuse_existing(target: str) -> None:
    """Raise :class:`OutputExistsError` if ``target`` exists (before any work is done)."""
    if os.path.lexists(target):
        raise OutputExistsError(f"{target!r} exists already; give a new file name (explorer "
                                "writes merged and imported trajectories into a new file "
                                "only, so that nothing stored is changed)")


@contextlib.contextmanager
def new_file(target: str) -> Iterator[str]:
    """A temporary path beside ``target``, published at ``target`` when the block ends.

    Raises
    ------
    OutputExistsError
        ``target`` exists (checked before the block and again when publishing).
    """
    target = os.fspath(target)
    refuse_existing(target)
    folder, name = os.path.split(os.path.abspath(target))
    partial = os.path.join(folder, f".{name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    store_backend = backend(BACKEND_NAME)
    try:
        yield partial
        store_backend.publish(partial, target)
    finally:
        store_backend.discard(partial)


class NewTrajectory:
    """One new trajectory of a file being written, filled in one commit.

    Use as a context manager: the trajectory is created on entry; :meth:`write`
    and :meth:`add` fill it; everything is committed when the block ends without
    an error, and dropped otherwise.

    Parameters
    ----------
    filename : str
        The file (a path from :func:`new_file`).
    name : str
        The trajectory's name.
    comment : str
        Its comment.
    allow_pickle : bool
        Whether pickled values may be stored.
    """

    def __init__(self, filename: str, name: str, comment: str = "", *,
                 allow_pickle: bool = False):
        self.store: TrajectoryStore = backend(BACKEND_NAME).open(filename, name)
        self.comment = comment
        self.allow_pickle = allow_pickle
        self._appender: Appender | None = None

    def __enter__(self) -> NewTrajectory:
        self.store.create(self.comment, self.allow_pickle, overwrite=False)
        self._appender = self.store.appender(float("inf"))
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        assert self._appender is not None
        try:
            if kind is None:
                self._appender.commit(final=True)
        finally:
            self._appender.close()
            self.store.close()

    def write(self, changes: TrajectoryChanges) -> None:
        """Write the trajectory's tree, exploration and results (committed at the end)."""
        self.store.write(changes, lambda: None)

    def encoder(self) -> BatchEncoder:
        """A new encoder of runs for :meth:`add`."""
        return self.store.encoding.encoder()

    def add(self, encoder: BatchEncoder) -> None:
        """Write what ``encoder`` encoded (committed at the end)."""
        assert self._appender is not None
        self._appender.add(encoder.finish())

    def add_session(self, session: dict[str, Any]) -> None:
        """Add a record to the session log (committed at the end)."""
        assert self._appender is not None
        self._appender.add_session(session)
