"""Open HDF5 files, one handle per path and process.

Readers keep a read-only handle open between calls; a writer opens the file for
appending only for the duration of a write and closes it afterwards, so that a
file on disk is closed (and consistent) between batches. Nodes are never kept
across calls: callers hold paths and ask for the handle each time.

Every write holds the file's claim (:mod:`..lockfile`), goes to a copy next to
the file a path resolves to, and is checked before the copy replaces the file:
HDF5 does not report every failed write (a chunk that could not be written for
want of space reads back as zeros), so the copy is synced and searched for the
holes that failed writes leave. A failed write raises
:class:`~explorer.errors.DiskFullError` and leaves the file as it was. Within
these handles, PyTables unpickles nothing (:mod:`.unpickling`), and a file is
checked for what would crash PyTables before it opens it (:mod:`.hdf5guard`).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import errno
import glob
import os
import shutil
import threading
import time
import warnings
from typing import Iterator, NoReturn

import tables

from ...errors import DiskFullError, FileFormatError
from ..lockfile import claimed
from .checksum import seal_pending
from .hdf5guard import check_file
from .unpickling import refusing

__all__ = ["reading", "writing", "rewriting", "release", "generation", "Transaction",
           "remove_stale_copies", "disk_errors", "FORMAT"]

#: Root attribute that marks an explorer file, and its layout version.
FORMAT = "explorer-hdf5/1"

warnings.filterwarnings("ignore", category=tables.NaturalNameWarning)

_lock = threading.RLock()
_readers: dict[str, tables.File] = {}
_writers: dict[str, tuple[tables.File, int, str]] = {}
_write_backs: concurrent.futures.ThreadPoolExecutor | None = None
_sync_data = getattr(os, "fdatasync", os.fsync)  # macOS and Windows have no fdatasync
_identity: dict[str, tuple[int, int, int] | None] = {}
_generations: dict[str, int] = {}
_in_use: dict[str, int] = {}  # reads under way per path (nesting depth)


def _write_back_thread() -> concurrent.futures.ThreadPoolExecutor:
    global _write_backs
    with _lock:
        if _write_backs is None:
            _write_backs = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="explorer-write-back")
        return _write_backs


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
    """A handle to read ``path``: the writer's if a write is under way, else a cached reader.

    Nested uses read the same version of the file, even if it is replaced meanwhile.
    """
    key = _key(path)
    with _lock, refusing():
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
                handle = _open(path)
            except FileFormatError:
                raise
            except Exception as err:  # HDF5 errors, or PyTables choking on its own attributes
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

    The outermost use claims the file, writes a copy of it and moves the copy
    over the file with ``os.replace`` once the block ends without error and the
    copy is checked: a crash, an exception or a failed write at any moment
    leaves the previous file intact.
    """
    key = _key(path)
    with _lock, refusing():
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
        with claimed(path, "a write of the file"):
            handle, target, since = _open_for_writing(path)
            _writers[key] = (handle, 1, target)
            try:
                yield handle
            except BaseException as error:
                del _writers[key]
                _discard(handle, target)
                _raise_as_disk_error(path, error)
            del _writers[key]
            _commit(handle, target, since, path)


@contextlib.contextmanager
def rewriting(path: str, *, claim: bool = True) -> Iterator[tuple[tables.File, tables.File | None]]:
    """``(new, old)``: write a fresh file that replaces ``path`` when the block ends.

    ``old`` is a read handle of the current file (``None`` if there is none), to
    copy from what should be kept. Unlike :func:`writing`, nothing is copied
    automatically, so space held by data left out is given back. ``claim=False``
    is for files only their writer knows yet (journal shards).
    """
    key = _key(path)
    with _lock, refusing(), claimed(path, "a rewrite of the file") if claim \
            else contextlib.nullcontext():
        if key in _writers:
            raise RuntimeError(f"{path!r} is being written; cannot rewrite it now")
        release(path)
        os.makedirs(os.path.dirname(key), exist_ok=True)
        target = _temporary(key)
        old = None
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with reading(path):
                pass  # checks that it is an explorer file
            old = _readers.pop(key)
        try:
            new = tables.open_file(target, "w")
            new.root._v_attrs.explorer_format = FORMAT
        except BaseException as error:
            if old is not None:
                old.close()
            with contextlib.suppress(OSError):
                os.remove(target)
            _raise_as_disk_error(path, error)
        _writers[key] = (new, 1, target)
        try:
            yield new, old
        except BaseException as error:
            _discard(new, target)
            _raise_as_disk_error(path, error)
        finally:
            del _writers[key]
            if old is not None:
                old.close()
        _commit(new, target, 0, path)


