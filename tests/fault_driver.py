"""The driver test_fault_injection.py kills: an exploration of 2,000 short runs.

``python fault_driver.py MODE FILE WORKERS STORAGE LOGS SESSION``

``MODE`` is ``start`` (a new trajectory exploring the first ``STEP`` values of
``x``) or ``resume`` (``ex.Environment.resume`` of the stored one). Either way
the driver runs what did not complete, then expands the exploration by ``STEP``
runs and runs again, until it holds ``N_RUNS`` runs: one ``env.run`` per step,
each ending with a commit, so that a driver's lifetime holds many commits.

Each run stores a scalar and a 1,000-float array that depend only on its ``x``
(:func:`value` and :func:`trace`), returns ``2 * x``, and first appends
``"<run index> <session> <pid>"`` to ``LOGS/runs.log`` (one ``O_APPEND`` write:
the test counts every execution of every run). After each ``env.run`` returns
(its runs are committed then), the driver appends ``"<session> <runs>"`` to
``LOGS/committed.log``. Only explorer's public API is used.
"""
from __future__ import annotations

import os
import sys

import numpy as np

import explorer as ex

NAME = "Faults"
N_RUNS = 2000
STEP = 250
TRACE_LENGTH = 1000


def value(x: int) -> float:
    """The scalar run ``x`` stores."""
    return float(np.cos(x))


def trace(x: int) -> np.ndarray:
    """The array run ``x`` stores: 1,000 floats that do not compress."""
    return np.random.default_rng(x).random(TRACE_LENGTH)


def append_line(path: str, line: str) -> None:
    """Append one line in a single write (whole, even if the process is killed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def run(traj, logs: str, session: int):
    append_line(os.path.join(logs, "runs.log"), f"{traj.idx} {session} {os.getpid()}\n")
    x = traj.x
    traj.add_result("out.$", value=value(x), trace=trace(x), comment="what each run stored")
    return 2 * x


def main() -> None:
    mode, filename, workers, storage, logs, session = sys.argv[1:]
    options = dict(workers=int(workers), storage=storage, progress=False)
    if mode == "start":
        env = ex.Environment(NAME, filename, **options)
        env.trajectory.add_parameter("x", 0, comment="the run's input")
        env.trajectory.explore({"x": list(range(STEP))})
    else:
        env = ex.Environment.resume(filename, NAME, **options)
    with env:
        traj = env.trajectory
        while True:
            results = env.run(run, logs, int(session))
            assert results == [(idx, 2 * idx) for idx in range(len(traj))], results[:5]
            append_line(os.path.join(logs, "committed.log"), f"{session} {len(traj)}\n")
            if len(traj) >= N_RUNS:
                break
            traj.expand({"x": list(range(len(traj), min(N_RUNS, len(traj) + STEP)))})


if __name__ == "__main__":
    main()
