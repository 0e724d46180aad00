"""An exclusive, process-wide claim on a file, held through an OS lock.

``<file>.lock`` is locked with ``fcntl.flock`` for as long as the claim is held;
the kernel drops the lock when the process ends, however it ends, so a killed
process never leaves a stale claim behind. The lock file records who holds it.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from typing import Any

from ..errors import FileLockedError

__all__ = ["FileClaim"]


class FileClaim:
    """Claim ``path`` for writing, or raise :class:`FileLockedError` naming the holder.

    Parameters
    ----------
    path : str
        The file to claim; the lock lives in ``path + suffix``.
    what : str
        What the claim is for, shown to whoever is refused.
    suffix : str
        Suffix of the lock file.
    """

    def __init__(self, path: str, what: str = "an explorer Environment",
                 suffix: str = ".lock"):
        self.path = path
        self.lock_path = f"{path}{suffix}"
        os.makedirs(os.path.dirname(os.path.abspath(self.lock_path)), exist_ok=True)
        self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            os.close(self._fd)
            self._fd = None
            raise FileLockedError(
                f"{path!r} is being written by {holder}; wait for it to finish (or stop it), "
                f"then try again. The claim is the OS lock on {self.lock_path!r}") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                       "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                       "what": what}).encode())

    def _holder(self) -> str:
        try:
            with open(self.lock_path) as stream:
                info: dict[str, Any] = json.load(stream)
            return (f"{info.get('what', 'another process')} (pid {info.get('pid')} on "
                    f"{info.get('host')}, since {info.get('since')})")
        except (OSError, ValueError):
            return "another process"

    @property
    def held(self) -> bool:
        """Whether this claim still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Give the claim up (also done when the process ends)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FileClaim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