class Transaction:
    """A write of ``path`` that stays open across calls and is committed step by step.

    Like :func:`writing`, but the copy being written is kept open between
    calls: writes go to it as they come, and :meth:`commit` moves it over the
    file with ``os.replace`` (a crash at any moment leaves the last committed
    file intact). The next write after a commit starts a new copy. While it is
    open, :func:`writing` and :func:`reading` in this process use its handle.

    Attributes
    ----------
    cost : float
        Seconds the last commit took, reopening included (its copy of the file).
    """

    def __init__(self, path: str):
        self.path = path
        self.cost = 0.0
        self._key = _key(path)
        self._target: str | None = None
        self._since = 0
        self._claim = contextlib.ExitStack()
        self._opened = 0.0
        self._write_back: concurrent.futures.Future | None = None

    @property
    def is_open(self) -> bool:
        """Whether writes since the last commit wait in the copy."""
        return self._target is not None

    @property
    def handle(self) -> tables.File:
        """The copy's handle (a copy of the file is made on first use after a commit)."""
        with _lock, refusing():
            if self._target is None:
                if self._key in _writers:
                    raise RuntimeError(f"{self.path!r} is being written; cannot open a "
                                       "transaction on it now")
                reader = _readers.pop(self._key, None)
                if reader is not None and reader.isopen:
                    reader.close()
                clock = time.perf_counter()
                self._claim.enter_context(claimed(self.path, "a write of the file"))
                try:
                    handle, self._target, self._since = _open_for_writing(self.path)
                except BaseException:
                    self._claim.close()
                    raise
                self._opened = time.perf_counter() - clock
                _writers[self._key] = (handle, 1, self._target)
            return _writers[self._key][0]

    def write_back(self) -> None:
        """Start putting the data written so far on disk, in a background thread.

        The commit then has little left to write: on ext4, ``os.replace`` over
        the file first writes out the new file's data, which a write-back while
        runs go on takes off the end of an exploration. Only what HDF5 has passed
        to the operating system is written back: the bulk, as explorer writes its
        compressed chunks directly; HDF5's caches (metadata, small appends) are
        left to the commit, as flushing them costs milliseconds per batch. One
        write-back runs at a time; a call while one runs does nothing (the next
        one covers its data).
        """
        with _lock:
            if self._target is None or \
                    (self._write_back is not None and not self._write_back.done()):
                return
            handle = _writers[self._key][0]
            self._write_back = _write_back_thread().submit(_sync_data, handle.fileno())

    def _written_back(self) -> None:
        """Wait for the write-back running, if any; its error, if it failed."""
        running, self._write_back = self._write_back, None
        if running is not None:
            running.result()

    def commit(self) -> None:
        """Make everything written so far the file's content.

        Raises
        ------
        DiskFullError
            The copy could not be written whole; it is dropped (as by
            :meth:`abort`) and the file keeps its last committed content.
        """
        with _lock:
            if self._target is None:
                return
            clock = time.perf_counter()
            handle, _, target = _writers.pop(self._key)
            self._target = None
            try:
                self._written_back()
                _commit(handle, target, self._since, self.path)
            except BaseException as error:
                _discard(handle, target)
                _raise_as_disk_error(self.path, error)
            finally:
                self._claim.close()
            self.cost = self._opened + time.perf_counter() - clock

    def abort(self) -> None:
        """Drop what was written since the last commit."""
        with _lock:
            if self._target is None:
                return
            with contextlib.suppress(OSError):
                self._written_back()
            handle, _, target = _writers.pop(self._key)
            self._target = None
            _discard(handle, target)
            self._claim.close()


def remove_stale_copies(path: str) -> list[str]:
    """Remove copies of ``path`` that writers killed on this host left behind; their names."""
    removed = []
    path = _key(path)
    for copy in glob.glob(glob.escape(path) + ".*.tmp"):
        owner = copy[len(path) + 1:-len(".tmp")].split("-")[0]
        if not owner.isdigit() or int(owner) == os.getpid() or _alive(int(owner)):
            continue
        with contextlib.suppress(OSError):
            os.remove(copy)
            removed.append(copy)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_for_writing(path: str) -> tuple[tables.File, str, int]:
    """A copy of ``path`` (or a new file) open for writing: handle, copy, bytes copied."""
    real = _key(path)
    os.makedirs(os.path.dirname(real), exist_ok=True)
    fresh = not os.path.exists(real) or os.path.getsize(real) == 0
    if not fresh and not tables.is_hdf5_file(real):
        raise FileFormatError(
            f"{path!r} exists and is not an HDF5 file; refusing to write into it")
    if not fresh:
        check_file(real)
    target = _temporary(real)
    try:
        if fresh:
            with contextlib.suppress(FileNotFoundError):
                os.remove(target)
        else:
            shutil.copyfile(real, target)
        handle = tables.open_file(target, "a")
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(target)
        if _disk_trouble(error):
            _raise_as_disk_error(path, error)
        raise FileFormatError(f"{path!r} cannot be opened for writing: {error}") from None
    if fresh:
        handle.root._v_attrs.explorer_format = FORMAT
    else:
        try:
            _check_format(handle, path)
        except FileFormatError:
            _discard(handle, target)
            raise
    return handle, target, 0 if fresh else os.path.getsize(target)


