"""Firing rate of a leaky integrate-and-fire neuron, explored over a grid.

The membrane potential follows

    dV/dt = -V / tau_V + I

integrated with Euler steps of ``dt``. When V reaches 1 the neuron fires: V is
reset to 0 and held there for the refractory period ``tau_ref``.

This script shows explorer's core workflow from start to finish:

1. describe the parameters in a trajectory (comments, a ``(value, comment)``
   pair, a parameter group);
2. explore the current ``I`` (0 to 1 in steps of 0.05) against the refractory
   period ``tau_ref`` (5, 7.5 and 10 ms): 21 x 3 = 63 runs;
3. run the simulator once per point; each run stores its voltage trace, time
   axis and spike count under ``results.neuron.run_XXXXXXXX`` and returns its
   firing rate in Hz;
4. postprocess: gather the 63 rates into a pandas table (rows: I, columns:
   tau_ref) and store it as ``results.summary.firing_rates``;
5. reload the HDF5 file as a later session would, print the table and plot the
   rate curves together with run 13's voltage trace.

Run it with ``python examples/firing_rate.py``: it writes ``FiringRate.h5`` and
``firing_rate.png`` into ``./explorer-output/`` (``--out DIR`` for another
folder, ``--figures DIR`` for the figure alone); ``--help`` lists the options.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np
import pandas as pd

import explorer as ex
from outputs import OUT, output_dir

TRAJECTORY = "FiringRate"
EXAMPLE_RUN = 13          # tau_ref = 5 ms, I = 0.65
TRACE_MS = 100.0          # how much of the example trace to plot


# ---------------------------------------------------------------------- simulator
def euler_neuron(V_init, I, tau_V, tau_ref, dt, duration):
    """Integrate one leaky integrate-and-fire neuron with the Euler method.

    Returns
    -------
    V : ndarray
        Membrane potential at every time step.
    spiketimes : list of float
        Times (ms) at which V crossed the threshold 1.
    times : ndarray
        The time of every step (ms), ``0, dt, 2 dt, ...`` up to ``duration``.
    """
    times = np.arange(0.0, duration, dt)
    t = times.tolist()          # Python floats: a plain loop over them is fast
    v = float(V_init)
    trace = [v]
    spiketimes = []
    for step in range(1, len(t)):
        if v >= 1.0:                                   # threshold: spike and reset
            v = 0.0
            spiketimes.append(t[step - 1])
        elif spiketimes and t[step] - spiketimes[-1] <= tau_ref:
            v = 0.0                                    # refractory: clamp at 0
        else:
            v += (-v / tau_V + I) * dt                 # Euler step
        trace.append(v)
    return np.array(trace), spiketimes, times


# ---------------------------------------------------------------------- the trajectory
def add_parameters(traj):
    """Put the neuron's and the simulation's parameters into ``traj``."""
    traj.add_parameter("neuron.V_init", 0.0,
                       comment="membrane potential at t = 0 (unitless)")
    traj.add_parameter("neuron.I", 0.0, comment="applied current (unitless)")
    # natural naming: a (value, comment) pair sets both at once
    traj.par.neuron.tau_V = 12.0, "membrane time constant in ms"
    traj.par.neuron.tau_ref = 5.0, "refractory period in ms"

    traj.add_parameter_group("simulation", comment="time step and duration of the Euler scheme")
    traj.par.simulation.duration = 1000.0, "simulated time in ms"
    traj.par.simulation.dt = 0.1, "Euler time step in ms"


def add_exploration(traj):
    """Explore every combination of I and tau_ref: 21 x 3 = 63 runs."""
    grid = ex.cartesian_product(
        {"neuron.I": np.arange(0, 1.01, 0.05).tolist(),
         "neuron.tau_ref": [5.0, 7.5, 10.0]},
        # slowest to fastest: I changes from one run to the next, like an inner loop
        order=("neuron.tau_ref", "neuron.I"))
    traj.explore(grid)


# ---------------------------------------------------------------------- per run
def run_neuron(traj):
    """Simulate one point of the grid, store its trace and return its rate in Hz."""
    V, spiketimes, times = euler_neuron(traj.V_init, traj.I, traj.tau_V, traj.tau_ref,
                                        traj.dt, traj.duration)
    nspikes = len(spiketimes)
    traj.add_result("neuron.$", V=V, times=times, nspikes=nspikes,
                    comment="membrane potential over time, its time axis (ms) "
                            "and the number of spikes")
    return nspikes / traj.duration * 1000.0     # durations are in ms


# ---------------------------------------------------------------------- after the runs
def neuron_postproc(traj, result_list):
    """Sort the firing rates into a table: one row per I, one column per tau_ref."""
    I_range = traj.get("neuron.I").range              # the value of I in every run
    ref_range = traj.get("neuron.tau_ref").range
    rates = pd.DataFrame(index=pd.Index(sorted(set(I_range)), name="I"),
                         columns=pd.Index(sorted(set(ref_range)), name="tau_ref"),
                         dtype=float)
    for run_idx, rate in result_list:                  # [(run index, return value), ...]
        rates.loc[I_range[run_idx], ref_range[run_idx]] = rate
    traj.add_result("summary.firing_rates", rates_frame=rates,
                    comment="firing rate in Hz; rows: current I, columns: tau_ref in ms")


def simulate(filename):
    """Build the trajectory, run all 63 points and store everything in ``filename``."""
    with ex.Environment(trajectory=TRAJECTORY,
                        filename=filename,
                        comment="Firing rate of a leaky integrate-and-fire neuron for "
                                "several input currents and refractory periods",
                        overwrite_file=True) as env:
        traj = env.trajectory
        add_parameters(traj)
        add_exploration(traj)
        env.add_postprocessing(neuron_postproc)
        return env.run(run_neuron)


# ---------------------------------------------------------------------- a later session
def plot(traj, png):
    """Rate-versus-current curves, and the start of one run's voltage trace."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = traj.res.summary.firing_rates.rates_frame
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7))
    for tau_ref, column in rates.items():
        top.plot(column.index, column.values, marker=".", label=f"tau_ref = {tau_ref:g} ms")
    top.set_xlabel("I")
    top.set_ylabel("firing rate [Hz]")
    top.set_title("Firing rate as a function of the input current")
    top.legend(loc="upper left")

    traj.set_run(EXAMPLE_RUN)              # explored parameters and `crun` follow run 13
    times = traj.res.neuron.crun.times
    V = traj.res.neuron.crun.V             # read from the file now
    shown = times < TRACE_MS
    bottom.plot(times[shown], V[shown])
    bottom.set_xlabel("t [ms]")
    bottom.set_ylabel("V")
    bottom.set_title(f"Run {EXAMPLE_RUN}: I = {traj.I:g}, tau_ref = {traj.tau_ref:g} ms "
                     f"(first {TRACE_MS:g} ms)")
    traj.restore_default()

    fig.tight_layout()
    directory = os.path.dirname(png)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def inspect(filename, png=None):
    """Reopen the file, print the rate table and, if ``png`` is given, plot."""
    traj = ex.load_trajectory(filename, TRAJECTORY)   # lazy: results are read on access
    print(f"Loaded {traj!r}")
    rates = traj.res.summary.firing_rates.rates_frame
    print("Firing rates in Hz (rows: I, columns: tau_ref in ms):")
    print(rates.to_string(float_format="{:.1f}".format))
    if png is not None:
        plot(traj, png)
    traj.close()


# ---------------------------------------------------------------------- command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT, metavar="DIR",
                        help="folder for the HDF5 file and the figure (default: ./%(default)s)")
    parser.add_argument("--figures", metavar="DIR",
                        help="write the figure into DIR instead of --out")
    parser.add_argument("--no-plot", action="store_true", help="do not make the figure")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    filename = os.path.join(output_dir(args.out), f"{TRAJECTORY}.h5")
    started = time.perf_counter()
    results = simulate(filename)
    print(f"Ran {len(results)} simulations in {time.perf_counter() - started:.2f} s; "
          f"stored in {os.path.abspath(filename)}")
    png = None if args.no_plot else os.path.join(args.figures or args.out, "firing_rate.png")
    if png is not None and importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed, so no figure is made "
              "(pip install -e .[plot] adds it)")
        png = None
    inspect(filename, png)
    if png is not None:
        print(f"Figure written to {os.path.abspath(png)}")


if __name__ == "__main__":
    main()
