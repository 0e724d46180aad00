"""Growth benchmark: does a write cost what it adds, however large the file?

Every workload is measured twice in the same invocation: with explorer, and
as the bare work, the same data appended by hand to an open PyTables file in
``'a'`` mode (no copies). Figures are ratios, so that the machine's speed
cancels out; repeated measurements give the median (range) over ``--rounds``.

Workloads (``--only`` picks some):

1. ``grow``: two files of incompressible floats, built once by explorer itself
   (``env.run`` over runs that each store ``rng.random(100_000)``: 0.8 MB per
   run): ~40 MB (50 runs) and ~4 GB (5,000 runs; 400 MB with ``--quick``),
   plus a by-hand PyTables file of the same size beside each. Each round adds
   10 runs to each file: ``ex.Environment.resume(file, name)`` +
   ``traj.expand(...)`` + ``env.run(...)`` + ``env.close()``, timed as a whole,
   against 10 rows appended to the by-hand file's ``EArray``. A thread polls
   the allocated bytes of every file in the working directory
   (``st_blocks``, every 5 ms; copies such as ``*.tmp`` included) and gives the
   peak extra disk during the write. Then, into the large file, each round
   stores a second small trajectory (``ex.Trajectory(...)`` with 2 parameters,
   10 explored points and a 100-float result, ``traj.store(file)``) and a
   postprocessing result (after ``ex.load_trajectory``, timed apart:
   ``traj.add_result(...)`` + ``traj.store()``), against a group of small arrays
   created by hand.
2. ``fit``: a CMA-ES fit with ``ex.Optimizer`` (popsize 20,
   ``store_outputs=True``, a 20,000-sample trace per evaluation, 2,000
   evaluations; 200 with ``--quick``), ``workers=1``. The experiment stamps the
   time of each generation's first evaluation; seconds per generation are the
   gaps between stamps. By hand: the same number of evaluations of the same
   experiment driven by ``cma`` (ask/tell), each generation's traces,
   parameters and losses appended to ``EArray``s. The trace's noise is seeded
   by the point: the loss is noisy, so CMA-ES does not stop before the budget.
3. ``calls``: 1,000 successive calls (100 with ``--quick``) of ``traj.expand``
   by 50 points + ``env.run``, each run storing a scalar result and returning
   one, each call timed; by hand: 50 rows appended to three ``EArray``s per call.
4. ``nm``: a Nelder-Mead fit of a model that takes microseconds (200
   evaluations, each its own one-point generation): explorer's fixed overhead
   per generation is the median gap between successive evaluations; by hand:
   ``scipy.optimize.minimize`` whose objective appends a row per evaluation.

After each workload the file's size is compared with the bytes of data it
holds: the values handed to explorer (explored parameter values, result items,
return values, 8 bytes per scalar), not counting explorer's own records.

Targets (issue 16) are printed with PASS/FAIL; they are meant for the full
sizes. The exit status is 0 unless ``--strict`` is given and a target fails.

Usage: python benchmarks/bench_growth.py [--quick] [--only grow,fit,calls,nm]
       [--rounds 3] [--dir DIR] [--keep] [--strict]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cma  # imported here, not inside one side's timing (2 s with scipy.stats)
import numpy as np
import tables

import explorer as ex

SAMPLES = 100_000          # floats per run in the grow files: 0.8 MB
ADDED = 10                 # runs added per round
SMALL_RUNS = 50            # ~40 MB
TRACE = 20_000             # samples of a CMA-ES evaluation's trace
POPSIZE = 20
CALL_RUNS = 50             # runs per env.run call
FULL = {"big_runs": 5_000, "fit_evals": 2_000, "calls": 1_000, "nm_evals": 200}
QUICK = {"big_runs": 500, "fit_evals": 200, "calls": 100, "nm_evals": 200}
TARGETS = {"grow_ratio": 1.5, "disk_factor": 2.0, "disk_slack_mb": 10.0, "small_write_s": 0.5,
           "drift": 1.3, "fit_vs_hand": 3.0, "nm_overhead_ms": 5.0, "size_ratio": 1.3,
           "size_slack_mb": 1.0}
WORKLOADS = ("grow", "fit", "calls", "nm")
MB = 1e6


# ---------------------------------------------------------------- measuring
@dataclass
class Check:
    """One target: what was measured against its limit."""

    label: str
    measured: str
    limit: str
    ok: bool


@dataclass
class Figures:
    """What the workloads measured: rows to print and targets to check."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """``median (min-max)`` of ``values`` times ``scale``."""
    values = [v * scale for v in values]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def allocated(directory: str) -> int:
    """Bytes allocated on disk to every file under ``directory``."""
    total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:  # a copy replaced meanwhile
                pass
    return total


class DiskWatch:
    """Polls the allocated bytes under a directory in a thread; ``peak_extra``
    is the most they exceeded the bytes at the start."""

    def __init__(self, directory: str, interval: float = 0.005):
        self.directory, self.interval = directory, interval
        self.peak_extra = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_extra = max(self.peak_extra, allocated(self.directory) - self._start)
            self._stop.wait(self.interval)

    def __enter__(self) -> DiskWatch:
        self._start = allocated(self.directory)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_extra = max(self.peak_extra, allocated(self.directory) - self._start)


def timed(func: Callable[[], Any]) -> float:
    """Seconds ``func()`` takes."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def tenths(values: list[float]) -> tuple[float, float]:
    """Medians of the first and of the last 10 % of ``values`` (at least one each)."""
    n = max(1, round(len(values) / 10))
    return statistics.median(values[:n]), statistics.median(values[-n:])