def _commit(handle: tables.File, target: str, since: int, path: str) -> None:
    """Close ``handle`` (a copy of ``path`` being written), check it, move it over ``path``.

    The copy is put on disk (``fsync``) and searched for holes past ``since``,
    the bytes it started with: HDF5 extends a file to its full size on closing
    it, so a chunk whose write failed is a hole that would read back as zeros.
    The groups the write changed get their checksums first (:mod:`.checksum`).
    """
    try:
        seal_pending(handle)
        handle.close()
        descriptor = os.open(target, os.O_RDONLY)
        try:
            os.fsync(descriptor)
            hole = _first_hole(descriptor, since)
        finally:
            os.close(descriptor)
        if hole is not None:
            raise OSError(errno.ENOSPC, f"{hole[1]} bytes at offset {hole[0]} of the copy "
                          "were never written")
        os.replace(target, _key(path))
    except BaseException as error:
        _discard(handle, target)
        _raise_as_disk_error(path, error)


def _first_hole(descriptor: int, since: int) -> tuple[int, int] | None:
    """``(offset, length)`` of the first hole at or after ``since``, if any."""
    size = os.fstat(descriptor).st_size
    if since >= size:
        return None
    try:
        start = os.lseek(descriptor, since, os.SEEK_HOLE)
    except OSError:  # the file system cannot tell holes
        return None
    if start >= size:
        return None
    try:
        end = os.lseek(descriptor, start, os.SEEK_DATA)
    except OSError:  # ENXIO: a hole up to the end
        end = size
    return start, end - start


def _discard(handle: tables.File, target: str) -> None:
    """Close and remove a copy that will not be committed."""
    with contextlib.suppress(Exception):
        if handle.isopen:
            handle.close()
    with contextlib.suppress(OSError):
        os.remove(target)


def _disk_trouble(error: BaseException | None) -> bool:
    """Whether ``error`` (or its causes) comes from a full or failing disk."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DiskFullError):
            return True
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            return True
        text = str(error)
        if "No space left" in text or "errno = 28" in text or "Disk quota" in text:
            return True
        error = error.__cause__  # not __context__: an error raised while handling another
    return False


@contextlib.contextmanager
def disk_errors(path: str) -> Iterator[None]:
    """Errors of a write of ``path`` raised within, as :class:`DiskFullError` where a full
    or failing disk caused them."""
    try:
        yield
    except BaseException as error:
        _raise_as_disk_error(path, error)


def _raise_as_disk_error(path: str, error: BaseException) -> NoReturn:
    """Raise ``error`` as a :class:`DiskFullError` if a full or failing disk caused it."""
    if isinstance(error, DiskFullError) or not _disk_trouble(error):
        raise error
    directory = os.path.dirname(_key(path))
    try:
        free = f"{shutil.disk_usage(directory).free:,} bytes free"
    except OSError:
        free = "free space unknown"
    raise DiskFullError(
        errno.ENOSPC,
        f"writing {path!r} failed: the disk holding {directory!r} is full or failing "
        f"({free}; {type(error).__name__}: {_first_line(error)}). Nothing of this write was "
        "kept: the file holds everything committed before it.") from error


def _first_line(error: BaseException) -> str:
    """The line of an error's text that says what failed (HDF5's are tracebacks)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "error message" in line or "No space" in line:
            return line.split("error message = ")[-1].split(",")[0].strip("'")
    return lines[-1] if lines else ""


def _open(path: str) -> tables.File:
    """``path`` opened for reading; a handle PyTables left open when it failed is closed.

    Raises
    ------
    FileFormatError
        PyTables would crash opening the file (:func:`.hdf5guard.check_file`).
    """
    registry = tables.file._open_files
    check_file(path)
    before = set(registry.get_handlers_by_name(path))
    try:
        return tables.open_file(path, "r")
    except Exception:
        for handle in set(registry.get_handlers_by_name(path)) - before:
            with contextlib.suppress(Exception):
                handle.close()
        raise


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
