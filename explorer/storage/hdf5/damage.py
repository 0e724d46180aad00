"""Reading a damaged or malformed file ends in one clear error, never a raw traceback.

A file whose bytes were damaged (a checksum that fails, a truncated B-tree) or
that was edited by hand (an attribute of the wrong type, JSON that is not JSON,
a missing dataset) makes PyTables, numpy, json or explorer's own decoders raise
whatever they raise. The public reading entry points of :mod:`.store` run inside
:func:`reported`, which turns those exceptions into one
:class:`~explorer.errors.FileFormatError` naming the file, what was being read
and what went wrong (the original exception stays chained as ``__cause__``).
Errors that already mean something to the caller pass through unchanged.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import tables

from ...errors import (
    ExplorerError,
    FileFormatError,
    FileLockedError,
    TrajectoryNotFoundError,
    UnsafeDataError,
)
from .checksum import ChecksumError

__all__ = ["reported", "damaged", "count"]

#: What reading a damaged file raises below explorer (HDF5ExtError is a
#: RuntimeError; numpy and json raise ValueErrors and TypeErrors; lookups of
#: missing nodes, keys and rows raise LookupErrors; deep JSON a RecursionError;
#: PyTables a SystemError when it makes a string of an attribute HDF5 failed to read).
_DAMAGE = (tables.HDF5ExtError, tables.NodeError, ValueError, TypeError, LookupError,
           AttributeError, ArithmeticError, RecursionError, MemoryError, UnicodeError,
           SystemError)
#: explorer's own errors that keep their meaning when they come from a file.
_MEANINGFUL = (FileFormatError, UnsafeDataError, TrajectoryNotFoundError, FileLockedError)


def damaged(filename: str, what: str, problem: str) -> FileFormatError:
    """The error for a file whose ``what`` is unreadable because of ``problem``."""
    return FileFormatError(
        f"{filename!r} is damaged or is not a valid explorer file: {what}: {problem}")


def _describe(error: BaseException) -> str:
    if isinstance(error, tables.HDF5ExtError):
        lines = str(error).strip().splitlines()
        # HDF5's trace: the innermost reason and PyTables' summary say the most
        reasons = [line.strip() for line in lines if line.strip() and not
                   line.strip().startswith(("File ", "HDF5 error", "End of HDF5"))]
        summary = "; ".join(dict.fromkeys(reasons[-2:])) if reasons else "HDF5 error"
        if "checksum" in str(error).lower():
            summary = f"data fails its checksum ({summary})"
        return summary
    if isinstance(error, ChecksumError):
        return str(error)
    if isinstance(error, SystemError):  # PyTables' C code on metadata HDF5 could not read
        return f"metadata HDF5 cannot read (SystemError: {error})"
    text = str(error)
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def reported(filename: str, what: str) -> Iterator[None]:
    """Run a read of ``filename``; what a damaged file makes it raise becomes a FileFormatError.

    Parameters
    ----------
    filename : str
        The file being read (named in the error).
    what : str
        What is being read, for the message (``"trajectory 'T'"``, say).

    Raises
    ------
    FileFormatError
        Reading raised an exception a damaged or malformed file causes, or one of
        explorer's own errors that does not name the file (the file's content is
        then inconsistent, e.g. an exploration of a parameter it does not hold).
    """
    try:
        yield
    except _MEANINGFUL:
        raise
    except ExplorerError as error:
        if os.path.basename(filename) in str(error):
            raise
        raise damaged(filename, what, f"{type(error).__name__}: {error}") from error
    except _DAMAGE as error:
        raise damaged(filename, what, _describe(error)) from error


def count(filename: str, what: str, value: Any, limit: int | None = None) -> int:
    """``value`` (read from an attribute) as a count: an integer from 0 to ``limit``.

    Raises
    ------
    FileFormatError
        ``value`` is not an integer or is out of range (a count must be checked
        before it sizes a loop or an allocation).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise damaged(filename, what, f"expected a count, found {value!r:.60}")
    if value < 0 or (limit is not None and value > limit):
        bound = f"0 to {limit}" if limit is not None else "0 or more"
        raise damaged(filename, what, f"count {value} is out of range ({bound})")
    return value