def file_bytes(path: str) -> int:
    """Bytes of an explorer file: its base and the segments beside it."""
    folder = f"{os.path.realpath(path)}.segments"
    segments = [os.path.join(folder, name) for name in os.listdir(folder)] \
        if os.path.isdir(folder) else []
    return os.path.getsize(path) + sum(os.path.getsize(segment) for segment in segments)


def size_check(figures: Figures, label: str, path: str, data_bytes: float) -> None:
    """Row and target: the file's size (its segments included) against the bytes of data
    it holds."""
    size = file_bytes(path)
    limit = TARGETS["size_ratio"] * data_bytes + TARGETS["size_slack_mb"] * MB
    figures.rows.append((f"{label}: file / data",
                         f"{size / MB:,.1f} MB / {data_bytes / MB:,.2f} MB",
                         f"{size / data_bytes:.2f}x"))
    figures.checks.append(Check(f"{label}: file size", f"{size / MB:,.1f} MB",
                                f"<= {limit / MB:,.1f} MB", size <= limit))


# ---------------------------------------------------------------- 1. grow
def noise_run(traj: Any, samples: int) -> float:
    """A run of the grow files: ``samples`` incompressible floats seeded by ``x``."""
    values = np.random.default_rng(traj.x).random(samples)
    traj.add_result("noise.$", values=values, comment="uniform random floats")
    return float(values[0])


def build_explorer(path: str, runs: int) -> float:
    """Create a grow file of ``runs`` runs with explorer; its seconds."""
    def build() -> None:
        with ex.Environment("growth", path, overwrite_file=True, progress=False) as env:
            env.trajectory.add_parameter("x", 0, comment="seed of the run's floats")
            env.trajectory.explore({"x": list(range(runs))})
            env.run(noise_run, SAMPLES)

    return timed(build)


def build_by_hand(path: str, runs: int) -> float:
    """The same floats in a PyTables file: ``EArray``s of traces, x and returns."""
    def build() -> None:
        with tables.open_file(path, "w") as handle:
            traces = handle.create_earray("/", "values", tables.Float64Atom(), (0, SAMPLES),
                                          chunkshape=(1, SAMPLES), expectedrows=runs)
            xs = handle.create_earray("/", "x", tables.Int64Atom(), (0,))
            first = handle.create_earray("/", "returns", tables.Float64Atom(), (0,))
            append_by_hand(traces, xs, first, range(runs))

    return timed(build)


