"""Open HDF5 files, one handle per path and process.

Readers keep a read-only handle open between calls; a writer opens the file for
appending only for the duration of a write and closes it afterwards, so that a
file on disk is closed (and consistent) between batches. Nodes are never kept
across calls: callers hold paths and ask for the handle each time.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import threading
import warnings
from typing import Iterator

import tables

from ...errors import FileFormatError

__all__ = ["reading", "writing", "rewriting", "release", "generation", "FORMAT"]

#: Root attribute that marks an explorer file, and its layout version.
FORMAT = "explorer-hdf5/1"

warnings.filterwarnings("ignore", category=tables.NaturalNameWarning)

_lock = threading.RLock()
_readers: dict[str, tables.File] = {}
_writers: dict[str, tuple[tables.File, int, str]] = {}
_identity: dict[str, tuple[int, int, int] | None] = {}
_generations: dict[str, int] = {}
_in_use: dict[str, int] = {}  # reads under way per path (nesting depth)


def _key(path: str) -> str:
    return os.path.realpath(path)


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def generation(path: str) -> int:
    """A number that changes whenever ``path`` is (re)opened because its content changed.

    Caches of what was read from the file compare it to know they are stale.
    """
    return _generations.get(_key(path), 0)


def _check_format(handle: tables.File, path: str) -> None:
    marker = getattr(handle.root._v_attrs, "explorer_format", None)
    if marker is None:
        raise FileFormatError(
            f"{path!r} is an HDF5 file but not an explorer file (no 'explorer_format' "
            "attribute on its root group)")
    if str(marker) != FORMAT:
        raise FileFormatError(f"{path!r} has layout {marker!r}; this explorer reads {FORMAT!r}")


@contextlib.contextmanager
def reading(path: str) -> Iterator[tables.File]:
    """A handle to read ``path``: the writer's if a write is under way, else a cached reader."""
    key = _key(path)
    with _lock:
        if key in _writers:
            yield _writers[key][0]
            return
        handle = _readers.get(key)
        if handle is not None and handle.isopen and _in_use.get(key, 0):
            # an enclosing read is using this handle: stay on the same version of
            # the file (a replaced file stays readable through its open handle)
            _in_use[key] += 1
            try:
                yield handle
            finally:
                _in_use[key] -= 1
            return
        if handle is not None and (not handle.isopen or _identity.get(key) != _stat(path)):
            # closed, or the file was replaced (by a transaction here or elsewhere)
            if handle.isopen:
                handle.close()
            handle = None
            _readers.pop(key, None)
        if handle is None:
            if not os.path.exists(path):
                raise FileFormatError(f"no file {path!r}: expected an explorer HDF5 file")
            try:
                handle = tables.open_file(path, "r")
            except (tables.HDF5ExtError, OSError) as err:
                raise FileFormatError(
                    f"{path!r} cannot be opened as an HDF5 file ({err}); expected an "
                    "explorer HDF5 file") from None
            try:
                _check_format(handle, path)
            except FileFormatError:
                handle.close()
                raise
            _readers[key] = handle
            _identity[key] = _stat(path)
            _generations[key] = _generations.get(key, 0) + 1
        _in_use[key] = _in_use.get(key, 0) + 1
        try:
            yield handle
        finally:
            _in_use[key] -= 1


@contextlib.contextmanager
def writing(path: str) -> Iterator[tables.File]:
    """A handle to write ``path`` (created if missing); nested uses share it.

    The outermost use writes a copy of the file and moves it over the original
    with ``os.replace`` when the block ends without error: a crash or an
    exception at any moment leaves the previous file intact.
    """
    key = _key(path)
    with _lock:
        reader = _readers.pop(key, None)
        if reader is not None and reader.isopen:
            reader.close()
        if key in _writers:
            handle, depth, target = _writers[key]
            _writers[key] = (handle, depth + 1, target)
            try:
                yield handle
            finally:
                handle, depth, target = _writers[key]
                _writers[key] = (handle, depth - 1, target)
            return
        handle, target = _open_for_writing(path)
        _writers[key] = (handle, 1, target)
        try:
            yield handle
        except BaseException:
            del _writers[key]
            handle.close()
            with contextlib.suppress(OSError):
                os.remove(target)
            raise
        del _writers[key]
        handle.close()
        os.replace(target, path)


@contextlib.contextmanager
def rewriting(path: str) -> Iterator[tuple[tables.File, tables.File | None]]:
    """``(new, old)``: write a fresh file that replaces ``path`` when the block ends.

    ``old`` is a read handle of the current file (``None`` if there is none), to
    copy from what should be kept. Unlike :func:`writing`, nothing is copied
    automatically, so space held by data left out is given back.
    """
    key = _key(path)
    with _lock:
        if key in _writers:
            raise RuntimeError(f"{path!r} is being written; cannot rewrite it now")
        release(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        target = _temporary(path)
        old = None
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with reading(path):
                pass  # checks that it is an explorer file
            old = _readers.pop(key)
        new = tables.open_file(target, "w")
        new.root._v_attrs.explorer_format = FORMAT
        _writers[key] = (new, 1, target)
        try:
            yield new, old
        except BaseException:
            new.close()
            with contextlib.suppress(OSError):
                os.remove(target)
            raise
        finally:
            del _writers[key]
            if old is not None:
                old.close()
        new.close()
        os.replace(target, path)


def _open_for_writing(path: str) -> tuple[tables.File, str]:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fresh = not os.path.exists(path) or os.path.getsize(path) == 0
    if not fresh and not tables.is_hdf5_file(path):
        raise FileFormatError(
            f"{path!r} exists and is not an HDF5 file; refusing to write into it")
    target = _temporary(path)
    if fresh:
        with contextlib.suppress(FileNotFoundError):
            os.remove(target)
    else:
        shutil.copyfile(path, target)
    try:
        handle = tables.open_file(target, "a")
    except (tables.HDF5ExtError, OSError) as err:
        raise FileFormatError(f"{path!r} cannot be opened for writing: {err}") from None
    if fresh:
        handle.root._v_attrs.explorer_format = FORMAT
    else:
        try:
            _check_format(handle, path)
        except FileFormatError:
            handle.close()
            os.remove(target)
            raise
    return handle, target


def _temporary(path: str) -> str:
    """Where a transaction on ``path`` writes before moving its result into place."""
    return f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"


def release(path: str) -> None:
    """Close a cached read handle of ``path``, if any."""
    with _lock:
        handle = _readers.pop(_key(path), None)
        if handle is not None and handle.isopen:
            handle.close()


@atexit.register
def _close_all() -> None:
    with _lock:
        for handle in list(_readers.values()):
            if handle.isopen:
                handle.close()
        _readers.clear()
