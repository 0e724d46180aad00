"""Open explorer files: a base file and the segments beside it, as one view.

An explorer file is a *base* HDF5 file (the path the user names) and, beside it,
a folder ``<file>.segments/`` of *segment* files: HDF5 files of the same layout,
each holding what one commit added. Nothing is ever changed in place:

* a write goes into a new file (a temporary name in the folder), which is
  synced, checked and renamed to its final name when it commits: the rename is
  the commit. A write costs what it adds, however large the file is (see
  ``bench_growth.py`` in ``benchmarks/README.md``);
* the first write of a file creates the base the same way (renamed over the
  path);
* a *compaction* (:mod:`.compaction`) merges a run of consecutive layers into
  one new file, which lists the names of the segments it replaces (root
  attribute ``contains``; the base's is ``merged_segments``); those are then
  deleted. A crash in between leaves them beside their replacement, which
  readers skip.

Readers see :class:`View`: the base, then the live segments in the order of
their names (their commit order), plus, in the writing process, the write under
way. Handles stay open between calls and nodes are not kept: callers hold paths.

Every write holds the file's claim (:mod:`..lockfile`), except the segments that
workers write in parallel (``storage="lock"``), whose commit needs no
coordination. HDF5 does not report every failed write (a chunk that could not
be written for want of space reads back as zeros), so a new file is synced and
searched for holes before it is renamed into place. A failed write raises
:class:`~explorer.errors.DiskFullError` and leaves the file as it was. Within
these handles PyTables unpickles nothing (:mod:`.unpickling`), and a file is
checked for what would crash PyTables before it is opened (:mod:`.hdf5guard`).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import errno
import itertools
import json
import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import NoReturn

import tables

from ...errors import DiskFullError, FileFormatError, LockingUnsupportedError
from ..lockfile import claimed, hdf5_lock_refused
from .checksum import seal_pending
from .hdf5guard import check_file
from .nodes import attr
from .unpickling import refusing

__all__ = ["View", "reading", "writing", "writing_now", "last_added", "absorbing", "adding",
           "private_view", "replacing", "release", "generation", "Transaction", "tidy",
           "disk_errors", "segment_folder", "FORMAT", "CHUNK"]

#: Root attribute that marks an explorer file, and its layout version.
FORMAT = "explorer-hdf5/1"
#: Root attribute of a segment a worker wrote for a chunk of runs: a later
#: segment of the same chunk (the chunk run again) replaces it.
CHUNK = "chunk"

warnings.filterwarnings("ignore", category=tables.NaturalNameWarning)

_lock = threading.RLock()
_views: dict[str, View] = {}
_writers: dict[str, Layer] = {}
_absorbing: dict[str, Transaction] = {}
_added: dict[str, int] = {}  # bytes of the file the last write() of a path committed
_write_backs: concurrent.futures.ThreadPoolExecutor | None = None
_sync_data = getattr(os, "fdatasync", os.fsync)  # macOS and Windows have no fdatasync
_generations: dict[str, int] = {}
_in_use: dict[str, int] = {}  # reads under way per path (nesting depth)
_numbers = itertools.count()
_HOST = socket.gethostname().replace("-", "_").replace(os.sep, "_") or "host"
_OPEN_TRIES = 20
#: Nodes PyTables keeps loaded per open file (its default, 32, is fewer than
#: the nodes of a few columns: appending to them reloaded nodes at each batch).
NODE_CACHE_SLOTS = 1024
#: Seconds between two background write-backs of an open segment, at least.
WRITE_BACK_SECONDS = 0.5


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


def _has_base(real: str) -> bool:
    return os.path.exists(real) and os.path.getsize(real) > 0


def segment_folder(path: str) -> str:
    """The folder of ``path``'s segments: next to the file a path resolves to."""
    return f"{_key(path)}.segments"


def _listing(folder: str) -> tuple[str, ...]:
    """Names (without ``.h5``) of the committed segment files in ``folder``, sorted."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(sorted(name[:-3] for name in names if name.endswith(".h5")))


def _new_name() -> str:
    """A segment's name: its commit time first, so that names sort in commit order."""
    return f"{time.time_ns():020d}-{_HOST}-{os.getpid()}-{next(_numbers):06d}"


