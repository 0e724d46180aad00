"""An exclusive, process-wide claim on a file, held through an OS lock.

``<file>.lock`` (next to the file a symlink points to, so every name of the file
shares one lock) is locked with ``fcntl.flock`` for as long as the claim is
held; the kernel drops the lock when the process ends, however it ends, so a
killed process never leaves a stale claim behind. The lock file records who
holds it, and is removed when the claim is given up: a claimant that locked a
lock file since removed (its inode no longer at the path) tries again.

Every write of an explorer file takes the claim (:func:`claimed`), and so does an
environment for as long as it is open; within one process, a write made while
the process already holds the claim goes ahead under it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from typing import Any, Iterator

from ..errors import FileLockedError

__all__ = ["FileClaim", "claimed", "holds"]

#: Seconds a write waits for another writer's claim before giving up.
WRITE_WAIT = 5.0

_held: dict[str, int] = {}  # lock file -> number of claims this process holds on it
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
        os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
        deadline = time.monotonic() + wait
        while True:
            self._fd: int | None = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            if self._lock(deadline):
                break
        with contextlib.suppress(OSError):  # who holds it is only told (a full disk, say)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                           "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                           "what": what}).encode())
        with _held_lock:
            _held[self.lock_path] = _held.get(self.lock_path, 0) + 1

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
                if err.errno in (errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOLCK):
                    raise FileLockedError(
                        f"{self.path!r} cannot be claimed: the file system of "
                        f"{self.lock_path!r} does not support flock ({err.strerror}); mount it "
                        "with flock support (e.g. Lustre's 'flock' option) or keep the file on "
                        "a local disk") from None
                raise
        try:
            same = os.stat(self.lock_path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder we waited for removed this lock file
            self._close()
        return same

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
        """Give the claim up (also done when the process ends)."""
        if self._fd is None:
            return
        with _held_lock:
            _held[self.lock_path] -= 1
            if not _held[self.lock_path]:
                del _held[self.lock_path]
        with contextlib.suppress(OSError):
            os.remove(self.lock_path)  # still locked: a waiter sees the inode change
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._close()

    def __enter__(self) -> "FileClaim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


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
