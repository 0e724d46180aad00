"""Reference figures for pypet on the LIF tutorial grid (run with pypet's own venv).

What it measures
----------------
pypet (https://pypi.org/project/pypet/) running the leaky integrate-and-fire
neuron of its tutorial over a grid of ``--runs`` points: ``neuron.I`` takes
``runs / 10`` values in ``linspace(0, 1)`` and ``neuron.tau_ref`` 10 values in
``linspace(1, 10)`` (cartesian product). Each run integrates

    dV/dt = -V / tau_V + I,   tau_V = 12 ms, V_init = 0, dt = 0.1 ms, 1000 ms

(10,000 Euler steps; at V >= 1 a spike, V reset to 0 and held there for
``tau_ref`` ms), stores ``traj.f_add_result('neuron.$', V=V, nspikes=n,
comment=...)`` (an 80 KB trace and a scalar per run, as pypet's tutorial does)
and returns the firing rate in Hz.

The integration is ``lif_model.simulate`` from this folder, compiled with
numba (``@njit(cache=True)``) and called once before anything is timed, so the
figures are pypet's cost (trajectory, run bookkeeping, processes, HDF5
storage) rather than a Python loop. Forked worker processes inherit the
compiled code.

Three modes, each a new ``pypet.Environment`` and HDF5 file:

- ``serial``: ``multiproc=False``;
- ``lock``: ``multiproc=True, ncores=2, wrap_mode='LOCK'`` (a process per run,
  every worker writes the file under a lock);
- ``queue``: ``multiproc=True, ncores=2, wrap_mode='QUEUE', use_pool=True,
  freeze_input=True`` (a pool of 2 workers, results sent through a queue to
  one process that writes the file).

For each mode ``run_s`` is ``env.run(...)`` alone and ``total_s`` is
everything from ``Environment(...)`` to ``env.disable_logging()`` (creating
the file and trajectory, adding and exploring the parameters, the run, the
close). ``ms_per_run`` is ``run_s / runs`` in milliseconds. The rates that
``env.run`` returns are checked against the same model called directly
(``"check": "ok"``), ``file_mb`` is the size of the HDF5 file written and
``loadavg_1m`` the machine's 1-minute load average right after the run (on 2
cores, a load well above what the mode itself uses means other processes
competed for the CPU).

Output
------
pypet's logging is off (``log_config=None`` and the ``pypet`` logger at
ERROR); the last line on stdout is one JSON object::

    {"runs": 1000, "pypet_version": "0.7.0", "python": "3.12.1", ...,
     "modes": {"serial": {"run_s": .., "total_s": .., "ms_per_run": .., ...},
               "lock": {...}, "queue": {...}},
     "best": "queue", "best_ms_per_run": ...}

A mode that fails is reported as ``{"error": "..."}`` and the others still run;
``best`` is the successful mode with the smallest ``run_s`` (``null`` if none).

How ``bench_lif.py`` uses it
----------------------------
pypet 0.7 needs Python >= 3.12 and older numpy/pandas pins than explorer, so it
lives in its own venv made by ``benchmarks/setup_pypet.sh`` (which prints that
venv's python). ``bench_lif.py`` runs this script in a subprocess with that
python, e.g. ``benchmarks/.pypet-venv/bin/python benchmarks/pypet_lif.py
--runs 1000``, parses the last stdout line with ``json.loads`` and prints
pypet's figures beside explorer's.

Usage::

    bash benchmarks/setup_pypet.sh
    benchmarks/.pypet-venv/bin/python benchmarks/pypet_lif.py [--runs 1000]
        [--modes serial,lock,queue] [--dir DIR]

``--dir`` keeps the HDF5 files there; by default they go to a temporary
folder that is removed at the end.
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import pypet  # noqa: E402

import lif_model  # noqa: E402  (numba-compiled model shared with explorer's benchmarks)

MODES = ("serial", "lock", "queue")
MODE_KWARGS = {
    "serial": dict(multiproc=False),
    "lock": dict(multiproc=True, ncores=2, wrap_mode="LOCK"),
    "queue": dict(multiproc=True, ncores=2, wrap_mode="QUEUE",
                  use_pool=True, freeze_input=True),
}

TAU_V = 12.0        # ms
V_INIT = 0.0
DT = 0.1            # ms
DURATION = 1000.0   # ms
N_TAU_REF = 10


def lif_run(traj):
    """pypet run function: simulate one point, store V and nspikes, return the rate (Hz)."""
    n = lif_model.n_steps(traj.par.simulation.duration, traj.par.simulation.dt)
    V, nspikes = lif_model.simulate(
        traj.par.neuron.V_init, traj.par.neuron.I, traj.par.neuron.tau_V,
        traj.par.neuron.tau_ref, traj.par.simulation.dt, n)
    traj.f_add_result("neuron.$", V=V, nspikes=nspikes,
                      comment="membrane potential trace and spike count of this run")
    return nspikes / traj.par.simulation.duration * 1000.0


def grid(runs):
    """The explored values: ``{'neuron.I': [...], 'neuron.tau_ref': [...]}`` before the product."""
    return {
        "neuron.I": np.linspace(0.0, 1.0, runs // N_TAU_REF).tolist(),
        "neuron.tau_ref": np.linspace(1.0, 10.0, N_TAU_REF).tolist(),
    }


def expected_rates(runs):
    """Rates of every point of the explored grid, straight from the model (pypet's run order)."""
    points = pypet.cartesian_product(grid(runs), ("neuron.I", "neuron.tau_ref"))
    n = lif_model.n_steps(DURATION, DT)
    return [lif_model.simulate(V_INIT, I, TAU_V, tau_ref, DT, n)[1] / DURATION * 1000.0
            for I, tau_ref in zip(points["neuron.I"], points["neuron.tau_ref"])]


def run_mode(mode, runs, folder, expected):
    """One pypet Environment in ``mode``: its timings, or raise."""
    filename = os.path.join(folder, f"pypet_lif_{mode}.hdf5")
    t0 = time.perf_counter()
    env = pypet.Environment(
        trajectory=f"LIF_{mode}",
        filename=filename,
        overwrite_file=True,
        comment=f"explorer benchmark: pypet reference, {mode}",
        log_config=None,
        report_progress=False,
        **MODE_KWARGS[mode],
    )
    try:
        traj = env.trajectory
        traj.f_add_parameter("neuron.V_init", V_INIT, comment="membrane potential at t = 0")
        traj.f_add_parameter("neuron.I", 0.0, comment="applied current")
        traj.f_add_parameter("neuron.tau_V", TAU_V, comment="membrane time constant (ms)")
        traj.f_add_parameter("neuron.tau_ref", 0.0, comment="refractory period (ms)")
        traj.f_add_parameter("simulation.duration", DURATION, comment="simulated time (ms)")
        traj.f_add_parameter("simulation.dt", DT, comment="Euler step (ms)")
        traj.f_explore(pypet.cartesian_product(grid(runs), ("neuron.I", "neuron.tau_ref")))
        t_run = time.perf_counter()
        results = env.run(lif_run)
        run_s = time.perf_counter() - t_run
    finally:
        env.disable_logging()
    total_s = time.perf_counter() - t0

    rates = [rate for _, rate in sorted(results)]
    if len(rates) != runs:
        check = f"{len(rates)} results for {runs} runs"
    elif not np.allclose(rates, expected):
        bad = int(np.sum(~np.isclose(rates, expected)))
        check = f"{bad} of {runs} rates differ from the model"
    else:
        check = "ok"
    del env, traj, results
    gc.collect()
    return {
        "run_s": round(run_s, 4),
        "total_s": round(total_s, 4),
        "ms_per_run": round(run_s / runs * 1000.0, 3),
        "file_mb": round(os.path.getsize(filename) / 1e6, 1),
        "check": check,
        "loadavg_1m": round(os.getloadavg()[0], 2),   # machine load right after the run
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=1000,
                    help="number of runs, a multiple of 10 (I: runs/10 values x tau_ref: 10)")
    ap.add_argument("--modes", default=",".join(MODES),
                    help="comma-separated subset of serial,lock,queue (default: all)")
    ap.add_argument("--dir", default=None,
                    help="folder for the HDF5 files (kept); default: a temporary folder, removed")
    args = ap.parse_args(argv)
    if args.runs < N_TAU_REF or args.runs % N_TAU_REF:
        ap.error("--runs must be a positive multiple of 10")
    modes = [m.strip().lower() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        ap.error(f"unknown mode(s) {unknown}; choose from {','.join(MODES)}")

    # pypet logs through the 'pypet' loggers; with log_config=None it adds no
    # handlers, and this keeps warnings off stderr too (forked workers inherit it).
    logging.getLogger("pypet").setLevel(logging.ERROR)
    logging.getLogger("pypet").propagate = False

    t0 = time.perf_counter()
    expected = expected_rates(args.runs)   # also compiles / loads the numba cache
    warmup_s = time.perf_counter() - t0

    if args.dir:
        folder, remove = os.path.abspath(args.dir), False
        os.makedirs(folder, exist_ok=True)
    else:
        folder, remove = tempfile.mkdtemp(prefix="pypet_lif_"), True

    out = {
        "runs": args.runs,
        "pypet_version": pypet.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "modes": {},
    }
    try:
        import numba
        import pandas
        import tables
        out.update(pandas=pandas.__version__, tables=tables.__version__,
                   numba=numba.__version__)
    except ImportError:  # pragma: no cover - informational only
        pass
    out["warmup_s"] = round(warmup_s, 3)
    try:
        for mode in modes:
            try:
                out["modes"][mode] = run_mode(mode, args.runs, folder, expected)
            except Exception as exc:  # report it, go on with the other modes
                out["modes"][mode] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"# {mode}: {out['modes'][mode]}", file=sys.stderr, flush=True)
    finally:
        if remove:
            shutil.rmtree(folder, ignore_errors=True)

    ok = {m: r for m, r in out["modes"].items() if "run_s" in r}
    best = min(ok, key=lambda m: ok[m]["run_s"]) if ok else None
    out["best"] = best
    out["best_ms_per_run"] = ok[best]["ms_per_run"] if best else None
    sys.stdout.flush()
    print(json.dumps(out), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