def generation(path: str) -> int:
    """A number that changes whenever what a view of ``path`` holds changes: a commit,
    or a write under way in this process (written to, committed or dropped).

    Caches of what was read from the file compare it to know they are stale.
    """
    return _generations.get(_key(path), 0)


def _changed(key: str) -> None:
    _generations[key] = _generations.get(key, 0) + 1


def _check_format(handle: tables.File, path: str) -> None:
    marker = getattr(handle.root._v_attrs, "explorer_format", None)
    if marker is None:
        raise FileFormatError(
            f"{path!r} is an HDF5 file but not an explorer file (no 'explorer_format' "
            "attribute on its root group)")
    if str(marker) != FORMAT:
        raise FileFormatError(f"{path!r} has layout {marker!r}; this explorer reads {FORMAT!r}")


def _covered(handle: tables.File, name: str) -> set[str]:
    """Names of the segments a file replaces (``merged_segments`` or ``contains``)."""
    text = attr(handle.root, name, "[]")
    try:
        names = json.loads(text)
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or not all(isinstance(item, str) for item in names):
        raise FileFormatError(f"{handle.filename!r}: root attribute {name!r} is "
                              f"{text!r:.80}, not a list of segment names")
    return set(names)


class View:
    """The layers of one file as a reader sees them: base, live segments, write under way.

    Parameters
    ----------
    path : str
        The file (its base).
    """

    def __init__(self, path: str):
        self.path = path
        self.key = _key(path)
        self.folder = segment_folder(path)
        self.base: tables.File | None = None
        self.names: list[str] = []  # the live segments, in commit order
        self.writer: Layer | None = None
        self._handles: dict[str, tables.File] = {}
        self._identity: tuple | None = None
        self._superseded: set[str] = set()

    @property
    def layers(self) -> list[tables.File]:
        """Open handles, oldest first: base, live segments, then the write under way."""
        found = [self.base] if self.base is not None else []
        found += [self._handles[name] for name in self.names]
        if self.writer is not None:
            found.append(self.writer.handle)
        return found

    @property
    def superseded(self) -> set[str]:
        """Committed segments that a later file replaces (left by a crash; skipped)."""
        return set(self._superseded)

    def refresh(self) -> bool:
        """Catch up with commits since the last look; whether anything changed."""
        for _ in range(_OPEN_TRIES):
            identity = (_stat(self.key), _listing(self.folder))
            if identity == self._identity and self.base is not None and self.base.isopen:
                return False
            try:
                self._load(identity)
            except FileNotFoundError:  # a compaction removed a segment meanwhile
                continue
            self._identity = identity
            _changed(self.key)
            return True
        raise FileFormatError(f"{self.path!r} kept changing while it was opened")

    def _load(self, identity: tuple) -> None:
        base_id, listing = identity
        if base_id is None:
            self.close()
            raise FileFormatError(f"no file {self.path!r}: expected an explorer HDF5 file")
        if self._identity is None or self._identity[0] != base_id or \
                self.base is None or not self.base.isopen:
            self.close()
            self.base = _open_checked(self.path, self.path)
        for name in set(self._handles) - set(listing):
            self._handles.pop(name).close()
        for name in listing:
            if name not in self._handles:
                segment = os.path.join(self.folder, f"{name}.h5")
                if not os.path.exists(segment):
                    raise FileNotFoundError(segment)
                self._handles[name] = _open_checked(segment, self.path)
        superseded = _covered(self.base, "merged_segments")
        chunks: dict[str, str] = {}
        for name in listing:
            handle = self._handles[name]
            superseded |= _covered(handle, "contains")
            chunk = attr(handle.root, CHUNK, None)
            if chunk is not None:  # a rerun of a chunk replaces its earlier segment
                if chunk in chunks:
                    superseded.add(chunks[chunk])
                chunks[chunk] = name
        self._superseded = superseded & set(listing)
        self.names = [name for name in listing if name not in superseded]

    def close(self) -> None:
        """Close every handle."""
        for handle in [self.base, *self._handles.values()]:
            if handle is not None and handle.isopen:
                handle.close()
        self.base = None
        self._handles.clear()
        self.names = []
        self._identity = None


