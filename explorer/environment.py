"""Environment: runs a function over every point of a trajectory and stores it all.

The environment wires three independent parts together: the trajectory (what
to run), an execution back end (where runs execute: this process, or dask
workers) and a store (the HDF5 file, written by one writer as records arrive).
"""
from __future__ import annotations

import os
import time

import numpy as np
from typing import Any, Callable, Sequence

from .errors import ExplorationError, ExplorerError, RunsFailedError
from .execution import Executor, SerialExecutor
from .records import RunRecord, RunStatus
from .runview import context_from_trajectory, run_shared_chunk
from .storage.base import TrajectoryStore
from .trajectory import Trajectory

__all__ = ["Environment"]

Postprocessing = Callable[..., Any]

#: Records are written at least this often (seconds) and at most this many at once.
FLUSH_SECONDS = 1.0
FLUSH_RECORDS = 2000


class Environment:
    """Runs explorations of a trajectory and keeps every result in one HDF5 file.

    Parameters
    ----------
    trajectory : str or Trajectory
        A new trajectory's name, or a trajectory to run.
    filename : str, optional
        The HDF5 file; defaults to ``hdf5/<name>.h5``.
    comment : str
        The trajectory's comment (for a new trajectory).
    overwrite_file : bool
        Replace a trajectory of the same name already in the file. Other
        trajectories in the file are kept.
    workers : int
        ``1`` runs in this process.
    storage : {"queue", "lock"}
        How results reach the file (see the dask back end).
    on_error : {"raise", "record"}
        After all runs, raise :class:`RunsFailedError` if some failed, or only
        record the failures in the file.
    progress : bool
        Show a progress bar.
    seed : int, optional
        Seed from which each run's ``traj.rng`` is derived (stored in the file).
    allow_pickle : bool
        For a new trajectory: accept objects explorer cannot store natively.
    complib, complevel : str, int
        Compression of stacked results (default blosc:lz4, level 5).
    chunk_size : int, optional
        Runs handed out at once; chosen automatically by default.

    Examples
    --------
    >>> with Environment("FiringRate", "hdf5/rates.h5") as env:   # doctest: +SKIP
    ...     env.trajectory.add_parameter("neuron.I", 0.0)
    ...     env.trajectory.explore({"neuron.I": [0.0, 0.5, 1.0]})
    ...     results = env.run(simulate)
    """

    def __init__(self, trajectory: str | Trajectory = "trajectory", filename: str | None = None,
                 *, comment: str = "", overwrite_file: bool = False, workers: int = 1,
                 scheduler: str | None = None, client: Any = None, storage: str = "queue",
                 on_error: str = "raise", progress: bool = True, seed: int | None = None,
                 allow_pickle: bool = False, complib: str | None = None,
                 complevel: int | None = None, chunk_size: int | None = None):
        from .storage.hdf5 import Hdf5Store
        from .storage.hdf5.store import DEFAULT_COMPLEVEL, DEFAULT_COMPLIB

        if on_error not in ("raise", "record"):
            raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
        if storage not in ("queue", "lock"):
            raise ValueError(f"storage must be 'queue' or 'lock', got {storage!r}")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        if seed is not None and (isinstance(seed, bool) or
                                 not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        if isinstance(trajectory, str):
            trajectory = Trajectory(trajectory, comment, allow_pickle=allow_pickle)
        elif not isinstance(trajectory, Trajectory):
            raise TypeError(f"trajectory must be a name or a Trajectory, got "
                            f"{type(trajectory).__name__}")
        self.trajectory = trajectory
        self.filename = os.fspath(filename) if filename is not None else \
            os.path.join("hdf5", f"{trajectory.name}.h5")
        self.on_error = on_error
        self.progress = progress
        self.chunk_size = chunk_size
        self._postprocessing: list[tuple[Postprocessing, tuple, dict]] = []
        self._executor = self._make_executor(workers, scheduler, client, storage)
        bound = trajectory._store
        if bound is not None and bound.same_file(self.filename) and not overwrite_file:
            self._store: TrajectoryStore = bound
        else:
            store = Hdf5Store(self.filename, trajectory.name,
                              complib=complib or DEFAULT_COMPLIB,
                              complevel=DEFAULT_COMPLEVEL if complevel is None else complevel)
            store.create(trajectory, overwrite=overwrite_file, copy_from=bound)
            trajectory._bind(store)
            self._store = store
        self.seed = self._settle_seed(trajectory, seed)
        trajectory.store()
        self._closed = False

    @staticmethod
    def _settle_seed(trajectory: Trajectory, seed: int | None) -> int | None:
        """The exploration's seed: the stored one, or a new one stored now."""
        stored = trajectory["config.environment.seed"] \
            if "config.environment.seed" in trajectory else None
        if seed is None:
            return stored
        if stored is not None and stored != seed:
            raise ExplorationError(
                f"trajectory {trajectory.name!r} was run with seed {stored}; resuming with "
                f"seed {seed} would mix two random streams (leave seed out to reuse {stored})")
        if stored is None:
            trajectory.add_config("environment.seed", int(seed), comment="seed of traj.rng")
        return int(seed)

    @staticmethod
    def _make_executor(workers: int, scheduler: str | None, client: Any,
                       storage: str) -> Executor:
        if workers == 1 and scheduler is None and client is None:
            return SerialExecutor()
        raise ExplorerError(
            "running on dask workers (workers > 1, scheduler= or client=) is not available in "
            "this version of explorer; use workers=1")

    @classmethod
    def resume(cls, filename: str, name: str | None = None, **options: Any) -> "Environment":
        """Reopen a stored trajectory to finish its runs.

        ``env.run(func)`` then runs only the runs without a completed status and
        returns the whole ``[(idx, value), ...]`` list.
        """
        from .storage.hdf5 import load_trajectory

        trajectory = load_trajectory(filename, name, allow_pickle=options.get("allow_pickle",
                                                                               False))
        return cls(trajectory, filename, **options)

    # ---------------------------------------------------------------- context
    def __enter__(self) -> "Environment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Store what is left and release the back end and the file."""
        if self._closed:
            return
        self._closed = True
        try:
            self.trajectory.store()
        finally:
            self._executor.close()
            self._store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ExplorerError(f"environment of {self.filename!r} is closed")

    # ---------------------------------------------------------------- running
    def add_postprocessing(self, func: Postprocessing, *args: Any, **kwargs: Any) -> None:
        """Call ``func(traj, result_list, *args, **kwargs)`` after the runs.

        If it expands the trajectory, the new points are run and ``func`` is called
        again with the results of the new runs.
        """
        if not callable(func):
            raise TypeError(f"postprocessing must be callable, got {func!r}")
        self._postprocessing.append((func, args, kwargs))

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> list[tuple[int, Any]]:
        """Run ``func(traj, *args, **kwargs)`` for every run not yet completed.

        Returns
        -------
        list of (int, object)
            ``(run index, return value)`` of every completed run, by index.

        Raises
        ------
        RunsFailedError
            If runs failed and ``on_error="raise"``; they are recorded in the file.
        """
        self._check_open()
        if not callable(func):
            raise TypeError(f"env.run needs a callable run function, got {func!r}")
        traj = self.trajectory
        traj.store()
        done = set(self._store.run_table().with_status(RunStatus.COMPLETED).tolist())
        todo = [idx for idx in range(len(traj)) if idx not in done]
        failed = self._execute(func, todo, args, kwargs)
        results = self._results(range(len(traj)))
        if failed and self.on_error == "raise":
            raise self._failure(failed)
        for post, post_args, post_kwargs in self._postprocessing:
            new_results = results
            while True:
                before = len(traj)
                post(traj, new_results, *post_args, **post_kwargs)
                traj.store()
                if len(traj) == before:
                    break
                new = list(range(before, len(traj)))
                failed += self._execute(func, new, args, kwargs)
                if failed and self.on_error == "raise":
                    raise self._failure(failed)
                new_results = self._results(new)
            results = self._results(range(len(traj)))
        return results

    def _results(self, runs: Sequence[int]) -> list[tuple[int, Any]]:
        values = self._store.return_values(runs)
        return [(idx, values[idx]) for idx in runs if idx in values]

    def _failure(self, failed: list[RunRecord]) -> RunsFailedError:
        listed = [(record.idx, record.error) for record in failed]
        shown = "; ".join(f"run {idx}: {error}" for idx, error in listed[:5])
        more = f" (and {len(listed) - 5} more)" if len(listed) > 5 else ""
        return RunsFailedError(
            f"{len(listed)} run(s) failed: {shown}{more}. Errors and tracebacks are stored in "
            f"{self.filename!r}; rerun the failed runs with ex.Environment.resume(...).run(...)",
            listed)

    def _chunks(self, todo: list[int]) -> list[list[tuple[int, dict[str, Any]]]]:
        traj = self.trajectory
        ranges = {name: traj.get(name).range for name in traj.explored_parameters}
        size = self.chunk_size or max(1, min(256, len(todo) // (8 * self._executor.slots) or 1))
        points = [(idx, {name: values[idx] for name, values in ranges.items()}) for idx in todo]
        return [points[i:i + size] for i in range(0, len(points), size)]

    def _execute(self, func: Callable[..., Any], todo: list[int], args: Sequence[Any],
                 kwargs: dict[str, Any]) -> list[RunRecord]:
        if not todo:
            return []
        from tqdm.auto import tqdm

        traj = self.trajectory
        context = context_from_trajectory(traj, self.seed)
        failed: list[RunRecord] = []
        buffer: list[RunRecord] = []
        last_flush = time.monotonic()
        bar = tqdm(total=len(todo), unit="run", disable=not self.progress or None,
                   desc=traj.name, dynamic_ncols=True)
        try:
            with traj._locked_parameters():
                shared = (func, context, tuple(args), dict(kwargs))
                for records in self._executor.map_chunks(run_shared_chunk, shared,
                                                          self._chunks(todo)):
                    buffer.extend(records)
                    failed.extend(r for r in records if r.status == RunStatus.FAILED)
                    bar.update(len(records))
                    if failed:
                        bar.set_postfix(failed=len(failed), refresh=False)
                    if len(buffer) >= FLUSH_RECORDS or time.monotonic() - last_flush > FLUSH_SECONDS:
                        self._write(buffer)
                        buffer = []
                        last_flush = time.monotonic()
        finally:
            self._write(buffer)
            bar.close()
        return failed

    def _write(self, records: list[RunRecord]) -> None:
        if records:
            self._store.append_runs(records)
            self.trajectory._add_run_records(records)
