"""Tune a short-term plastic synapse to five target metrics with SLSQP.

The synapse is a Tsodyks-Markram synapse: every presynaptic spike releases a
fraction ``u`` of the available resources ``R``, and its efficacy is ``u * R``.
Resources recover towards 1 with the depression time constant ``Dep`` (ms);
``u`` is raised by ``Use * (1 - u)`` at each spike and relaxes back with the
facilitation time constant ``Fac`` (ms); the first spike has ``u = Use``,
``R = 1`` (a time constant of 0 means no depression, or no facilitation). Each
spike's efficacy scales a double-exponential conductance (rise ``tau1``, decay
``tau2``, ms; scaled so that an efficacy of 1 peaks at 1 nS). The conductance
of the train is the sum of these responses, computed in closed form on a
0.025 ms grid.

Protocol: after a 50 ms baseline, 8 pulses at 50 Hz (one every 20 ms), then 4
more at 50 Hz, the first of them 250 ms after the 8th (the delay counts from
the last pulse of the first train, as the published tuner sets it).

Metrics:

- per-pulse amplitude: the peak of the conductance between a pulse and the
  next (20 ms after the last), minus its value at the pulse (the tail of the
  earlier responses is not counted);
- ``ppr``, the paired-pulse ratio: 2nd amplitude / 1st;
- ``induction``: (mean of the 6th to 8th amplitudes - 1st) / peak;
- ``recovery``: (mean of the 9th to 12th - mean of the 1st to 4th) / peak;
  ``peak`` is the 90th percentile of the twelve amplitudes, as the published
  tuner normalizes;
- ``rise``: the 20-80 % rise time of a single response (ms, the crossings
  interpolated between grid points);
- ``decay``: the time constant of a single exponential fitted (least squares)
  to a single response from its peak to 100 ms after the spike (ms).

The cost is the sum of the squared errors against the targets (induction
-0.75, ppr 0.8, recovery 0, rise 2 ms, decay 9 ms), the ppr term weighted 3.
The loss returns the five weighted terms as a list: explorer sums them and
keeps each in the history (``loss_0`` ... ``loss_4``, in the order of
``TARGETS``). SLSQP starts at the middle of the bounds; its finite-difference
gradients (6 points a step) run as one batch of runs of the trajectory in
``tune_stp_synapse.h5``.

Run it with ``python examples/tune_stp_synapse.py`` (``--workers 2`` evaluates
on a local dask cluster). The file and the figure, ``tune_stp_synapse.png``, go
into ``./explorer-output/`` (``--out DIR`` for another folder, ``--figures DIR``
for the figure alone: ``--figures docs/figures`` regenerates the documentation's).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np
from scipy.optimize import minimize_scalar

import explorer as ex
from outputs import OUT, output_dir

DT = 0.025                                  # ms
BASELINE = 50.0                             # ms before the first pulse
INTERVAL = 1000.0 / 50.0                    # 50 Hz
DELAY = 250.0                               # from the 8th pulse to the 9th
EVENT = 100.0                               # ms of a single response fitted
PULSES = np.concatenate([BASELINE + INTERVAL * np.arange(8),
                         BASELINE + INTERVAL * 7 + DELAY + INTERVAL * np.arange(4)])
TIME = np.arange(0.0, PULSES[-1] + INTERVAL + DT / 2, DT)
EVENT_TIME = np.arange(0.0, EVENT + DT / 2, DT)

BOUNDS = {"syn.Dep": (0.0, 200.0), "syn.Fac": (0.0, 400.0), "syn.Use": (0.1, 1.0),
          "syn.tau1": (1.0, 4.0), "syn.tau2": (5.0, 20.0)}
TARGETS = {"induction": -0.75, "ppr": 0.8, "recovery": 0.0, "rise": 2.0, "decay": 9.0}
WEIGHTS = {"ppr": 3.0}
PUBLISHED_COST = 2.1e-2


# ---------------------------------------------------------------------- the synapse
def efficacies(dep: float, fac: float, use: float, pulses: np.ndarray = PULSES) -> np.ndarray:
    """The efficacy ``u * R`` of every spike of a Tsodyks-Markram synapse."""
    result = np.empty(len(pulses))
    u, available = use, 1.0
    for n in range(len(pulses)):
        if n:
            gap = pulses[n] - pulses[n - 1]
            kept = np.exp(-gap / fac) if fac > 0 else 0.0        # facilitation left
            u = use + (1.0 - use) * u * kept
            lost = np.exp(-gap / dep) if dep > 0 else 0.0        # depression left
            available = 1.0 - (1.0 - available) * lost
        result[n] = u * available
        available -= u * available                               # resources released
    return result


def double_exponential(t: np.ndarray, tau1: float, tau2: float) -> np.ndarray:
    """The response to one spike of efficacy 1: peaks at 1, zero before ``t = 0``."""
    t_peak = tau1 * tau2 / (tau2 - tau1) * np.log(tau2 / tau1)
    scale = 1.0 / (np.exp(-t_peak / tau2) - np.exp(-t_peak / tau1))
    shape = scale * (np.exp(-np.maximum(t, 0.0) / tau2) - np.exp(-np.maximum(t, 0.0) / tau1))
    return np.where(t >= 0.0, shape, 0.0)


def conductance(dep: float, fac: float, use: float, tau1: float, tau2: float,
                grid: np.ndarray = TIME, pulses: np.ndarray = PULSES) -> np.ndarray:
    """The conductance (nS) of the synapse driven by ``pulses``, sampled at ``grid``."""
    weights = efficacies(dep, fac, use, pulses)
    return weights @ double_exponential(grid[None, :] - pulses[:, None], tau1, tau2)


# ---------------------------------------------------------------------- the metrics
def pulse_amplitudes(trace: np.ndarray, grid: np.ndarray = TIME,
                     pulses: np.ndarray = PULSES) -> np.ndarray:
    """Each pulse's peak above the trace's value at the pulse, up to the next pulse."""
    edges = np.searchsorted(grid, np.append(pulses, pulses[-1] + INTERVAL) - DT / 2)
    return np.array([trace[a:b].max() - trace[a] for a, b in zip(edges[:-1], edges[1:])])


def plasticity(amplitudes: np.ndarray) -> dict[str, float]:
    """Paired-pulse ratio, induction and recovery of the twelve amplitudes."""
    peak = np.percentile(amplitudes, 90)
    return {"ppr": amplitudes[1] / amplitudes[0],
            "induction": (amplitudes[5:8].mean() - amplitudes[0]) / peak,
            "recovery": (amplitudes[8:12].mean() - amplitudes[:4].mean()) / peak}


def crossing(trace: np.ndarray, level: float) -> float:
    """The first time ``trace`` (on ``EVENT_TIME``) reaches ``level``, interpolated."""
    i = int(np.argmax(trace >= level))
    return EVENT_TIME[i - 1] + DT * (level - trace[i - 1]) / (trace[i] - trace[i - 1])


def exponential_fit(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(a, tau)`` of ``a * exp(-t / tau)`` through ``(t, y)``.

    For a given ``tau`` the best ``a`` is linear; the remaining misfit is
    minimized over ``tau`` alone (tightly, so that ``tau`` is smooth enough for
    finite differences).
    """
    def misfit(tau: float) -> float:
        basis = np.exp(-t / tau)
        return -(basis @ y) ** 2 / (basis @ basis)          # residual minus a constant

    tau = float(minimize_scalar(misfit, bounds=(0.1, 200.0), method="bounded",
                                options={"xatol": 1e-10}).x)
    basis = np.exp(-t / tau)
    return float(basis @ y / (basis @ basis)), tau