def _reason(error: Exception) -> str:
    """An HDF5 error's last reason (``file signature not found``), not its back trace."""
    text = str(error)
    if "HDF5 error back trace" not in text:
        return text
    trace = text.split("HDF5 error back trace", 1)[1].split("End of HDF5 error back trace")[0]
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    return lines[-1] if lines else text.splitlines()[-1]


def _open_checked(path: str, name: str) -> tables.File:
    """``path`` opened for reading and checked to be an explorer file."""
    try:
        handle = _open(path)
    except (FileFormatError, FileNotFoundError, LockingUnsupportedError):
        raise
    except Exception as err:  # HDF5 errors, or PyTables choking on its own attributes
        if not os.path.exists(path):
            raise FileNotFoundError(path) from None
        raise FileFormatError(
            f"{path!r} cannot be opened as an HDF5 file ({_reason(err)}); expected an "
            f"explorer HDF5 file{'' if path == name else f' (a segment of {name!r})'}") from None
    try:
        _check_format(handle, path)
    except FileFormatError:
        handle.close()
        raise
    return handle


@contextlib.contextmanager
def reading(path: str) -> Iterator[View]:
    """The view of ``path`` as of now (with this process's write under way, if any).

    Nested uses read the same version of the file, whatever is committed meanwhile.
    """
    key = _key(path)
    with _lock, refusing():
        view = _views.get(key)
        if view is None or not _in_use.get(key, 0):
            if view is None:
                if not os.path.exists(path):
                    raise FileFormatError(f"no file {path!r}: expected an explorer HDF5 file")
                view = _views[key] = View(path)
            try:
                view.refresh()
            except FileFormatError:
                view.close()
                _views.pop(key, None)
                raise
        view.writer = _writers.get(key)
        _in_use[key] = _in_use.get(key, 0) + 1
        try:
            yield view
        finally:
            _in_use[key] -= 1


@contextlib.contextmanager
def private_view(path: str) -> Iterator[View]:
    """A view of ``path`` on handles of its own, closed when the block ends.

    For copying objects out of the file with HDF5 itself (``H5Ocopy``, see
    :func:`.hdf5guard.copy_node`): that crashed the process when the objects
    were also open through a reader's handles that had read them.
    """
    with _lock, refusing():
        view = View(path)
        try:
            view.refresh()
            view.writer = _writers.get(_key(path))
            yield view
        finally:
            view.close()


