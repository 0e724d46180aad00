"""Recover a Hodgkin-Huxley neuron's g_Na, g_K, g_L and E_L from voltage traces.

The model is the classic squid axon (``examples/hh_model.py``), compiled with
numba, integrated with RK4 steps of dt = 0.01 ms and V recorded every 0.1 ms.
The true values g_Na = 120, g_K = 36, g_L = 0.3 mS/cm^2 and E_L = -54.387 mV
make the "recorded" traces under two current protocols:

* training: 8 sweeps of 100 ms, each with a 30 ms current step (from 20 to
  50 ms) of -6, -3, 2, 4, 6, 9, 12 or 15 uA/cm^2. They show hyperpolarization
  and its rebound, subthreshold responses, a single spike and short bursts;
* held out: 3 sweeps of 300 ms that the fit never sees: 200 ms steps of 7
  and 14 uA/cm^2 (tonic firing), and a staircase of 50 ms steps of 3, 6, 9
  and 12 uA/cm^2.

The four parameters are searched within +-50 % of the truth (E_L from -81.6
to -27.2 mV). L-BFGS-B, with finite-difference gradients in the unit cube,
runs from 10 random starts side by side. A generation holds every live
start's point and its 4 neighbours, up to 50 runs evaluated together on the
environment's workers. The loss is the RMSE (mV) between the simulated and
recorded training traces, all sweeps together. ``validation_loss`` is the same
on the held-out protocol and is recorded for every evaluation. Spike timing
makes the landscape multimodal (one spike more or less is a local minimum),
hence the random starts. With seed 0, run to its end (5,750 evaluations in
234 generations), the search brings 7 of the 10 starts within 1 % of the
truth. The default budget of 3,000 evaluations (60 generations) stops it once
the best start is there.

Every evaluation is a run of the trajectory in ``fit_hh_neuron.h5``. The
script prints each fitted parameter against the truth, the training and
held-out losses, the evaluations and the wall time. It saves a figure of the
recorded against the fitted traces of both protocols, ``fit_hh_neuron.png``.
Both go into ``./explorer-output/`` (``--out DIR`` for another folder,
``--figures DIR`` for the figure alone: ``--figures docs/figures`` regenerates
the documentation's).

Run it with ``python examples/fit_hh_neuron.py``. ``--workers 2`` evaluates on
a local dask cluster; ``--method``, ``--starts``, ``--seed`` and ``--max-evals``
change the search.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np

import explorer as ex
import hh_model
from outputs import OUT, output_dir

TRUTH = {"neuron.g_Na": 120.0, "neuron.g_K": 36.0, "neuron.g_L": 0.3, "neuron.E_L": -54.387}
UNITS = {"neuron.g_Na": "mS/cm^2", "neuron.g_K": "mS/cm^2", "neuron.g_L": "mS/cm^2",
         "neuron.E_L": "mV"}
#: +-50 % around the truth
BOUNDS = {name: tuple(sorted((0.5 * value, 1.5 * value))) for name, value in TRUTH.items()}
DT = 0.01           # ms, integration step
EVERY = 10          # record every 10th step: V every 0.1 ms
#: Each protocol: sweeps of (duration in ms, pieces (start, stop, first, last) of current).
PROTOCOLS = {
    "training": tuple((100.0, ((20.0, 50.0, amplitude, amplitude),))
                      for amplitude in (-6.0, -3.0, 2.0, 4.0, 6.0, 9.0, 12.0, 15.0)),
    "held_out": ((300.0, ((50.0, 250.0, 7.0, 7.0),)),
                 (300.0, ((50.0, 250.0, 14.0, 14.0),)),
                 (300.0, tuple((50.0 + 50.0 * k, 100.0 + 50.0 * k, level, level)
                               for k, level in enumerate((3.0, 6.0, 9.0, 12.0))))),
}


def simulate(params: dict[str, float], dt: float = DT,
             every: int = EVERY) -> dict[str, list[np.ndarray]]:
    """V (mV, every ``every``-th step) of every sweep of every protocol."""
    g_Na, g_K, g_L, E_L = (params[name] for name in TRUTH)
    return {name: [hh_model.simulate(g_Na, g_K, g_L, E_L,
                                     hh_model.current(duration, dt, pieces), dt, every)
                   for duration, pieces in sweeps]
            for name, sweeps in PROTOCOLS.items()}


def experiment(traj) -> dict[str, list[np.ndarray]]:
    """One evaluation: the candidate neuron under both protocols."""
    return simulate({name: traj[name] for name in TRUTH}, traj.simulation.dt,
                    traj.simulation.record_every)


class TraceRMSE:
    """RMSE (mV) of one protocol's traces, all sweeps together (a picklable loss)."""

    def __init__(self, recorded: dict[str, list[np.ndarray]], protocol: str):
        self.protocol = protocol
        self.target = np.concatenate(recorded[protocol])

    def __call__(self, outputs: dict[str, list[np.ndarray]]) -> float:
        return ex.losses.rmse(np.concatenate(outputs[self.protocol]), self.target)


def within(params: dict[str, float], tolerance: float = 0.05) -> bool:
    """Whether every parameter is within ``tolerance`` (relative) of the truth."""
    return all(abs(params[name] - value) <= tolerance * abs(value)
               for name, value in TRUTH.items())


