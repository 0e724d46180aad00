"""The HDF5 back end: opens stores of trajectories in explorer's HDF5 files."""
from __future__ import annotations

import contextlib
import os
import shutil

from ...errors import OutputExistsError
from ..base import Backend
from ..lockfile import claimed, remove_lock_file
from .compaction import compact
from .files import release, segment_folder, tidy
from .store import DEFAULT_COMPLEVEL, DEFAULT_COMPLIB, Hdf5Store, trajectory_names

__all__ = ["Hdf5Backend", "BACKEND"]


class Hdf5Backend(Backend):
    """Trajectories in HDF5 files (the layout is in ``docs/storage.md``)."""

    name = "hdf5"

    def open(self, filename: str, name: str, *, complib: str | None = None,
             complevel: int | None = None) -> Hdf5Store:
        return Hdf5Store(os.fspath(filename), name, complib=complib or DEFAULT_COMPLIB,
                         complevel=DEFAULT_COMPLEVEL if complevel is None else complevel)

    def trajectory_names(self, filename: str) -> list[str]:
        return trajectory_names(os.fspath(filename))

    def tidy(self, filename: str) -> None:
        tidy(os.fspath(filename))

    def publish(self, source: str, target: str) -> None:
        """Merge ``source``'s segments into its base and link the base at ``target`` (never
        replacing a file there), then remove ``source``."""
        source, target = os.fspath(source), os.fspath(target)
        with claimed(source, "explorer finishing a new file"):
            compact(source, everything=True)
            release(source)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(segment_folder(source))  # empty after the compaction
        if os.path.exists(segment_folder(source)):
            raise RuntimeError(f"{source!r} kept segments after its compaction")
        try:
            os.link(source, target)  # fails if target exists: nothing is replaced
        except FileExistsError:
            raise OutputExistsError(f"{target!r} exists already; it was left as it was") \
                from None
        except OSError:  # a file system without hard links: rename, after checking
            if os.path.lexists(target):
                raise OutputExistsError(f"{target!r} exists already; it was left as it was") \
                    from None
            os.rename(source, target)
        self.discard(source)

    def discard(self, filename: str) -> None:
        filename = os.fspath(filename)
        release(filename)
        with contextlib.suppress(FileNotFoundError):
            os.remove(filename)
        shutil.rmtree(segment_folder(filename), ignore_errors=True)
        remove_lock_file(filename)  # unless someone holds it


#: The back end, as :func:`explorer.storage.base.backend` finds it.
BACKEND = Hdf5Backend()
