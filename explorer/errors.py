"""Exceptions raised by explorer.

Every exception derives from :class:`ExplorerError` and also from the builtin a
caller would naturally catch (``ValueError``, ``TypeError``, ``LookupError``,
``RuntimeError``), so ``except KeyError`` keeps working where it should.
"""
from __future__ import annotations

__all__ = [
    "ExplorerError",
    "InvalidNameError",
    "DuplicateNameError",
    "NodeNotFoundError",
    "AmbiguousNameError",
    "UnsupportedTypeError",
    "ExplorationError",
    "ParameterLockedError",
    "RunsFailedError",
    "UnsafeDataError",
    "FileFormatError",
    "TrajectoryNotFoundError",
    "TrajectoryExistsError",
    "OutputExistsError",
    "IncompatibleTrajectoriesError",
    "FileLockedError",
    "LockingUnsupportedError",
    "DiskFullError",
    "InterruptedRunError",
    "MainGuardError",
]


class ExplorerError(Exception):
    """Base class of every error explorer raises on purpose."""


class InvalidNameError(ExplorerError, ValueError):
    """A dotted name has a segment that is not a valid explorer name."""


class DuplicateNameError(ExplorerError, ValueError):
    """A node of that name exists already (and replacing it was not asked for)."""


class NodeNotFoundError(ExplorerError, AttributeError, KeyError):
    """A name that matches no node of the tree (an ``AttributeError`` and a ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class AmbiguousNameError(ExplorerError, LookupError):
    """A shortcut name matches more than one node; the message lists them."""


class UnsupportedTypeError(ExplorerError, TypeError):
    """A value whose type explorer cannot store (or that does not match a default)."""


class ExplorationError(ExplorerError, ValueError):
    """An exploration that cannot be applied: unknown names, unequal lengths..."""


class ParameterLockedError(ExplorerError, RuntimeError):
    """A parameter was changed while runs execute."""


class RunsFailedError(ExplorerError, RuntimeError):
    """Some runs raised; ``failed`` lists ``(run_idx, error_text)`` pairs."""

    def __init__(self, message: str, failed: list[tuple[int, str]]):
        super().__init__(message)
        self.failed = failed


class UnsafeDataError(ExplorerError, ValueError):
    """Reading a pickled item was refused because ``allow_pickle`` is off."""


class FileFormatError(ExplorerError, ValueError):
    """A file that is not an explorer HDF5 file (or is damaged)."""


class TrajectoryNotFoundError(ExplorerError, KeyError):
    """A file holds no trajectory of the requested name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TrajectoryExistsError(ExplorerError, FileExistsError):
    """Storing would replace a trajectory already in the file."""


class OutputExistsError(ExplorerError, FileExistsError):
    """A file that would be written anew (a merge's or an import's output) exists already."""


class IncompatibleTrajectoriesError(ExplorerError, ValueError):
    """Trajectories that cannot be merged: a parameter differs (the message names it)."""


class FileLockedError(ExplorerError, RuntimeError):
    """Another process (or environment) is writing the file."""


class LockingUnsupportedError(ExplorerError, OSError):
    """The file system refuses file locks, which writing the file needs (or HDF5 opening it).

    ``errno`` is the operating system's (``ENOSYS``, ``ENOLCK``, ``EOPNOTSUPP``),
    ``filename`` the file; the message says what to do instead.
    """

    def __str__(self) -> str:  # the message names the OS error itself
        return str(self.strerror) if self.strerror is not None else super().__str__()


class DiskFullError(ExplorerError, OSError):
    """A write failed for want of disk space (or the disk failed); nothing was committed.

    The file keeps everything committed before; ``errno`` is ``ENOSPC``.
    """


class InterruptedRunError(ExplorerError, RuntimeError):
    """Runs were stopped by a signal; finished runs are stored, the rest can be resumed."""


class MainGuardError(ExplorerError, RuntimeError):
    """A worker process importing the main script reached code meant for the main process.

    Worker processes import the main script; the code that creates and runs an
    environment belongs under ``if __name__ == "__main__":``.
    """
