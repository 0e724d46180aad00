"""Infer a latent double-well potential from spikes, by maximum likelihood with validation.

The problem of Genkin & Engel (Nat. Mach. Intell. 2, 2020), Figure 3, with a
parametric potential. A latent particle x(t) in [-1, 1] (reflecting boundaries)
diffuses in a potential Phi with noise magnitude D = 10:

    dx = -D Phi'(x) dt + sqrt(2 D) dW,      Phi(x) = a x^4 - b x^2 + c x,

(the paper's convention: force F = -Phi', equilibrium density ~ exp(-Phi)). The
true potential, a = 16, b = 12, c = 0.5, has two wells at x = -0.62 and x = 0.60,
the left one the deeper. A neuron fires as a Poisson process with rate
100 (x + 1) Hz. Five trials of 20 s are simulated for training and five more,
with other seeds, for validation (``examples/latent_model.py``: Euler steps of
0.1 ms, each trial starting from the equilibrium density).

The likelihood of a trial's spike counts (bins of 2 ms) is that of a hidden
Markov model on 64 cells over [-1, 1]: per candidate, the transition matrix of
one bin is the matrix exponential of the discretized Fokker-Planck generator
(scipy.linalg.expm), and a numba-compiled forward pass runs over the bins with
Poisson emission probabilities. The loss is the training negative
log-likelihood (NLL, nats per trial), the validation loss the same on the
validation trials; both are recorded for every evaluation, every evaluation a
run of the trajectory in ``fit_latent_dynamics.h5``.

L-BFGS-B (finite-difference gradients: a generation is a point and its three
neighbours) starts from the middle of the bounds, a = 20, b = 0, c = 0: a
single well. The model returned is ``fit.best_by_validation``: of the best
evaluation of each generation, the one with the lowest validation NLL. The
figure shows both NLLs per generation (each relative to the NLL of the true
potential on the same trials) and the fitted potential against the true one.

Run it with ``python examples/fit_latent_dynamics.py`` (``--method nelder-mead``
for another search method). The file and the figure, ``fit_latent_dynamics.png``,
go into ``./explorer-output/`` (``--out DIR`` for another folder, ``--figures
DIR`` for the figure alone: ``--figures docs/figures`` regenerates the
documentation's).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np

import explorer as ex
from latent_model import (
    emission_table,
    equilibrium,
    forward_nll,
    grid,
    potential,
    simulate_trial,
    transition_matrix,
)
from outputs import OUT, output_dir

TRUE = {"potential.a": 16.0, "potential.b": 12.0, "potential.c": 0.5}
BOUNDS = {"potential.a": (0.0, 40.0), "potential.b": (-20.0, 20.0), "potential.c": (-5.0, 5.0)}
D = 10.0                    # noise magnitude, 1/s
CELLS = 64                  # grid of the likelihood
BIN = 0.002                 # s, time bin of the spike counts
STEP = 0.0001               # s, Euler step of the simulation
TRIALS, DURATION = 5, 20.0  # per data set; s
SEEDS = {"training": 1, "validation": 101}
MAX_COUNT = 20              # largest spike count per bin the emission table covers


def simulate(params: dict[str, float], first_seed: int) -> list[np.ndarray]:
    """Spike counts per bin of ``TRIALS`` trials, seeds first_seed, first_seed + 1..."""
    a, b, c = (params[name] for name in TRUE)
    return [simulate_trial(a, b, c, D, DURATION, STEP, int(round(BIN / STEP)), first_seed + i)[0]
            for i in range(TRIALS)]


def model(a: float, b: float, c: float, noise: float = D, cells: int = CELLS,
          bin_width: float = BIN) -> dict[str, np.ndarray]:
    """The hidden Markov model of one potential: its transition matrix over a bin, p_eq
    (the law of the first state) and the spike counts' emission probabilities."""
    x = grid(cells)
    phi = potential(x, a, b, c)
    return {"transition": transition_matrix(phi, noise, bin_width), "p0": equilibrium(phi),
            "emission": emission_table(x, bin_width, MAX_COUNT)}


def experiment(traj) -> dict[str, np.ndarray]:
    """One evaluation: the model of the candidate potential."""
    return model(traj.potential.a, traj.potential.b, traj.potential.c,
                 traj.model.D, traj.model.cells, traj.model.bin)


class SpikeNLL:
    """Negative log-likelihood of a set of trials, nats per trial (a picklable loss)."""

    def __init__(self, trials: list[np.ndarray]):
        if max(counts.max() for counts in trials) > MAX_COUNT:
            raise ValueError(f"a bin holds more than {MAX_COUNT} spikes")
        self.trials = trials

    def __call__(self, outputs: dict[str, np.ndarray]) -> float:
        return float(np.mean([forward_nll(outputs["transition"], outputs["p0"],
                                          outputs["emission"], counts)
                              for counts in self.trials]))


def per_generation(history):
    """The best evaluation (lowest training NLL) of each generation, and which of them
    has the lowest validation NLL (the run ``fit.best_by_validation`` comes from)."""
    best = history.loc[history.groupby("generation")["loss"].idxmin()]
    return best, best["validation_loss"].idxmin()