def plot(recorded: dict[str, list[np.ndarray]], fitted: dict[str, list[np.ndarray]],
         losses: dict[str, float], filename: str) -> None:
    """Recorded against fitted V of both protocols, sweeps one after another; below each,
    the difference (fitted - recorded) and the injected current."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 9), layout="constrained")
    titles = {"training": "Training protocol (fitted)",
              "held_out": "Held-out protocol (not fitted)"}
    for subfig, name in zip(fig.subfigures(2, 1, hspace=0.04), PROTOCOLS):
        volt, diff, amps = subfig.subplots(3, 1, sharex=True, height_ratios=(3, 1, 1))
        offset = 0.0
        for k, (duration, pieces) in enumerate(PROTOCOLS[name]):
            t = offset + np.arange(len(recorded[name][k])) * DT * EVERY
            volt.plot(t, recorded[name][k], color="black", lw=2.2, alpha=0.45,
                      label="recorded (true parameters)" if k == 0 else None)
            volt.plot(t, fitted[name][k], color="tab:red", lw=0.9,
                      label="fitted" if k == 0 else None)
            diff.plot(t, fitted[name][k] - recorded[name][k], color="tab:red", lw=0.8)
            amps.plot(t, hh_model.current(duration, DT, pieces)[::EVERY], color="tab:blue", lw=1)
            offset += duration
            for ax in (volt, diff, amps):
                ax.axvline(offset, color="grey", lw=0.6, ls=":")
        volt.set_title(f"{titles[name]}: RMSE {losses[name]:.3f} mV", loc="left")
        volt.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=2,
                    frameon=False)
        volt.set_ylabel("V (mV)")
        diff.set_ylabel("fit - rec.\n(mV)")
        amps.set_ylabel("I (uA/cm2)")
        amps.set_xlabel("time, sweeps one after another (ms)")
        amps.set_xlim(0, offset)
    os.makedirs(os.path.dirname(filename) or ".", exist_ok=True)
    fig.savefig(filename, dpi=110)
    plt.close(fig)




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="l-bfgs-b")
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-evals", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=OUT, metavar="DIR",
                        help="folder for the HDF5 file and the figure (default: ./%(default)s)")
    parser.add_argument("--figures", metavar="DIR",
                        help="write the figure into DIR instead of --out "
                             "(docs/figures regenerates the documentation's)")
    args = parser.parse_args(argv)
    png = os.path.join(args.figures or args.out, "fit_hh_neuron.png")

    started = time.perf_counter()
    recorded = simulate(TRUTH)                                 # compiles, or loads numba's cache
    filename = os.path.join(output_dir(args.out), "fit_hh_neuron.h5")
    with ex.Environment("fit_hh_neuron", filename=filename, overwrite_file=True,
                        workers=args.workers, progress=False) as env:
        env.trajectory.add_parameter("simulation.dt", DT, comment="integration step (ms)")
        env.trajectory.add_parameter("simulation.record_every", EVERY,
                                     comment="steps per recorded sample of V")
        optimizer = ex.Optimizer(env, experiment, bounds=BOUNDS,
                                 loss=TraceRMSE(recorded, "training"),
                                 validation_loss=TraceRMSE(recorded, "held_out"),
                                 method=args.method, seed=args.seed, starts=args.starts)
        fit = optimizer.run(max_evals=args.max_evals)
    wall = time.perf_counter() - started

    history = fit.history
    best = history.loc[fit.best_run]
    per_start = history.loc[history.groupby("start")["loss"].idxmin()]
    good = sum(within(row) for _, row in per_start.iterrows())
    sweeps = {name: len(sweeps) for name, sweeps in PROTOCOLS.items()}
    print(f"Hodgkin-Huxley fit, {args.method} from {args.starts} random starts (seed "
          f"{args.seed}), workers={args.workers}: {fit.evaluations} evaluations in "
          f"{history['generation'].nunique()} generations, {wall:.1f} s "
          f"({wall / fit.evaluations * 1e3:.1f} ms per evaluation, everything included)")
    for name, value in TRUTH.items():
        error = (fit.best_params[name] - value) / abs(value) * 100
        print(f"  {name.split('.')[1]:<5} {fit.best_params[name]:9.3f} {UNITS[name]:<8} "
              f"(true {value:8.3f})  error {error:+6.2f} %")
    print(f"  training loss {fit.best_loss:.3f} mV RMSE ({sweeps['training']} sweeps), "
          f"held-out loss {best['validation_loss']:.3f} mV RMSE ({sweeps['held_out']} sweeps, "
          f"not fitted)")
    print(f"  all four within 5 % of the truth: {'yes' if within(fit.best_params) else 'NO'}; "
          f"starts whose best is within 5 %: {good} of {len(per_start)}")
    if importlib.util.find_spec("matplotlib") is None:
        print("figure skipped: matplotlib is not installed (pip install -e '.[plot]')")
        return
    plot(recorded, simulate(fit.best_params),
         {"training": fit.best_loss, "held_out": best["validation_loss"]}, png)
    print(f"figure: {png}")


if __name__ == "__main__":
    main()
