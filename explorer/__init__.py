"""explorer: explore the parameters of numerical simulations and keep every result.

``import explorer as ex`` and start from :class:`Trajectory` and :class:`Environment`.
"""
from __future__ import annotations

import os

__version__ = "0.1.0"

# containers
from .exploration import cartesian_product
from .parameters import Parameter
from .results import Result
from .trajectory import Trajectory
from .trajectory import load_trajectory as _load
from .trajectory import trajectory_names as _names
from .tree import Group

# running
from .environment import Environment
from .simulators import Simulator, simulator

# fitting
from . import losses
from .optimization import Fit, Optimizer

# combining files
from .combine.merge import MergeWarning, merge
from .combine.pypet import PypetImportWarning, import_pypet

# errors
from .errors import (AmbiguousNameError, DiskFullError, DuplicateNameError, ExplorationError,
                     ExplorerError, FileFormatError, FileLockedError,
                     IncompatibleTrajectoriesError, InterruptedRunError, InvalidNameError,
                     LockingUnsupportedError, MainGuardError, NodeNotFoundError,
                     OutputExistsError, ParameterLockedError, RunsFailedError,
                     TrajectoryExistsError, TrajectoryNotFoundError, UnsafeDataError,
                     UnsupportedTypeError)

__all__ = [
    # containers
    "Trajectory", "Parameter", "Result", "Group", "cartesian_product",
    # running
    "Environment", "Simulator", "simulator",
    # fitting
    "Optimizer", "Fit", "losses",
    # storage
    "load_trajectory", "trajectory_names",
    # combining files
    "merge", "import_pypet", "MergeWarning", "PypetImportWarning",
    # errors
    "ExplorerError", "InvalidNameError", "DuplicateNameError", "NodeNotFoundError",
    "AmbiguousNameError",
    "UnsupportedTypeError", "ExplorationError", "ParameterLockedError", "RunsFailedError",
    "UnsafeDataError", "FileFormatError", "TrajectoryNotFoundError", "TrajectoryExistsError",
    "FileLockedError", "LockingUnsupportedError", "OutputExistsError",
    "IncompatibleTrajectoriesError", "DiskFullError", "InterruptedRunError",
    "MainGuardError", "__version__",
]


def load_trajectory(filename: str, name: str | None = None, *, load: str = "lazy",
                    allow_pickle: bool = False) -> Trajectory:
    """Open a trajectory stored in an HDF5 file.

    Parameters
    ----------
    filename : str
        The explorer HDF5 file.
    name : str, optional
        The trajectory's name; may be left out when the file holds only one.
    load : {"lazy", "parameters", "all"}
        ``"lazy"`` (default) reads parameters and lists results, reading each
        result item on first access; ``"parameters"`` does not look at results;
        ``"all"`` reads every result item now.
    allow_pickle : bool
        Read pickled items. Off by default: reading a pickle runs code from the
        file, so it raises :class:`UnsafeDataError` instead.

    Raises
    ------
    FileFormatError
        The file is missing or not an explorer HDF5 file.
    TrajectoryNotFoundError
        No trajectory of that name (or several and no name given).
    """
    return _load(os.fspath(filename), name, load=load, allow_pickle=allow_pickle)


def trajectory_names(filename: str) -> list[str]:
    """Names of the trajectories stored in an explorer HDF5 file."""
    return _names(os.fspath(filename))

