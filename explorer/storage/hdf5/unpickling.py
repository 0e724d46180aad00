"""PyTables never unpickles anything while explorer reads or writes a file.

PyTables unpickles, by itself, any fixed-length bytes attribute ending in ``.``
when it builds a node's attribute set, and every row of a ``VLArray`` whose
``PSEUDOATOM`` attribute says ``object``: opening a hostile file would run code
from it. explorer writes neither (its attributes are strings and numbers; pickled
items are ``uint8`` datasets read only with ``allow_pickle=True``), so within
:func:`refusing` the ``pickle`` module PyTables calls refuses every load. The
attribute then reads as its raw bytes (PyTables falls back to them when a load
fails) and an object ``VLArray`` raises :class:`~explorer.errors.UnsafeDataError`.

The refusal holds in the threads where explorer works with a file; elsewhere
(a user's own PyTables code in the same process) PyTables behaves as usual.
"""
from __future__ import annotations

import contextlib
import pickle
import threading
from collections.abc import Iterator
from typing import Any

import tables.atom
import tables.attributeset

from ...errors import UnsafeDataError

__all__ = ["refusing", "install"]

_state = threading.local()


class _GuardedPickle:
    """Stands in for the ``pickle`` module inside PyTables: ``loads`` refuses while
    :func:`refusing` is active in the calling thread."""

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)

    @staticmethod
    def loads(data: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_state, "depth", 0):
            raise UnsafeDataError(
                "the file holds a pickled HDF5 attribute or object array, which explorer "
                "never writes; it was not unpickled (that would run code from the file)")
        return pickle.loads(data, *args, **kwargs)


_GUARD = _GuardedPickle()


def install() -> None:
    """Put the guard in place of the ``pickle`` module PyTables' modules use."""
    for module in (tables.attributeset, tables.atom):
        if module.pickle is not _GUARD:
            module.pickle = _GUARD


@contextlib.contextmanager
def refusing() -> Iterator[None]:
    """Within this block (in this thread), PyTables unpickles nothing."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


install()