def kinetics(tau1: float, tau2: float) -> dict[str, float]:
    """20-80 % rise time and fitted decay time constant of one response (ms)."""
    event = double_exponential(EVENT_TIME, tau1, tau2)
    top = int(np.argmax(event))
    rise = crossing(event, 0.8 * event[top]) - crossing(event, 0.2 * event[top])
    _, decay = exponential_fit(EVENT_TIME[top:] - EVENT_TIME[top], event[top:])
    return {"rise": rise, "decay": decay}


def metrics(dep: float, fac: float, use: float, tau1: float, tau2: float) -> dict[str, float]:
    """The five metrics of the synapse with these parameters."""
    trace = conductance(dep, fac, use, tau1, tau2)
    return {**plasticity(pulse_amplitudes(trace)), **kinetics(tau1, tau2)}


# ---------------------------------------------------------------------- the fit
def experiment(traj) -> dict[str, float]:
    """One evaluation: the metrics of the candidate synapse."""
    syn = traj.syn
    return metrics(syn.Dep, syn.Fac, syn.Use, syn.tau1, syn.tau2)


def cost_terms(outputs: dict[str, float]) -> list[float]:
    """The weighted squared error of each metric, in the order of ``TARGETS``."""
    return [ex.losses.feature_loss({name: outputs[name]}, {name: target},
                                   {name: WEIGHTS.get(name, 1.0)})
            for name, target in TARGETS.items()]