class Layer:
    """A new file being written: a segment, a file's first base, or a compaction's result.

    Parameters
    ----------
    path : str
        The explorer file (its base).
    final : str, optional
        Where the new file goes when committed; by default the base if the file
        has none yet, else a new segment named at the commit.
    covers : set of str
        Names of the segments it replaces (recorded in it, see :func:`replacing`).
    """

    def __init__(self, path: str, final: str | None = None, covers: set[str] | None = None):
        self.path = path
        real = _key(path)
        os.makedirs(os.path.dirname(real), exist_ok=True)
        if final is None and not _has_base(real):
            final = real
        self.final = final or None  # "": a new segment, even if the base is missing
        self.covers = covers or set()
        if final == real:
            self.temp = f"{real}.{os.getpid()}-{threading.get_ident()}.tmp"
        else:
            os.makedirs(segment_folder(path), exist_ok=True)
            self.temp = os.path.join(segment_folder(path), f"{_HOST}-{os.getpid()}-"
                                     f"{threading.get_ident()}-{next(_numbers)}.tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.temp)
            self.handle = tables.open_file(self.temp, "w", node_cache_slots=NODE_CACHE_SLOTS)
            self.handle.root._v_attrs.explorer_format = FORMAT
            if self.covers:
                self.handle.root._v_attrs["merged_segments" if final == real else "contains"] = \
                    json.dumps(sorted(self.covers))
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.remove(self.temp)
            refused = hdf5_lock_refused(path, error, "writing")
            if refused is not None:
                raise refused from error
            _raise_as_disk_error(path, error)

    def commit(self) -> str:
        """Close, sync, check and move the new file into place; its final path."""
        try:
            seal_pending(self.handle)
            self.handle.close()
            descriptor = os.open(self.temp, os.O_RDONLY)
            try:
                os.fsync(descriptor)
                hole = _first_hole(descriptor, 0)
            finally:
                os.close(descriptor)
            if hole is not None:
                raise OSError(errno.ENOSPC, f"{hole[1]} bytes at offset {hole[0]} of "
                              f"{self.temp!r} were never written")
            final = self.final or os.path.join(segment_folder(self.path), f"{_new_name()}.h5")
            os.replace(self.temp, final)
        except BaseException as error:
            self.discard()
            _raise_as_disk_error(self.path, error)
        return final

    @contextlib.contextmanager
    def written(self) -> Iterator[tables.File]:
        """The new file's handle: committed when the block ends, discarded if it fails."""
        try:
            yield self.handle
        except BaseException as error:
            self.discard()
            _raise_as_disk_error(self.path, error)
        self.commit()

    def discard(self) -> None:
        """Close and remove the new file: nothing of it is kept."""
        with contextlib.suppress(Exception):
            if self.handle.isopen:
                self.handle.close()
        with contextlib.suppress(OSError):
            os.remove(self.temp)


@contextlib.contextmanager
def writing(path: str) -> Iterator[tables.File]:
    """A handle to write what a commit adds to ``path``; nested uses share it.

    The outermost use claims the file and writes a new file (the base if
    ``path`` does not exist yet, else a segment), committed when the block ends
    without error: a crash, an exception or a failed write at any moment leaves
    the file as it was. Reads of ``path`` in this process meanwhile see the
    write as their last layer. While a :class:`Transaction` on ``path``
    absorbs writes (:meth:`Transaction.absorb`), the write goes into it and is
    committed with it (see :func:`absorbing`).
    """
    key = _key(path)
    with _lock, refusing():
        transaction = _absorbing.get(key)
        if transaction is not None and key not in _writers:
            transaction.handle  # noqa: B018 - opens its segment, which the write joins
        if key in _writers:
            _changed(key)
            try:
                yield _writers[key].handle
            except BaseException as error:
                if transaction is not None:  # a write absorbed in part is taken back whole
                    transaction.abort()
                _raise_as_disk_error(path, error)
            return
        with claimed(path, "a write of the file"):
            if os.path.exists(path):
                with reading(path):
                    pass  # an explorer file: segments may be added to it
            layer = Layer(path)
            _writers[key] = layer
            _changed(key)
            try:
                yield layer.handle
            except BaseException as error:
                del _writers[key]
                _changed(key)
                layer.discard()
                _raise_as_disk_error(path, error)
            del _writers[key]
            _changed(key)
            _added[key] = os.path.getsize(layer.commit())


def writing_now(path: str) -> bool:
    """Whether this process has a write of ``path`` under way."""
    return _key(path) in _writers


def last_added(path: str) -> int:
    """Bytes of the file that the last :func:`writing` of ``path`` committed."""
    return _added.get(_key(path), 0)


def absorbing(path: str) -> Transaction | None:
    """The transaction that absorbs this process's writes of ``path``, if any: what
    is written is committed only when it commits (see :meth:`Transaction.when_done`)."""
    return _absorbing.get(_key(path))


@contextlib.contextmanager
def adding(path: str) -> Iterator[tables.File]:
    """A segment of ``path`` written without the file's claim, committed when the block ends.

    For writers that add runs in parallel (workers, ``storage="lock"``): the
    rename that commits a segment needs no coordination. The file must exist.
    """
    with refusing():
        if not _has_base(_key(path)):
            raise FileFormatError(f"no file {path!r}: expected an explorer HDF5 file")
        with Layer(path, final="").written() as handle:
            yield handle


@contextlib.contextmanager
def replacing(path: str, names: list[str], *, base: bool) -> Iterator[tables.File]:
    """Write one file that replaces consecutive layers of ``path``: a compaction.

    ``names`` are the live segments replaced, in order, with the base first if
    ``base`` (the new file then becomes the base). The new file records the
    names of every segment file it makes obsolete, which are deleted once it is
    committed; a crash before they are all gone leaves them to readers, which
    skip them. The caller holds the file's claim.
    """
    key = _key(path)
    with _lock, refusing():
        if key in _writers:
            raise RuntimeError(f"{path!r} is being written; cannot compact it now")
        with private_view(path) as view:
            covered = set(names) | view.superseded
        layer = Layer(path, final=key if base else
                      os.path.join(segment_folder(path), f"{names[-1]}m.h5"), covers=covered)
        with layer.written() as handle:
            yield handle
    for name in sorted(covered):
        with contextlib.suppress(OSError):
            os.remove(os.path.join(segment_folder(path), f"{name}.h5"))


class Transaction:
    """A write of ``path`` that stays open across calls and is committed step by step.

    Like :func:`writing`, but the new segment is kept open between calls:
    writes go to it as they come, and :meth:`commit` moves it into place (a
    crash at any moment leaves the last committed state). The next write after
    a commit starts a new segment. While it is open, :func:`writing` and
    :func:`reading` in this process use it.

    Attributes
    ----------
    cost : float
        Seconds the last commit took, the new file's creation included.
    added : int
        Bytes of the files its commits added.
    """

    def __init__(self, path: str):
        self.path = path
        self.cost = 0.0
        self.added = 0
        self._key = _key(path)
        self._layer: Layer | None = None
        self._claim = contextlib.ExitStack()
        self._opened = 0.0
        self._write_back: concurrent.futures.Future | None = None
        self._written_back_at = -WRITE_BACK_SECONDS
        self._outcomes: list[tuple[Callable[[], None], Callable[[], None]]] = []

    def absorb(self) -> None:
        """From now until :meth:`close`, every write of the file in this process
        (:func:`writing`) goes into this transaction and is committed with it."""
        with _lock:
            if self._key in _absorbing and _absorbing[self._key] is not self:
                raise RuntimeError(f"{self.path!r} has another transaction absorbing writes")
            _absorbing[self._key] = self

    def close(self) -> None:
        """Stop absorbing writes; what is not committed is dropped (see :meth:`abort`)."""
        with _lock:
            if _absorbing.get(self._key) is self:
                del _absorbing[self._key]
            self.abort()

    def when_done(self, committed: Callable[[], None], dropped: Callable[[], None]) -> None:
        """Call ``committed()`` once what was written so far is committed, or ``dropped()``
        if it is dropped instead (a failed write, :meth:`abort`)."""
        self._outcomes.append((committed, dropped))

    def _settle(self, committed: bool) -> None:
        outcomes, self._outcomes = self._outcomes, []
        for on_commit, on_drop in outcomes:
            (on_commit if committed else on_drop)()

    @property
    def is_open(self) -> bool:
        """Whether writes since the last commit wait in the new segment."""
        return self._layer is not None

    @property
    def handle(self) -> tables.File:
        """The new segment's handle (created on first use after a commit)."""
        with _lock, refusing():
            if self._layer is None:
                if self._key in _writers:
                    raise RuntimeError(f"{self.path!r} is being written; cannot open a "
                                       "transaction on it now")
                clock = time.perf_counter()
                self._claim.enter_context(claimed(self.path, "a write of the file"))
                try:
                    if os.path.exists(self.path):
                        with reading(self.path):
                            pass
                    self._layer = Layer(self.path)
                except BaseException:
                    self._claim.close()
                    raise
                self._opened = time.perf_counter() - clock
                _writers[self._key] = self._layer
            _changed(self._key)  # what is read of it is stale from now on
            return self._layer.handle

    def write_back(self) -> None:
        """Start putting the data written so far on disk, in a background thread.

        The commit then has less left to sync. Only what HDF5 has passed to the
        operating system is written back (the bulk: explorer writes its
        compressed chunks directly). One write-back runs at a time; a call while
        one runs, or within ``WRITE_BACK_SECONDS`` of the last one, does nothing
        (the next one covers its data).
        """
        with _lock:
            now = time.monotonic()
            if self._layer is None or now - self._written_back_at < WRITE_BACK_SECONDS or \
                    (self._write_back is not None and not self._write_back.done()):
                return
            self._written_back_at = now
            self._write_back = _write_back_thread().submit(_sync_data,
                                                           self._layer.handle.fileno())

    def _written_back(self) -> None:
        """Wait for the write-back running, if any; its error, if it failed."""
        running, self._write_back = self._write_back, None
        if running is not None:
            running.result()

    def commit(self) -> None:
        """Make everything written so far part of the file.

        Raises
        ------
        DiskFullError
            The segment could not be written whole; it is dropped (as by
            :meth:`abort`) and the file keeps its last committed content.
        """
        with _lock:
            if self._layer is None:
                return
            clock = time.perf_counter()
            layer, self._layer = self._layer, None
            del _writers[self._key]
            _changed(self._key)
            try:
                self._written_back()
                self.added += os.path.getsize(layer.commit())
            except BaseException as error:
                layer.discard()
                self._settle(committed=False)
                _raise_as_disk_error(self.path, error)
            finally:
                self._claim.close()
            self._settle(committed=True)
            self.cost = self._opened + time.perf_counter() - clock

    def abort(self) -> None:
        """Drop what was written since the last commit."""
        with _lock:
            if self._layer is None:
                return
            with contextlib.suppress(OSError):
                self._written_back()
            layer, self._layer = self._layer, None
            del _writers[self._key]
            _changed(self._key)
            layer.discard()
            self._claim.close()
            self._settle(committed=False)


def tidy(path: str) -> list[str]:
    """Remove what killed writers and compactions left beside ``path``; the paths removed.

    Unfinished files of writers on this host that are no longer alive go, and
    committed segments that a later file replaces. Call it holding the claim.
    """
    removed = []
    real = _key(path)
    folder = segment_folder(path)
    candidates = [(entry, entry[len(real) + 1:-len(".tmp")].split("-")[0])
                  for entry in _glob_prefix(os.path.dirname(real), os.path.basename(real) + ".")
                  if entry.endswith(".tmp")]
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if name.endswith(".tmp"):
                parts = name.split("-")
                if len(parts) >= 2 and parts[0] == _HOST:
                    candidates.append((os.path.join(folder, name), parts[1]))
    for entry, owner in candidates:
        if not owner.isdigit() or int(owner) == os.getpid() or _alive(int(owner)):
            continue
        with contextlib.suppress(OSError):
            os.remove(entry)
            removed.append(entry)
    if os.path.exists(path):
        with contextlib.suppress(FileFormatError), reading(path) as view:
            for name in sorted(view.superseded):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, f"{name}.h5"))
                    removed.append(os.path.join(folder, f"{name}.h5"))
    return removed


def _glob_prefix(directory: str, prefix: str) -> list[str]:
    try:
        return [os.path.join(directory, name) for name in os.listdir(directory)
                if name.startswith(prefix)]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): it answered the signal
        return True


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
    except Exception as error:
        for handle in set(registry.get_handlers_by_name(path)) - before:
            with contextlib.suppress(Exception):
                handle.close()
        refused = hdf5_lock_refused(path, error, "reading")
        if refused is not None:
            raise refused from error
        raise


def release(path: str) -> None:
    """Close the handles of ``path`` kept open for reading, if any."""
    with _lock:
        key = _key(path)
        view = _views.get(key)
        if view is not None and not _in_use.get(key, 0):
            view.close()
            del _views[key]


@atexit.register
def _close_all() -> None:
    with _lock:
        for view in list(_views.values()):
            view.close()
        _views.clear()