def append_by_hand(traces: tables.EArray, xs: tables.EArray, returns: tables.EArray,
                   seeds: range) -> None:
    """Append the runs ``seeds`` to the by-hand arrays, ten at a time."""
    for start in range(seeds.start, seeds.stop, 10):
        block = np.stack([np.random.default_rng(x).random(SAMPLES)
                          for x in range(start, min(start + 10, seeds.stop))])
        traces.append(block)
        xs.append(np.arange(start, start + len(block)))
        returns.append(block[:, 0])


def add_runs_explorer(path: str, first: int, workdir: str) -> tuple[float, int]:
    """Add ``ADDED`` runs by resume + expand + run; seconds and peak extra disk."""
    def add() -> None:
        env = ex.Environment.resume(path, "growth", progress=False)
        try:
            env.trajectory.expand({"x": list(range(first, first + ADDED))})
            env.run(noise_run, SAMPLES)
        finally:
            env.close()

    with DiskWatch(workdir) as watch:
        seconds = timed(add)
    return seconds, watch.peak_extra


def add_runs_by_hand(path: str, first: int, workdir: str) -> tuple[float, int]:
    """The same ``ADDED`` runs appended to the by-hand file; seconds and peak extra disk."""
    def add() -> None:
        with tables.open_file(path, "a") as handle:
            append_by_hand(handle.root.values, handle.root.x, handle.root.returns,
                           range(first, first + ADDED))

    with DiskWatch(workdir) as watch:
        seconds = timed(add)
    return seconds, watch.peak_extra


def store_second_trajectory(path: str, number: int, workdir: str) -> tuple[float, int]:
    """A small second trajectory stored into ``path``; seconds and peak extra disk."""
    def store() -> None:
        traj = ex.Trajectory(f"second_{number}", comment="a small trajectory beside a big one")
        traj.add_parameter("model.a", 1.0)
        traj.add_parameter("model.b", 2)
        traj.explore({"model.a": [0.1 * k for k in range(10)]})
        traj.add_result("summary.curve", values=np.linspace(0, 1, 100))
        traj.store(path)

    with DiskWatch(workdir) as watch:
        seconds = timed(store)
    return seconds, watch.peak_extra


def store_postprocessing(path: str, number: int, workdir: str) -> tuple[float, float, int]:
    """Load the big trajectory, then time ``add_result`` + ``store``: load
    seconds, store seconds and peak extra disk."""
    start = time.perf_counter()
    traj = ex.load_trajectory(path, "growth")
    loaded = time.perf_counter() - start
    means = np.linspace(0, 1, 100)

    def store() -> None:
        traj.add_result(f"summary.post_{number}", means=means, count=len(traj),
                        comment="postprocessing of the runs")
        traj.store()

    with DiskWatch(workdir) as watch:
        seconds = timed(store)
    return loaded, seconds, watch.peak_extra


def small_by_hand(path: str, number: int) -> float:
    """The second trajectory's and the postprocessing's arrays, created by hand."""
    def store() -> None:
        with tables.open_file(path, "a") as handle:
            group = handle.create_group("/", f"second_{number}")
            handle.create_array(group, "a", np.arange(10) * 0.1)
            handle.create_array(group, "b", np.array([2]))
            handle.create_array(group, "curve", np.linspace(0, 1, 100))
            handle.create_array(group, "means", np.linspace(0, 1, 100))

    return timed(store)


GrowFile = tuple[str, str, int]  # explorer's file, the by-hand file, runs at the start


def build_grow_files(workdir: str, big_runs: int,
                     figures: Figures) -> tuple[dict[str, GrowFile], dict[str, float]]:
    """The small and the big file, each with its by-hand twin; their sizes (MB)."""
    files, built_mb = {}, {}
    for label, runs in (("small", SMALL_RUNS), ("big", big_runs)):
        path, hand = (os.path.join(workdir, f"grow_{label}{kind}.h5") for kind in ("", "_hand"))
        built = build_explorer(path, runs)
        built_hand = build_by_hand(hand, runs)
        files[label] = (path, hand, runs)
        built_mb[label] = os.path.getsize(path) / MB
        figures.rows.append((f"build {label}: explorer / by hand",
                             f"{built:.1f} s / {built_hand:.1f} s",
                             f"{os.path.getsize(path) / MB:,.0f} MB / "
                             f"{os.path.getsize(hand) / MB:,.0f} MB, {runs:,} runs"))
        print(f"built {label}: {runs} runs, {os.path.getsize(path) / MB:,.0f} MB "
              f"in {built:.1f} s", flush=True)
    return files, built_mb