def tune(max_evals: int, workers: int, directory: str) -> ex.Fit:
    """SLSQP from the middle of the bounds; every evaluation a run in the file."""
    with ex.Environment("tune_stp_synapse",
                        filename=os.path.join(directory, "tune_stp_synapse.h5"),
                        overwrite_file=True, workers=workers, progress=False) as env:
        optimizer = ex.Optimizer(env, experiment, bounds=BOUNDS, loss=cost_terms,
                                 method="slsqp", seed=0,
                                 options={"step": 1e-6, "ftol": 1e-8})
        return optimizer.run(max_evals=max_evals)


def plot(params: dict[str, float], found: dict[str, float], png: str) -> None:
    """The train response and a single response with the tuned parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dep, fac, use, tau1, tau2 = (params[name] for name in BOUNDS)
    trace = conductance(dep, fac, use, tau1, tau2)
    amplitudes = pulse_amplitudes(trace)
    fig, (train, single) = plt.subplots(1, 2, figsize=(11, 3.8),
                                        gridspec_kw={"width_ratios": [3, 1]})
    train.plot(TIME, trace, color="tab:blue", lw=1)
    edges = np.searchsorted(TIME, PULSES - DT / 2)
    for n, (edge, amplitude) in enumerate(zip(edges, amplitudes), 1):
        top = TIME[edge] + DT * np.argmax(trace[edge:edge + int(INTERVAL / DT)])
        train.vlines(top, trace[edge], trace[edge] + amplitude, color="tab:orange", lw=1.5)
        train.annotate(str(n), (top, trace[edge] + amplitude), textcoords="offset points",
                       xytext=(0, 3), ha="center", fontsize=7)
    train.plot(PULSES, np.zeros_like(PULSES), "|", color="k", ms=8)
    train.set(xlabel="time (ms)", ylabel="conductance (nS)",
              title="8 pulses at 50 Hz, 4 more 250 ms later (orange: amplitudes)")
    event = double_exponential(EVENT_TIME, tau1, tau2)
    top = int(np.argmax(event))
    single.plot(EVENT_TIME, event, color="tab:blue", lw=1.2, label="response")
    after = EVENT_TIME[top:] - EVENT_TIME[top]
    scale, decay = exponential_fit(after, event[top:])
    single.plot(EVENT_TIME[top:], scale * np.exp(-after / decay), "--", color="tab:red", lw=1,
                label=f"exponential fit, {decay:.2f} ms")
    for level in (0.2, 0.8):
        single.axhline(level * event[top], color="grey", lw=0.5, ls=":")
    single.set(xlim=(0, 40), xlabel="time after the spike (ms)",
               title=f"single response: rise {found['rise']:.2f} ms")
    single.legend(fontsize=8, frameon=False)
    fig.suptitle("Tuned synapse, metric (target): " + ", ".join(
        f"{name} {found[name]:.3f} ({TARGETS[name]:g})" for name in TARGETS), fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(png) or ".", exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-evals", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=OUT, metavar="DIR",
                        help="folder for the HDF5 file and the figure (default: ./%(default)s)")
    parser.add_argument("--figures", metavar="DIR",
                        help="write the figure into DIR instead of --out "
                             "(docs/figures regenerates the documentation's)")
    args = parser.parse_args(argv)
    png = os.path.join(args.figures or args.out, "tune_stp_synapse.png")

    began = time.perf_counter()
    result = tune(args.max_evals, args.workers, output_dir(args.out))
    elapsed = time.perf_counter() - began
    found = metrics(*(result.best_params[name] for name in BOUNDS))
    print(f"cost {result.best_loss:.2e} (published tuner: {PUBLISHED_COST:.1e}) after "
          f"{result.evaluations} evaluations in {elapsed:.1f} s (slsqp, "
          f"{args.workers} worker{'s' if args.workers > 1 else ''})")
    print(f"{'metric':<10} {'value':>8} {'target':>8} {'weighted error^2':>17}")
    for name, term in zip(TARGETS, cost_terms(found)):
        print(f"{name:<10} {found[name]:8.3f} {TARGETS[name]:8.3f} {term:17.2e}")
    print("parameters: " + ", ".join(f"{name.split('.')[1]} = {value:.3f}"
                                     for name, value in result.best_params.items()))
    if importlib.util.find_spec("matplotlib") is None:
        print("figure skipped: matplotlib is not installed (pip install -e '.[plot]')")
        return
    plot(result.best_params, found, png)
    print(f"figure: {png}")


if __name__ == "__main__":
    main()