def plot(fit: ex.Fit, reference: tuple[float, float], filename: str) -> None:
    """NLL per generation (left) and the fitted potential against the true one (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best, chosen = per_generation(fit.history)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(best["generation"], best["loss"] - reference[0], color="black", lw=2,
              label="training")
    left.plot(best["generation"], best["validation_loss"] - reference[1], color="tab:red", lw=2,
              label="validation")
    left.axvline(best.at[chosen, "generation"], color="tab:red", ls=":", lw=1)
    left.plot(best.at[chosen, "generation"], best.at[chosen, "validation_loss"] - reference[1],
              "v", color="tab:red", ms=9, label="minimal validation NLL")
    left.axhline(0.0, color="grey", lw=0.8)
    left.set_yscale("symlog", linthresh=1.0)
    lowest = min((best["loss"] - reference[0]).min(),
                 (best["validation_loss"] - reference[1]).min())
    left.set_ylim(bottom=min(-1.0, 1.5 * lowest))
    left.set_xlabel(f"generation ({fit.method})")
    left.set_ylabel("NLL - NLL of the true potential (nats / trial)")
    left.set_title("Negative log-likelihood, best of each generation")
    left.legend()

    x = np.linspace(-1.0, 1.0, 401)
    for params, style, label in (
            (TRUE, dict(color="grey", lw=4, alpha=0.6), "true"),
            ({n: (lo + hi) / 2 for n, (lo, hi) in BOUNDS.items()},
             dict(color="tab:blue", lw=1, ls="--"), "middle of the bounds (the start)"),
            (fit.best_by_validation, dict(color="tab:red", lw=2), "fit (minimal validation NLL)")):
        phi = potential(x, *(params[name] for name in TRUE))
        right.plot(x, phi - phi.min(), label=label, **style)
    right.set_xlabel("latent x")
    right.set_ylabel("potential Phi(x), shifted to min 0")
    right.set_title("Potential")
    right.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(filename) or ".", exist_ok=True)
    fig.savefig(filename, dpi=110)
    plt.close(fig)




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="l-bfgs-b")
    parser.add_argument("--max-evals", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=OUT, metavar="DIR",
                        help="folder for the HDF5 file and the figure (default: ./%(default)s)")
    parser.add_argument("--figures", metavar="DIR",
                        help="write the figure into DIR instead of --out "
                             "(docs/figures regenerates the documentation's)")
    args = parser.parse_args(argv)
    png = os.path.join(args.figures or args.out, "fit_latent_dynamics.png")

    started = time.perf_counter()
    training = SpikeNLL(simulate(TRUE, SEEDS["training"]))
    validation = SpikeNLL(simulate(TRUE, SEEDS["validation"]))
    truth = model(*TRUE.values())
    reference = (training(truth), validation(truth))     # the NLLs of the true potential
    spikes = [sum(int(c.sum()) for c in data.trials) for data in (training, validation)]
    print(f"Data: {TRIALS} + {TRIALS} trials of {DURATION:g} s, {spikes[0]} training and "
          f"{spikes[1]} validation spikes ({time.perf_counter() - started:.1f} s)")

    clock = time.perf_counter()
    filename = os.path.join(output_dir(args.out), "fit_latent_dynamics.h5")
    with ex.Environment("fit_latent_dynamics", filename=filename, overwrite_file=True,
                        workers=args.workers, progress=False) as env:
        traj = env.trajectory
        traj.add_parameter("model.D", D, comment="noise magnitude of the latent, 1/s")
        traj.add_parameter("model.cells", CELLS, comment="grid cells over [-1, 1]")
        traj.add_parameter("model.bin", BIN, comment="time bin of the spike counts, s")
        optimizer = ex.Optimizer(env, experiment, bounds=BOUNDS, loss=training,
                                 validation_loss=validation, method=args.method, seed=0)
        fit = optimizer.run(max_evals=args.max_evals)
    fit_s = time.perf_counter() - clock

    history = fit.history
    generations = history["generation"].nunique()
    row = history.loc[per_generation(history)[1]]       # where best_by_validation comes from
    best = history.loc[history["loss"].idxmin()]

    def show(params):
        return ", ".join(f"{name.split('.')[1]} = {params[name]:6.2f}" for name in TRUE)

    print(f"{args.method}: {fit.evaluations} evaluations in {generations} generations, "
          f"{fit_s:.1f} s ({fit_s / fit.evaluations * 1e3:.0f} ms per evaluation)")
    print(f"  true potential        {show(TRUE)}:  NLL training {reference[0]:.2f}, "
          f"validation {reference[1]:.2f}")
    print(f"  lowest training NLL   {show(fit.best_params)}:  NLL training {best['loss']:.2f}, "
          f"validation {best['validation_loss']:.2f} (generation {best['generation']})")
    print(f"  best_by_validation    {show(fit.best_by_validation)}:  "
          f"NLL training {row['loss']:.2f}, validation {row['validation_loss']:.2f} "
          f"(generation {row['generation']})")
    if importlib.util.find_spec("matplotlib") is None:
        png = "skipped (matplotlib is not installed: pip install -e '.[plot]')"
    else:
        plot(fit, reference, png)
    print(f"NLL in nats per trial of {DURATION:g} s; figure: {png}; "
          f"whole script {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