def grow_rounds(workdir: str, files: dict[str, GrowFile],
                rounds: int) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Each round: 10 runs added to each file, then a 2nd trajectory and a
    postprocessing result stored into the big one; seconds and peak extra disk."""
    times: dict[str, list[float]] = {key: [] for key in
                                      ("small", "big", "small_hand", "big_hand", "second",
                                       "post", "load", "second_hand")}
    disks: dict[str, list[int]] = {key: [] for key in ("small", "big", "big_hand", "second",
                                                       "post")}
    for number in range(rounds):
        for label in ("small", "big"):
            path, hand, runs = files[label]
            first = runs + number * ADDED
            seconds, disk = add_runs_explorer(path, first, workdir)
            times[label].append(seconds)
            disks[label].append(disk)
            seconds, disk = add_runs_by_hand(hand, first, workdir)
            times[f"{label}_hand"].append(seconds)
            if label == "big":
                disks["big_hand"].append(disk)
        path, hand, _ = files["big"]
        seconds, disk = store_second_trajectory(path, number, workdir)
        times["second"].append(seconds)
        disks["second"].append(disk)
        loaded, seconds, disk = store_postprocessing(path, number, workdir)
        times["load"].append(loaded)
        times["post"].append(seconds)
        disks["post"].append(disk)
        times["second_hand"].append(small_by_hand(hand, number))
        print(f"grow round {number + 1}/{rounds}: add 10 runs {times['small'][-1]:.2f} s "
              f"(small), {times['big'][-1]:.2f} s (big)", flush=True)
    return times, disks


def grow_workload(workdir: str, sizes: dict, rounds: int, figures: Figures) -> None:
    """Workload 1: adding runs to a small and a big file, and small writes to the big one."""
    files, built_mb = build_grow_files(workdir, sizes["big_runs"], figures)
    times, disks = grow_rounds(workdir, files, rounds)

    def disk(key: str) -> str:
        return f"peak extra disk {spread(disks[key], 1 / MB, 1)} MB"

    def median_ratio(big: str, small: str) -> float:
        return statistics.median(times[big]) / statistics.median(times[small])

    written = ADDED * SAMPLES * 8
    ratio, hand_ratio = median_ratio("big", "small"), median_ratio("big_hand", "small_hand")
    ratios = [b / s for s, b in zip(times["small"], times["big"])]
    hand_ratios = [b / s for s, b in zip(times["small_hand"], times["big_hand"])]
    figures.rows += [
        (f"add {ADDED} runs to {built_mb['small']:,.0f} MB: explorer",
         f"{spread(times['small'])} s", disk("small")),
        (f"add {ADDED} runs to {built_mb['big']:,.0f} MB: explorer",
         f"{spread(times['big'])} s", disk("big")),
        (f"add {ADDED} runs by hand: small / big", f"{spread(times['small_hand'])} s",
         f"{spread(times['big_hand'])} s; big: {disk('big_hand')}"),
        ("time(big) / time(small): explorer", f"{ratio:.2f}x",
         f"per round {spread(ratios, digits=2)}; by hand {hand_ratio:.2f}x "
         f"(per round {spread(hand_ratios, digits=2)})"),
        ("big file: store a 2nd small trajectory", f"{spread(times['second'])} s",
         disk("second")),
        ("big file: add_result + store (postprocessing)", f"{spread(times['post'])} s",
         f"{disk('post')}; load_trajectory before it {spread(times['load'])} s"),
        ("big file: the same small arrays by hand", f"{spread(times['second_hand'])} s", "")]
    disk_limit = TARGETS["disk_factor"] * written + TARGETS["disk_slack_mb"] * MB
    worst_disk = max(disks["small"] + disks["big"])
    second, post = statistics.median(times["second"]), statistics.median(times["post"])
    limit = TARGETS["small_write_s"]
    figures.checks += [
        Check(f"add {ADDED} runs: time(big) / time(small)", f"{ratio:.2f}x",
              f"<= {TARGETS['grow_ratio']}x", ratio <= TARGETS["grow_ratio"]),
        Check(f"add {ADDED} runs: peak extra disk (worst)", f"{worst_disk / MB:,.1f} MB",
              f"<= {disk_limit / MB:.0f} MB", worst_disk <= disk_limit),
        Check("big file: 2nd trajectory", f"{second:.3f} s", f"<= {limit} s", second <= limit),
        Check("big file: postprocessing result", f"{post:.3f} s", f"<= {limit} s", post <= limit)]
    for label in ("small", "big"):
        path, _, runs = files[label]
        runs += rounds * ADDED
        data = runs * (SAMPLES + 2) * 8  # per run: the floats, x, the return value
        if label == "big":  # each round's second trajectory and postprocessing result
            data += rounds * ((10 + 1 + 100) + (100 + 1)) * 8
        size_check(figures, f"grow {label}", path, data)


# ---------------------------------------------------------------- 2. fit
TIME = np.linspace(0, 20 * np.pi, TRACE)
TARGET_TRACE = 0.8 * np.sin(TIME) + 2.0 * np.cos(3 * TIME) + \
    np.random.default_rng(7).standard_normal(TRACE) * 0.1


class Stamps:
    """Times of every evaluation, by generation, taken inside the experiment."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}

    def mark(self, generation: int) -> None:
        self.first.setdefault(generation, time.perf_counter())

    def gaps(self) -> list[float]:
        """Seconds from each generation's first evaluation to the next one's."""
        times = [self.first[g] for g in sorted(self.first)]
        return list(np.diff(times))


