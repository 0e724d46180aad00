"""The firing-rate grid of the tutorial with a numba-compiled simulator, 10,000 runs.

The leaky integrate-and-fire neuron of ``examples/firing_rate.py``, written as
a compiled simulator: a ``numba.njit`` function whose arguments are named after
the trajectory's parameters and whose return values are the run's outputs.
``@ex.simulator`` declares what it returns and where the outputs go:

    @ex.simulator(outputs=("V", "nspikes"), result="neuron")
    def lif(V_init, I, tau_V, tau_ref, dt, duration): ...

``env.run(lif)`` then evaluates whole chunks of runs in one compiled loop and
stores every run's trace and spike count as ``results.neuron.<run>.V`` and
``.nspikes``. This script explores I (1,000 values from 0 to 1) against tau_ref
(10 values, 1 to 10 ms), 10,000 runs of 10,000 Euler steps each, prints how long
it took (compilation apart) and a few firing rates read back from the file.

Run it with ``python examples/firing_rate_numba.py`` (``--workers 2`` for a local
dask cluster, ``--points`` for another grid size); it writes
``FiringRateNumba.h5`` into ``./explorer-output/`` (``--out DIR`` for another folder).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import explorer as ex
from outputs import OUT, output_dir

TRAJECTORY = "FiringRateNumba"


@ex.simulator(outputs=("V", "nspikes"), result="neuron")   # compiled with numba.njit(cache=True)
def lif(V_init, I, tau_V, tau_ref, dt, duration):
    """One run: the membrane potential at every step, and the number of spikes."""
    n = int(round(duration / dt))
    V = np.empty(n)
    v, nspikes, refractory_until = V_init, 0, -1.0
    for step in range(n):
        t = step * dt
        if v >= 1.0:                        # threshold: spike, reset, refractory
            v, nspikes, refractory_until = 0.0, nspikes + 1, t + tau_ref
        elif t < refractory_until:
            v = 0.0
        else:
            v += (-v / tau_V + I) * dt      # Euler step
        V[step] = v
    return V, nspikes


def build(traj, points: int) -> None:
    """The tutorial's parameters, and the grid I x tau_ref."""
    traj.add_parameter("neuron.V_init", 0.0, comment="membrane potential at t = 0")
    traj.add_parameter("neuron.I", 0.0, comment="applied current")
    traj.add_parameter("neuron.tau_V", 12.0, comment="membrane time constant in ms")
    traj.add_parameter("neuron.tau_ref", 5.0, comment="refractory period in ms")
    traj.add_parameter("simulation.duration", 1000.0, comment="simulated time in ms")
    traj.add_parameter("simulation.dt", 0.1, comment="Euler time step in ms")
    traj.explore(ex.cartesian_product(
        {"neuron.I": np.linspace(0.0, 1.0, points).tolist(),
         "neuron.tau_ref": np.linspace(1.0, 10.0, 10).tolist()},
        order=("neuron.tau_ref", "neuron.I")))




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT, metavar="DIR",
                        help="folder for the HDF5 file (default: ./%(default)s)")
    parser.add_argument("--points", type=int, default=1000, help="values of I (x 10 tau_ref)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    filename = os.path.join(output_dir(args.out), f"{TRAJECTORY}.h5")

    started = time.perf_counter()
    with ex.Environment(TRAJECTORY, filename=filename, overwrite_file=True,
                        workers=args.workers, progress=False) as env:
        build(env.trajectory, args.points)
        clock = time.perf_counter()
        env.run(lif)
        run_s = time.perf_counter() - clock
        timings = env.timings
    total = time.perf_counter() - started
    runs = args.points * 10
    size = os.path.getsize(filename) / 1e6
    print(f"Ran {runs:,} simulations of 10,000 steps with {args.workers} worker(s): env.run "
          f"{run_s:.2f} s ({runs / run_s:,.0f} runs/s, {run_s / runs * 1e6:.0f} us per run, "
          f"V stored), of which compiling the batch loop {timings['compile_seconds']:.2f} s; "
          f"whole script {total:.2f} s; {filename}: {size:.0f} MB")

    traj = ex.load_trajectory(filename)          # a later session: lazy reload
    frame = traj.to_frame()
    rates = frame.pivot(index="I", columns="tau_ref", values="nspikes")  # spikes in 1 s = Hz
    print("Firing rate in Hz for a few currents (rows: I, columns: tau_ref in ms):")
    shown = rates.iloc[:: max(1, len(rates) // 5)]
    print(shown.iloc[:, ::3].to_string(float_format="{:.3f}".format))
    traj.set_run(runs - 1)
    print(f"Run {runs - 1}: I = {traj.I:g}, tau_ref = {traj.tau_ref:g} ms, "
          f"{traj.res.neuron.crun.nspikes} spikes, V has {traj.res.neuron.crun.V.shape[0]:,} "
          f"samples")


if __name__ == "__main__":
    main()
