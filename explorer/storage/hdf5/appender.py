"""How finished runs reach the file while an exploration goes on.

The :class:`RunAppender` writes each batch of finished runs into an open
segment (:class:`~.files.Transaction`) as it arrives and commits it every few
seconds: a kill at any moment leaves the file as of the last commit, and the
runs since then run again on resume. Each commit adds a segment of what it
holds, whatever the file's size, then lets :mod:`.compaction` merge layers
when due. Workers that store their runs themselves (``storage="lock"``) commit
their own segments (:mod:`.locked`); only the session record goes through here.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..base import Appender
from .damage import reported
from .files import Transaction, disk_errors
from .parts import EncodedBatch
from .unpickling import refusing

if TYPE_CHECKING:
    from .store import Hdf5Store

__all__ = ["RunAppender"]


class RunAppender(Appender):
    """Writes finished runs into the file while an exploration goes on.

    Batches are written as they arrive into an open segment, committed every
    ``interval`` seconds or more (at least ten times the last commit's cost).
    Until :meth:`close`, the process's other writes of the file (the
    trajectory's stores) go into the same segment: a commit holds the
    exploration and the runs it defines together.

    Parameters
    ----------
    store : Hdf5Store
        The trajectory's store.
    interval : float
        Seconds between commits, at least.
    """

    def __init__(self, store: Hdf5Store, interval: float):
        self.store = store
        self.interval = interval
        self._transaction = Transaction(store.filename)
        self._transaction.absorb()  # the trajectory's stores go in with the runs
        self._committed = time.monotonic()

    def close(self) -> None:
        """Stop absorbing the process's writes of the file; what is not committed is dropped."""
        self._transaction.close()

    @contextlib.contextmanager
    def _step(self) -> Iterator[None]:
        """A write of the segment: if it fails, everything since the last commit is
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
        return self._transaction.is_open and time.monotonic() - self._committed >= wait

    def add_session(self, session: dict[str, Any]) -> None:
        """Add ``session`` to the session log (committed with the runs)."""
        with self._step():
            self.store.write_session(self._transaction.handle, session)

    def commit(self, final: bool = False) -> None:
        """Commit what was written since the last commit, and merge layers if due
        (``final``: the last commit of the writer's work, see :mod:`.compaction`)."""
        with self._step():
            committed = self._transaction.is_open
            self._transaction.commit()
        if committed:
            self.store.compact(added=self._transaction.added if final else 0)
        self._committed = time.monotonic()
