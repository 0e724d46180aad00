"""Environment: runs a function over every point of a trajectory and stores it all.

The environment wires three independent parts together: the trajectory (what
to run), an execution back end (where runs execute: this process, or dask
workers) and a store (the HDF5 file, through :mod:`explorer.storage.base`). Runs
are handed out in chunks; each chunk runs and encodes its results where it
executes, and the store's appender writes the encoded batches and commits them
every few seconds, so that a crash never damages the file and loses at most
the runs of the last seconds, which a resume runs again.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shlex
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .errors import (
    DiskFullError,
    ExplorationError,
    ExplorerError,
    InterruptedRunError,
    RunsFailedError,
)
from .execution import Executor, SerialExecutor
from .execution.auto import AutoExecutor
from .execution.chunking import ChunkPlanner, Points
from .execution.mainguard import refuse_in_script_import
from .interrupts import Interruption
from .records import RunStatus
from .runner import RunJob, run_job_chunk
from .runsession import COMMIT_SECONDS, RunSession
from .runview import context_from_trajectory
from .simulators import Simulator, call_simulator, is_jitted, plan_simulator
from .storage.base import backend
from .storage.lockfile import FileClaim
from .trajectory import Trajectory, load_trajectory

__all__ = ["Environment"]

Postprocessing = Callable[..., Any]



def _dask_executor(workers: int | None, scheduler: str | None, client: Any) -> Executor:
    """A dask back end (dask is imported only when one is used: a second or more)."""
    from .execution.dask import DaskExecutor

    return DaskExecutor(workers, scheduler, client)


def _local_cluster(workers: int) -> Executor:
    """A dask back end on a local cluster of ``workers`` processes (``workers="auto"``)."""
    return _dask_executor(workers, None, None)


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
    workers : int or "auto"
        ``1`` runs in this process; ``N > 1`` starts a local dask cluster of N
        single-threaded worker processes, closed with the environment.
        ``"auto"`` runs the first runs here and starts a cluster of the
        machine's cores only when the measured work left pays for its start-up
        (see :mod:`explorer.execution.auto`); :attr:`workers` then says which.
    scheduler : str, optional
        Address of a running dask scheduler to use instead (left running).
    client : distributed.Client, optional
        A dask client to use instead (left open).
    executor : Executor, optional
        An execution back end to use instead of ``workers``, ``scheduler`` and
        ``client`` (left open), e.g.
        ``explorer.execution.dask.DaskExecutor(4, retries_after_worker_death=0)``.
    storage : {"queue", "lock"}
        ``"queue"``: workers send encoded results back and this process writes
        them. ``"lock"``: workers write their runs into the file themselves, each
        batch a segment of its own, in parallel (needs a file system the workers
        share, at the same path). Both give the same stored items.
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
        Runs handed out at once; by default sized from the measured cost of a
        run so that each chunk carries about 0.3 s of work.

    Raises
    ------
    FileLockedError
        Another environment is writing the file.
    TrajectoryExistsError
        The file holds a trajectory of this name and ``overwrite_file`` is off.
    MainGuardError
        A worker process is importing the script (it lacks
        ``if __name__ == "__main__":``); with ``workers=N``, ``env.run`` raises
        it in the main process.
    """

    def __init__(self, trajectory: str | Trajectory = "trajectory", filename: str | None = None,
                 *, comment: str = "", overwrite_file: bool = False,
                 workers: int | str = 1,
                 scheduler: str | None = None, client: Any = None, storage: str = "queue",
                 on_error: str = "raise", progress: bool = True, seed: int | None = None,
                 allow_pickle: bool = False, complib: str | None = None,
                 complevel: int | None = None, chunk_size: int | None = None,
                 executor: Executor | None = None):
        refuse_in_script_import("explorer.Environment(...)")
        if on_error not in ("raise", "record"):
            raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
        if storage not in ("queue", "lock"):
            raise ValueError(f"storage must be 'queue' or 'lock', got {storage!r}")
        if workers != "auto" and (not isinstance(workers, int) or isinstance(workers, bool)
                                  or workers < 1):
            raise ValueError(f"workers must be a positive int or 'auto', got {workers!r}")
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
        self.storage = storage
        if executor is not None and (workers != 1 or scheduler is not None or
                                     client is not None):
            raise ValueError("give either executor= or workers=/scheduler=/client=, not both")
        self._backend_options = (workers, scheduler, client)
        self._executor: Executor | None = executor
        self._owns_executor = executor is None
        self._postprocessing: list[tuple[Postprocessing, tuple, dict]] = []
        self._appender: Any = None  # a commits_every block's RunAppender
        self._closed = True
        #: Of the last runs executed: their time (summed over workers, encoding
        #: included) and the time spent compiling simulators' batch loops.
        self.timings: dict[str, float] = {}
        self._claim = FileClaim(self.filename)  # every name of the file: one claim
        try:
            bound = trajectory._store
            if bound is not None and bound.same_file(self.filename) and not overwrite_file:
                store = bound
            else:
                store = backend().open(self.filename, trajectory.name, complib=complib,
                                       complevel=complevel)
                store.create(trajectory.comment, trajectory.allow_pickle,
                             overwrite=overwrite_file, copy_from=bound)
                trajectory._bind(store, copied=bound is not None)
            self._store = store
            backend().tidy(self.filename)  # what killed writers left beside the file
            self.seed = self._settle_seed(trajectory, seed)
            trajectory.store()
        except BaseException:
            self._claim.release()
            raise
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

    def _backend(self) -> Executor:
        if self._executor is None:
            workers, scheduler, client = self._backend_options
            if scheduler is None and client is None and workers == "auto":
                self._executor = AutoExecutor(_local_cluster)
            elif workers == 1 and scheduler is None and client is None:
                self._executor = SerialExecutor()
            else:
                self._executor = _dask_executor(
                    workers if isinstance(workers, int) and workers > 1 else None, scheduler,
                    client)
        return self._executor

    @property
    def workers(self) -> int | None:
        """How many worker processes runs go to: 1 means this process. With
        ``workers="auto"``, ``None`` until the first ``env.run`` decided; with
        ``scheduler=``, ``client=`` or a cluster's ``executor=`` (the cluster
        decides), ``None``."""
        workers, scheduler, client = self._backend_options
        if isinstance(self._executor, AutoExecutor):
            return self._executor.workers
        if not self._owns_executor:  # given: its cluster decides, unless it is this process
            return 1 if isinstance(self._executor, SerialExecutor) else None
        if scheduler is not None or client is not None or workers == "auto":
            return None
        return int(workers)

    @property
    def dashboard_link(self) -> str | None:
        """The address of the dask dashboard of the cluster runs go to (``None`` when
        they run in this process, or before ``workers=N`` started its cluster)."""
        workers, scheduler, client = self._backend_options
        if self._executor is None and scheduler is None and client is None:
            return None
        return getattr(self._backend(), "dashboard_link", None)

    @classmethod
    def resume(cls, filename: str, name: str | None = None, **options: Any) -> Environment:
        """Reopen a stored trajectory to finish its runs.

        ``env.run(func)`` then runs only the runs without a completed status and
        returns the whole ``[(idx, value), ...]`` list. Runs that an interrupted
        session finished are kept; the seed stored with the trajectory is reused.
        """
        refuse_in_script_import("explorer.Environment.resume(...)")
        trajectory = load_trajectory(filename, name,
                                     allow_pickle=options.get("allow_pickle", False))
        if trajectory._store is not None and trajectory._store.is_unused():
            raise ExplorerError(
                f"{filename!r}: trajectory {trajectory.name!r} holds no parameters, results or "
                "runs: its process stopped right after creating it, before anything was "
                "stored. There is nothing to resume; run the script from the start (the "
                "empty trajectory is then replaced)")
        return cls(trajectory, filename, **options)

    # ---------------------------------------------------------------- context
    def __enter__(self) -> Environment:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, trace: Any) -> None:
        if error is None:
            self.close()
            return
        try:
            self.close()
        except ExplorerError as failure:  # the error under way says more (a full disk, say)
            error.add_note(f"Closing the environment then failed too: {failure}")

    def close(self) -> None:
        """Store what is left and release the back end and the file."""
        if self._closed:
            return
        self._closed = True
        try:
            self.trajectory.store()
        finally:
            if self._executor is not None and self._owns_executor:
                self._executor.close()
            self._store.close()
            self._claim.release()

    @contextlib.contextmanager
    def commits_every(self, seconds: float = COMMIT_SECONDS) -> Iterator[None]:
        """Within the block, commit what is stored every ``seconds``, not at every call.

        Each ``env.run`` (and ``traj.store()``) commits its writes when it
        returns, which costs a few milliseconds. A loop of many small calls (an
        adaptive search, a fit of a fast model) spends its time there; inside
        this block, writes are committed every ``seconds`` and when the block
        ends instead. A crash loses at most the runs of the last ``seconds``,
        which ``Environment.resume`` runs again.

        Parameters
        ----------
        seconds : float
            Seconds between commits, at least.
        """
        self._check_open()
        if self._appender is not None:
            raise ExplorerError("commits_every blocks do not nest")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        appender = self._appender = self._store.appender(float(seconds))
        try:
            with self._full_disk_explained():
                try:
                    yield
                finally:  # what completed is kept, whatever stopped the block
                    appender.commit(final=True)
        finally:
            self._appender = None
            appender.close()

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

    def run(self, func: Callable[..., Any], *args: Any, outputs: Sequence[str] | None = None,
            result: str | None = None, **kwargs: Any) -> list[tuple[int, Any]]:
        """Run ``func(traj, *args, **kwargs)`` for every run not yet completed.

        ``func`` may instead be a compiled simulator: a ``numba.njit`` function
        whose argument names are parameter short names, given with ``outputs``
        (the names of what it returns) and ``result`` (their result group), or
        declared with :func:`explorer.simulator`. Each run's values are passed
        to it and its outputs stored as ``results.<result>.<run>.<output>``;
        whole chunks of runs are evaluated in one compiled loop. Such runs
        return ``None``. ``env.timings`` then tells compile and run time apart.

        Parameters
        ----------
        func : callable or numba function or Simulator
            The run function or simulator.
        *args, **kwargs
            Extra arguments of a run function.
        outputs : sequence of str, optional
            For a numba function: names of its return values.
        result : str, optional
            For a numba function: the result group (default: its name).

        Returns
        -------
        list of (int, object)
            ``(run index, return value)`` of every completed run, by index.

        Raises
        ------
        RunsFailedError
            If runs failed and ``on_error="raise"``; they are recorded in the file.
        InterruptedRunError
            After SIGINT or SIGTERM: finished runs are stored, the file is closed
            cleanly, and the message says how to resume.
        """
        self._check_open()
        with self._full_disk_explained():
            return self._run(func, args, kwargs, outputs, result)

    def _run(self, func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
             outputs: Sequence[str] | None, result: str | None) -> list[tuple[int, Any]]:
        func = self._as_simulator(func, outputs, result, args, kwargs)
        traj = self.trajectory
        done = set(self._store.run_table().with_status(RunStatus.COMPLETED).tolist())
        todo = [idx for idx in range(len(traj)) if idx not in done]
        failed = self._execute(func, todo, args, kwargs, prepare=traj.store)
        if failed and self.on_error == "raise":
            raise self._failure(failed)
        results = self._results(range(len(traj)))
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

    @staticmethod
    def _as_simulator(func: Any, outputs: Sequence[str] | None, result: str | None,
                      args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """``func``, or the :class:`Simulator` a numba function with ``outputs`` makes."""
        if is_jitted(func):
            if outputs is None:
                raise ExplorationError(
                    f"env.run got the numba function {func.__name__!r}: name what it returns "
                    f"with outputs=(...) (and its result group with result=...)")
            func = Simulator(func, tuple(outputs), result or func.__name__)  # it checks the names
        elif outputs is not None or result is not None:
            raise ExplorationError("outputs= and result= are for numba simulators; a run "
                                   "function stores its results with traj.add_result(...)")
        if isinstance(func, Simulator):
            if args or kwargs:
                raise ExplorationError(f"simulator {func.name!r} takes its arguments from the "
                                       f"parameters; extra arguments "
                                       f"{[*map(repr, args), *kwargs]} cannot be passed")
        elif not callable(func):
            raise TypeError(f"env.run needs a callable run function, got {func!r}")
        return func

    def _results(self, runs: Sequence[int]) -> list[tuple[int, Any]]:
        return list(self._store.return_values(runs).items())

    def _failure(self, failed: list[tuple[int, str]]) -> RunsFailedError:
        failed = sorted(failed)
        shown = "; ".join(f"run {idx}: {error}" for idx, error in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        file, name = self.filename, self.trajectory.name
        return RunsFailedError(
            f"{len(failed)} run(s) failed: {shown}{more}. Each run's error and traceback is "
            f"stored in {file!r}: read them with traj.failures(), a DataFrame by run (also "
            f"on ex.load_trajectory({file!r}, {name!r})), or on the command line with "
            f"`explorer failures {shlex.quote(file)} --traceback`. Rerun the failed runs with "
            f"ex.Environment.resume({file!r}, {name!r}).run(<run function>)",
            failed)

    @contextlib.contextmanager
    def _full_disk_explained(self) -> Iterator[None]:
        """A :class:`DiskFullError` raised within, with what is stored and how to go on."""
        try:
            yield
        except DiskFullError as error:
            try:
                stored = f"{int((self._store.run_table().status == RunStatus.COMPLETED).sum())}"
            except ExplorerError:
                stored = "the committed"
            raise DiskFullError(
                errno.ENOSPC,
                f"{error.strerror} The exploration stopped: {stored} of "
                f"{len(self.trajectory)} runs are completed and stored in "
                f"{self.filename!r}. Free some space, then resume with "
                f"ex.Environment.resume({self.filename!r}, {self.trajectory.name!r})"
                ".run(<run function>)") from error

    def _execute(self, func: Callable[..., Any], todo: list[int], args: Sequence[Any],
                 kwargs: dict[str, Any], record_session: bool = True,
                 prepare: Callable[[], None] = lambda: None) -> list[tuple[int, str]]:
        """Run ``todo``; the failed runs. The session log gets a record unless
        ``record_session`` is off (the caller then keeps its own).

        ``prepare()`` (storing the exploration) must be done before any run is
        stored; in queue mode it is done while the first chunks run (time the
        workers no longer wait for), in lock mode, where workers store runs
        themselves, first. The session record's
        facts are collected while the first chunks run too.
        """
        early = self.storage == "lock" or not todo  # lock: workers store runs themselves
        if early:
            prepare()
            if self._appender is not None and self.storage == "lock":
                self._appender.commit()  # workers store runs of the exploration committed
        if not todo:
            return []
        from tqdm.auto import tqdm

        executor = self._backend()
        job, planner = self._plan(func, todo, args, kwargs, executor.slots)
        own = self._appender is None  # else a commits_every block's, committed on its clock
        bar = tqdm(total=len(todo), unit="run", disable=not self.progress or None,
                   desc=self.trajectory.name, dynamic_ncols=True)
        session = RunSession(self.trajectory, planner,
                             self._store.appender(COMMIT_SECONDS) if own else self._appender,
                             own, self._store.encoding, bar, record_session)
        self.timings = session.timings
        link = getattr(executor, "dashboard_link", None)
        if link and not bar.disable:
            bar.write(f"{self.trajectory.name}: dask dashboard at {link}")

        def meanwhile() -> None:  # while the first chunks run
            if not early:
                prepare()
            session.started()

        interruption = Interruption()
        try:
            with interruption, self.trajectory._locked_parameters():
                for chunk, report in executor.map_chunks(run_job_chunk, job, planner,
                                                         stop=interruption.requested,
                                                         meanwhile=meanwhile):
                    session.absorb(chunk, report)
        finally:
            session.finish(interruption.requested, interruption.signal_name)
        if interruption.requested():
            stored = int((self._store.run_table().status == RunStatus.COMPLETED).sum())
            raise InterruptedRunError(
                f"stopped by {interruption.signal_name}: {stored} of {len(self.trajectory)} "
                f"runs are completed and stored in {self.filename!r}. Resume with "
                f"ex.Environment.resume({self.filename!r}, {self.trajectory.name!r})"
                ".run(<run function>)")
        return session.failed

    def _plan(self, func: Callable[..., Any], todo: list[int], args: Sequence[Any],
              kwargs: dict[str, Any], slots: int) -> tuple[RunJob, ChunkPlanner]:
        """What every chunk of ``todo`` runs (the job), and the planner that hands the
        runs out in chunks."""
        traj = self.trajectory
        writer = self._store.batch_writer() if self.storage == "lock" else None
        ranges = {name: traj.get(name).range for name in traj.explored_parameters}
        context = context_from_trajectory(traj, self.seed)
        plan = None
        if isinstance(func, Simulator):
            first = {name: values[todo[0]] for name, values in ranges.items()}
            plan = plan_simulator(func, context, first)
            func, args, kwargs = call_simulator, (plan,), {}
        job = RunJob(func, context, tuple(args), dict(kwargs), self._store.encoding, writer,
                     uuid.uuid4().hex[:12], plan)
        # runs are time-boxed, and chunks split while they run, where the worker
        # can stop between runs and the driver stores what it did (a lock-mode
        # writer names a chunk by its runs)
        time_boxed = writer is None and not (plan is not None and plan.simulator.batch)
        planner = ChunkPlanner(
            todo, lambda runs, budget: Points.select(runs, ranges, budget, time_boxed),
            slots, self.chunk_size, time_boxed=time_boxed)
        return job, planner
