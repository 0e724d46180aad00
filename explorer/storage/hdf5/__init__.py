"""HDF5 storage through PyTables: the only package of explorer that imports ``tables``."""
from .store import Hdf5Store, load_trajectory, trajectory_names

__all__ = ["Hdf5Store", "load_trajectory", "trajectory_names"]
