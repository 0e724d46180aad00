"""HDF5 storage through PyTables: the only package of explorer that imports ``tables``.

Explorer reaches it only through :data:`BACKEND` (see :mod:`explorer.storage.base`).
"""
from .backend import BACKEND, Hdf5Backend
from .store import Hdf5Store, trajectory_names

__all__ = ["BACKEND", "Hdf5Backend", "Hdf5Store", "trajectory_names"]
