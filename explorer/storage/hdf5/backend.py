"""The HDF5 back end: opens stores of trajectories in explorer's HDF5 files."""
from __future__ import annotations

import os

from ..base import Backend
from .files import tidy
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


#: The back end, as :func:`explorer.storage.base.backend` finds it.
BACKEND = Hdf5Backend()
