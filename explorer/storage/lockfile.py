"""An exclusive, process-wide claim on a file, held through an OS lock.

``<file>.lock`` (next to the file a symlink points to, so every name of the file
shares one lock) is locked with ``fcntl.flock`` for as long as the claim is
held; the kernel drops the lock when the process ends, however it ends, so a
killed process never leaves a stale claim behind. The lock file records who
holds it, and is removed when the claim is given up (an environment closes, a
write ends, or the process exits with claims still held): removed while still
locked, by the process that locked it, so a claimant that locked a lock file
since removed (its inode no longer at the path) tries again. Only a killed
process leaves its lock file behind, which the next claimant takes over.

Every write of an explorer file takes the claim (:func:`claimed`), and so does an
environment for as long as it is open; within one process, a write made while
the process already holds the claim goes ahead under it.

A file system without locks (flock failing with ``ENOSYS``, ``ENOLCK`` or
``EOPNOTSUPP``: some Lustre and NFS mounts, Cray DVS) refuses every claim with
:class:`LockingUnsupportedError`: the claim is what keeps a second writer out,
so it is never skipped. Readers take no claim (committed files never change);
HDF5's own lock on opening a file may fail there too (:func:`hdf5_lock_refused`).
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import FileLockedError, LockingUnsupportedError

__all__ = ["FileClaim", "claimed", "holds", "hdf5_lock_refused", "remove_lock_file"]

#: Seconds a write waits for another writer's claim before giving up.
WRITE_WAIT = 5.0

#: What flock (and HDF5's lock) fails with where the file system has no locks.
UNSUPPORTED = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP})
_NO_LOCKS = ("this file system does not support file locks (some Lustre or NFS mounts, "
             "Cray DVS)")
_LOCKED_PLACES = ("a directory on a file system with locks (a local disk, a Lustre mount with "
                  "-o flock, NFS with its lock daemon)")
_HDF5_LOCKING = ("HDF5's own file locking may fail there too: reading the file where it is "
                 "may need HDF5_USE_FILE_LOCKING=FALSE in the environment before Python starts")

_held: dict[str, int] = {}  # lock file -> number of claims this process holds on it
_live: dict[int, FileClaim] = {}  # id -> every claim held, released when the process exits
_held_lock = threading.Lock()


def _lock_path(path: str, suffix: str) -> str:
    return os.path.realpath(path) + suffix


def holds(path: str, suffix: str = ".lock") -> bool:
    """Whether this process holds a claim on ``path``."""
    return _held.get(_lock_path(path, suffix), 0) > 0


class FileClaim:
    """Claim ``path`` for writing, or raise :class:`FileLockedError` naming the holder.

    Parameters
    ----------
    path : str
        The file to claim; the lock lives in ``realpath(path) + suffix``.
    what : str
        What the claim is for, shown to whoever is refused.
    suffix : str
        Suffix of the lock file.
    wait : float
        Seconds to wait for another holder to give the claim up (0: refuse at once).
    """

    def __init__(self, path: str, what: str = "an explorer Environment",
                 suffix: str = ".lock", wait: float = 0.0):
        self.path = path
        self.lock_path = _lock_path(path, suffix)
        deadline = time.monotonic() + wait
        while True:
            self._fd: int | None = self._open()
            if self._lock(deadline):
                break
        with contextlib.suppress(OSError):  # who holds it is only told (a full disk, say)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                           "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                           "what": what}).encode())
        self._pid = os.getpid()
        with _held_lock:
            _held[self.lock_path] = _held.get(self.lock_path, 0) + 1
            _live[id(self)] = self

    def _lock(self, deadline: float) -> bool:
        """Lock the open lock file; False if it was removed meanwhile (try again)."""
        assert self._fd is not None
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                holder = self._holder()
                self._close()
                raise FileLockedError(
                    f"{self.path!r} is being written by {holder}; wait for it to finish (or "
                    f"stop it), then try again. The claim is the OS lock on {self.lock_path!r}"
                ) from None
            except OSError as err:
                self._close()
                if err.errno in UNSUPPORTED:
                    raise self._unsupported(err) from err
                raise
        try:
            same = os.stat(self.lock_path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder we waited for removed this lock file
            self._close()
        return same

    def _open(self) -> int:
        """The lock file, opened (created if need be) for locking."""
        directory = os.path.dirname(self.lock_path)
        try:
            os.makedirs(directory, exist_ok=True)
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            if os.path.exists(self.lock_path):
                cause = (f"cannot be opened for writing ({err.strerror}): it belongs to "
                         "another user, or its file system is read-only")
            else:
                cause = (f"cannot be created ({err.strerror}): {directory!r} is not "
                         "writable by you, or its file system is read-only")
            raise OSError(  # PermissionError for EACCES and EPERM
                err.errno, f"{self.path!r} cannot be claimed for writing: its lock file "
                f"{self.lock_path!r} {cause}. Writing an explorer file creates the lock file "
                "and the segments beside it: use a writable directory (a file there can "
                "still be read with ex.load_trajectory)") from err

    def _unsupported(self, err: OSError) -> LockingUnsupportedError:
        """The error for flock refused because the file system has no locks."""
        return LockingUnsupportedError(
            err.errno, f"{self.path!r} cannot be claimed for writing: locking "
            f"{self.lock_path!r} with flock failed ([Errno {err.errno}] {err.strerror}): "
            f"{_NO_LOCKS}. Every write of an explorer file holds this lock, with "
            "storage='queue' (the default) as with storage='lock': it keeps a second writer "
            "(another environment, a traj.store() elsewhere) out, so it is never skipped. "
            f"Put the file in {_LOCKED_PLACES}, and copy it elsewhere afterwards if need be; "
            f"{_HDF5_LOCKING}.", self.path)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _holder(self) -> str:
        try:
            with open(self.lock_path) as stream:
                info: dict[str, Any] = json.load(stream)
            return (f"{info.get('what', 'another process')} (pid {info.get('pid')} on "
                    f"{info.get('host')}, since {info.get('since')})")
        except (OSError, ValueError, AttributeError):
            return "another process"

    @property
    def held(self) -> bool:
        """Whether this claim still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Give the claim up and remove the lock file (also done when the process exits).

        The lock file is removed while still locked, and only if it is the one
        this claim locked: whoever waits on it then finds it gone and tries again.
        A forked child only closes its copy: the lock stays its parent's.
        """
        if self._fd is None:
            return
        with _held_lock:
            _live.pop(id(self), None)
            if self._pid != os.getpid():  # the lock is the parent's open file: leave it
                self._close()
                return
            _held[self.lock_path] -= 1
            if not _held[self.lock_path]:
                del _held[self.lock_path]
        with contextlib.suppress(OSError):
            if os.stat(self.lock_path).st_ino == os.fstat(self._fd).st_ino:
                os.remove(self.lock_path)  # still locked: a waiter sees the inode change
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._close()

    def __enter__(self) -> FileClaim:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@atexit.register
def _release_all() -> None:
    """Release the claims still held when the process exits (an environment left open)."""
    for claim in list(_live.values()):
        with contextlib.suppress(Exception):
            claim.release()


def remove_lock_file(path: str, suffix: str = ".lock") -> None:
    """Remove ``path``'s lock file unless a claim on it is held (here or elsewhere).

    It is claimed first, without waiting, and released, which removes it: a lock
    file is never removed from under a holder or a waiter.
    """
    if holds(path, suffix):
        return
    lock_path = _lock_path(path, suffix)
    if not os.path.exists(lock_path):
        return
    try:
        FileClaim(path, "explorer removing the lock file", suffix).release()
    except FileLockedError:
        pass
    except LockingUnsupportedError:  # nobody can hold it: removing it changes nothing
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock_path)


@contextlib.contextmanager
def claimed(path: str, what: str, wait: float = WRITE_WAIT) -> Iterator[None]:
    """Hold the claim on ``path`` for a write, unless this process holds it already.

    Another process's claim is waited for up to ``wait`` seconds, then refused
    with :class:`FileLockedError`.
    """
    if holds(path):
        yield
        return
    with FileClaim(path, what, wait=wait):
        yield


_HDF5_REFUSED = re.compile(r"unable to lock file, errno = (\d+)")


def hdf5_lock_refused(path: str, error: BaseException,
                      opening: str) -> LockingUnsupportedError | None:
    """The error to raise for HDF5 failing to lock ``path`` because the file system has
    no locks (its ``error`` text says ``unable to lock file, errno = 37``), if it did.

    ``opening`` says what the file was opened for (``"reading"``, ``"writing"``).
    """
    found = _HDF5_REFUSED.search(str(error))
    if found is None or int(found.group(1)) not in UNSUPPORTED:
        return None
    code = int(found.group(1))
    return LockingUnsupportedError(
        code, f"HDF5 could not lock {path!r} to open it for {opening} ([Errno {code}] "
        f"{os.strerror(code)}): {_NO_LOCKS}. explorer's readers need no lock (committed "
        "files never change): set HDF5_USE_FILE_LOCKING=FALSE in the environment before "
        "Python starts (it is read when HDF5 loads) to turn HDF5's locks off. Writing the "
        f"file also needs explorer's own lock: for that, put it in {_LOCKED_PLACES}.", path)
