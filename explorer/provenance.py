"""Where and how an exploration ran: versions, host, times, command, git state."""
from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

__all__ = ["collect", "now"]

_PACKAGES = ("explorer", "numpy", "numba", "dask", "distributed", "tables", "pandas", "scipy")


def now() -> str:
    """The local time, ISO format, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


@functools.cache
def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(directory: str) -> dict[str, Any] | None:
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def collect(directory: str | None = None) -> dict[str, Any]:
    """Versions, host, command line and the git commit of ``directory`` (default: cwd)."""
    directory = directory or os.getcwd()
    return {
        "versions": {"python": platform.python_version(),
                     **{package: _version(package) for package in _PACKAGES}},
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": [sys.executable, *sys.argv],
        "cwd": directory,
        "git": _git(directory),
        "start": now(),
    }