STAMPS = Stamps()


def trace_model(a: float, b: float) -> np.ndarray:
    """The fitted model: a 20,000-sample trace plus noise seeded by the point.

    The noise makes the trace incompressible and the loss noisy, so that CMA-ES
    does not converge (and stop) before the budget.
    """
    seed = np.frombuffer(np.array([a, b], dtype=float).tobytes(), dtype=np.uint32)
    noise = np.random.default_rng(seed).standard_normal(TRACE) * 0.1
    return a * np.sin(TIME) + b * np.cos(3 * TIME) + noise


def trace_experiment(traj: Any) -> dict[str, np.ndarray]:
    """``ex.Optimizer``'s experiment: stamps the time, returns the trace."""
    STAMPS.mark(int(traj["optimizer.generation"]))
    return {"trace": trace_model(traj["model.a"], traj["model.b"])}


def trace_loss(outputs: dict[str, np.ndarray]) -> float:
    """RMSE against the target trace."""
    return float(np.sqrt(np.mean((outputs["trace"] - TARGET_TRACE) ** 2)))


BOUNDS = {"model.a": (-5.0, 5.0), "model.b": (-5.0, 5.0)}
SIGMA0 = 0.25                                       # explorer's default for CMA-ES
NM_OPTIONS = {"xatol": 1e-12, "fatol": 1e-30}       # so that the budget stops the search


def fit_explorer(path: str, evals: int) -> tuple[float, list[float], int]:
    """The CMA-ES fit with explorer: seconds, per-generation gaps, evaluations."""
    global STAMPS
    STAMPS = Stamps()
    with ex.Environment("fit", path, overwrite_file=True, progress=False) as env:
        opt = ex.Optimizer(env, trace_experiment, bounds=BOUNDS, loss=trace_loss,
                           method="cmaes", seed=1, options={"popsize": POPSIZE},
                           store_outputs=True)
        start = time.perf_counter()
        fit = opt.run(max_evals=evals)
        seconds = time.perf_counter() - start
    return seconds, STAMPS.gaps(), fit.evaluations


def fit_by_hand(path: str, evals: int) -> float:
    """As many evaluations driven by ``cma`` directly, appended by hand; seconds."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not import matplotlib")
    lower = np.array([b[0] for b in BOUNDS.values()])
    width = np.array([b[1] - b[0] for b in BOUNDS.values()])
    start = time.perf_counter()
    with tables.open_file(path, "w") as handle:
        traces = handle.create_earray("/", "trace", tables.Float64Atom(), (0, TRACE),
                                      chunkshape=(8, TRACE))
        params = handle.create_earray("/", "params", tables.Float64Atom(), (0, 4))
        losses = handle.create_earray("/", "loss", tables.Float64Atom(), (0,))
        es = cma.CMAEvolutionStrategy([0.5, 0.5], SIGMA0, {"bounds": [0, 1], "popsize": POPSIZE,
                                                       "seed": 2, "verbose": -9})
        generation = 0
        while len(losses) + POPSIZE <= evals:
            unit = es.ask()
            points = [lower + np.asarray(u) * width for u in unit]
            outputs = [trace_model(*p) for p in points]
            scores = [trace_loss({"trace": out}) for out in outputs]
            es.tell(unit, scores)
            traces.append(np.stack(outputs))
            params.append(np.array([[*p, generation, 0] for p in points]))
            losses.append(np.array(scores))
            handle.flush()
            generation += 1
    return time.perf_counter() - start


def fit_workload(workdir: str, sizes: dict, figures: Figures) -> None:
    """Workload 2: a CMA-ES fit storing every evaluation's trace."""
    path, hand = os.path.join(workdir, "fit.h5"), os.path.join(workdir, "fit_hand.h5")
    seconds, gaps, evals = fit_explorer(path, sizes["fit_evals"])
    hand_seconds = fit_by_hand(hand, evals)
    first, last = tenths(gaps)
    figures.rows += [
        (f"CMA-ES, {evals:,} evaluations: explorer", f"{seconds:.1f} s",
         f"{len(gaps) + 1} generations; s/generation first 10 % {first:.3f}, last 10 % "
         f"{last:.3f} ({last / first:.2f}x)"),
        ("CMA-ES by hand (cma + appends)", f"{hand_seconds:.1f} s",
         f"explorer / by hand {seconds / hand_seconds:.1f}x")]
    figures.checks += [
        Check("CMA-ES: s/gen last 10 % / first 10 %", f"{last / first:.2f}x",
              f"<= {TARGETS['drift']}x", last / first <= TARGETS["drift"]),
        Check("CMA-ES: explorer / by hand", f"{seconds / hand_seconds:.1f}x",
              f"<= {TARGETS['fit_vs_hand']}x", seconds / hand_seconds <= TARGETS["fit_vs_hand"])]
    # per evaluation: the trace, 2 parameters, generation, start, loss, return value
    size_check(figures, "CMA-ES", path, evals * (TRACE + 6) * 8)


# ---------------------------------------------------------------- 3. calls
def scalar_run(traj: Any) -> float:
    """A run of the calls workload: one scalar result, one return value."""
    traj.add_result("value.$", y=2.0 * traj.x, comment="twice x")
    return traj.x


def calls_explorer(path: str, calls: int) -> list[float]:
    """``calls`` successive expand + ``env.run`` of ``CALL_RUNS`` runs; each call's seconds."""
    seconds = []
    with ex.Environment("calls", path, overwrite_file=True, progress=False) as env:
        traj = env.trajectory
        traj.add_parameter("x", 0.0, comment="the run's value")
        for call in range(calls):
            start = time.perf_counter()
            traj.expand({"x": [float(call * CALL_RUNS + k) for k in range(CALL_RUNS)]})
            env.run(scalar_run)
            seconds.append(time.perf_counter() - start)
            if (call + 1) % max(1, calls // 10) == 0:
                print(f"calls: {call + 1}/{calls}, last {seconds[-1]:.3f} s", flush=True)
    return seconds


def calls_by_hand(path: str, calls: int) -> list[float]:
    """The same values appended by hand, ``CALL_RUNS`` rows per call; each call's seconds."""
    seconds = []
    with tables.open_file(path, "w") as handle:
        arrays = [handle.create_earray("/", name, tables.Float64Atom(), (0,))
                  for name in ("x", "y", "returns")]
        for call in range(calls):
            start = time.perf_counter()
            x = np.arange(call * CALL_RUNS, (call + 1) * CALL_RUNS, dtype=float)
            for array, values in zip(arrays, (x, 2.0 * x, x)):
                array.append(values)
            handle.flush()
            seconds.append(time.perf_counter() - start)
    return seconds


def calls_workload(workdir: str, sizes: dict, figures: Figures) -> None:
    """Workload 3: many small ``env.run`` calls on one growing file."""
    path, hand = os.path.join(workdir, "calls.h5"), os.path.join(workdir, "calls_hand.h5")
    seconds = calls_explorer(path, sizes["calls"])
    hand_seconds = calls_by_hand(hand, sizes["calls"])
    first, last = tenths(seconds)
    hand_first, hand_last = tenths(hand_seconds)
    figures.rows += [
        (f"{len(seconds):,} expand + env.run of {CALL_RUNS}: explorer", f"{sum(seconds):.1f} s",
         f"per call first 10 % {first:.3f} s, last 10 % {last:.3f} s ({last / first:.2f}x)"),
        ("the same appends by hand", f"{sum(hand_seconds):.2f} s",
         f"per call first 10 % {hand_first * 1e3:.2f} ms, last 10 % {hand_last * 1e3:.2f} ms")]
    figures.checks.append(Check("env.run calls: last 10 % / first 10 %", f"{last / first:.2f}x",
                                f"<= {TARGETS['drift']}x", last / first <= TARGETS["drift"]))
    size_check(figures, "env.run calls", path, len(seconds) * CALL_RUNS * 3 * 8)


# ---------------------------------------------------------------- 4. nm
def point_experiment(traj: Any) -> tuple[float, float]:
    """A model that takes microseconds: the point itself (stamped)."""
    STAMPS.mark(int(traj["optimizer.generation"]))
    return traj["model.a"], traj["model.b"]


def point_loss(outputs: tuple[float, float]) -> float:
    """Squared distance to (0.8, 2.0)."""
    return (outputs[0] - 0.8) ** 2 + (outputs[1] - 2.0) ** 2


def nm_explorer(path: str, evals: int) -> tuple[list[float], int]:
    """Nelder-Mead with explorer: gaps between generations, evaluations."""
    global STAMPS
    STAMPS = Stamps()
    with ex.Environment("nm", path, overwrite_file=True, progress=False) as env:
        opt = ex.Optimizer(env, point_experiment, bounds=BOUNDS, loss=point_loss,
                           method="nelder-mead", seed=0, options=NM_OPTIONS)
        fit = opt.run(max_evals=evals)
    return STAMPS.gaps(), fit.evaluations


def nm_by_hand(path: str, evals: int) -> tuple[float, int]:
    """``scipy.optimize.minimize`` appending a row per evaluation: seconds per evaluation."""
    from scipy.optimize import minimize

    with tables.open_file(path, "w") as handle:
        rows = handle.create_earray("/", "evaluations", tables.Float64Atom(), (0, 3))

        def objective(unit: np.ndarray) -> float:
            a, b = -5 + 10 * np.clip(unit, 0, 1)
            loss = point_loss((a, b))
            rows.append(np.array([[a, b, loss]]))
            handle.flush()
            return loss

        start = time.perf_counter()
        minimize(objective, [0.5, 0.5], method="Nelder-Mead", bounds=[(0, 1), (0, 1)],
                 options={"maxfev": evals, **NM_OPTIONS})
        seconds = time.perf_counter() - start
        count = len(rows)
    return seconds / count, count


def nm_workload(workdir: str, sizes: dict, figures: Figures) -> None:
    """Workload 4: the fixed cost of a one-point generation."""
    path, hand = os.path.join(workdir, "nm.h5"), os.path.join(workdir, "nm_hand.h5")
    gaps, evals = nm_explorer(path, sizes["nm_evals"])
    per_eval, hand_evals = nm_by_hand(hand, sizes["nm_evals"])
    overhead = statistics.median(gaps)
    first, last = tenths(gaps)
    figures.rows += [
        (f"Nelder-Mead, {len(gaps) + 1} one-point generations", f"{spread(gaps, 1e3, 1)} ms",
         f"per generation; first 10 % {first * 1e3:.1f} ms, last 10 % {last * 1e3:.1f} ms"),
        ("scipy Nelder-Mead + a row appended by hand", f"{per_eval * 1e3:.3f} ms",
         f"per evaluation ({hand_evals} evaluations)")]
    figures.checks.append(Check("Nelder-Mead: overhead per generation", f"{overhead * 1e3:.1f} ms",
                                f"<= {TARGETS['nm_overhead_ms']} ms",
                                overhead * 1e3 <= TARGETS["nm_overhead_ms"]))
    # per evaluation: 2 parameters, generation, start, loss, return value
    size_check(figures, "Nelder-Mead", path, evals * 6 * 8)


# ---------------------------------------------------------------- main
def explorer_version() -> str:
    """Where explorer was imported from, with its git commit (``+``: uncommitted
    changes in ``explorer/``) when that is a git work tree."""
    package = os.path.dirname(os.path.abspath(ex.__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=package,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=package,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"explorer from {package} (not a git work tree)"
    return f"explorer from {package} at commit {commit}{'+' if dirty else ''}"


def report(figures: Figures, args: argparse.Namespace, seconds: float) -> bool:
    """Print the figures and the targets; True when every target passes."""
    print(f"\n{explorer_version()}; python {platform.python_version()}, "
          f"tables {tables.__version__}, {os.cpu_count()} cores; "
          f"{'--quick' if args.quick else 'full sizes'}, {args.rounds} rounds; "
          f"{seconds / 60:.1f} min")
    width = max(len(label) for label, *_ in figures.rows)
    for label, value, extra in figures.rows:
        print(f"  {label:<{width}}  {value:>22}  {extra}")
    print(f"\n  {'target':<42}{'measured':>12}  {'limit':<12} result")
    for check in figures.checks:
        print(f"  {check.label:<42}{check.measured:>12}  {check.limit:<12} "
              f"{'PASS' if check.ok else 'FAIL'}")
    if args.quick:
        print("  (--quick: smaller sizes; the targets are meant for the full sizes)")
    return all(check.ok for check in figures.checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="400 MB instead of 4 GB, 200 CMA-ES evaluations, 100 env.run calls")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads among {', '.join(WORKLOADS)}")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the grow workload")
    parser.add_argument("--dir", help="where to write (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--strict", action="store_true", help="exit status 1 if a target fails")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose among {', '.join(WORKLOADS)}")
    sizes = QUICK if args.quick else FULL
    workdir = args.dir or tempfile.mkdtemp(prefix="bench_growth_")
    os.makedirs(workdir, exist_ok=True)
    free = shutil.disk_usage(workdir).free
    need = 3 * sizes["big_runs"] * SAMPLES * 8 + 2e9 if "grow" in chosen else 2e9
    print(f"writing into {workdir}: {free / 1e9:.0f} GB free, up to ~{need / 1e9:.0f} GB needed",
          flush=True)
    if free < need:
        sys.exit(f"not enough free disk in {workdir}: choose another one with --dir")
    figures = Figures()
    steps = {"grow": lambda: grow_workload(workdir, sizes, args.rounds, figures),
             "fit": lambda: fit_workload(workdir, sizes, figures),
             "calls": lambda: calls_workload(workdir, sizes, figures),
             "nm": lambda: nm_workload(workdir, sizes, figures)}
    start = time.perf_counter()
    try:
        for name in chosen:
            seconds = timed(steps[name])
            print(f"{name}: {seconds:.1f} s", flush=True)
        ok = report(figures, args, time.perf_counter() - start)
    finally:
        if args.keep:
            print(f"files kept in {workdir}")
        elif args.dir:
            for name in os.listdir(workdir):
                if name.endswith(".h5"):
                    os.remove(os.path.join(workdir, name))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
