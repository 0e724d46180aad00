"""Fit a rate neuron r = a * I + b to recorded rates, every evaluation a stored run.

Protocol: the current is 0 for 500 ms, then steps to 5 (first protocol) or to 10
(second protocol) for 500 ms more; dt = 1 ms. The neuron's rate follows the
current at once, r(t) = a * I(t) + b.

Two fits, each within 100 evaluations, bounds [-10, 10] for both parameters:

1. from data: the recorded rates are 2 then 6 under the first protocol, and 2
   then 10 under the second (so a = 0.8, b = 2);
2. from another neuron, r = (1 + 2 + 3) * I + (1 + 0 - 1), simulated under the
   same protocols (so a = 6, b = 0).

The loss is a list, the root mean squared error of each protocol's trace;
explorer sums it and keeps both parts in the history. Every evaluation is a run
of the trajectory in ``explorer-output/fit_rate_neuron.h5`` (``--out DIR`` for
another folder), so the search can be reloaded and inspected later (the script
prints the first rows of its history).

Run it with ``python examples/fit_rate_neuron.py`` (``--method`` picks another
search method, ``--workers 2`` evaluates on a local dask cluster).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import explorer as ex
from outputs import OUT, output_dir

DT = 1.0                              # ms
STEPS = (5.0, 10.0)                   # the current after 500 ms, per protocol
BOUNDS = {"neuron.a": (-10.0, 10.0), "neuron.b": (-10.0, 10.0)}


def protocol(step: float) -> np.ndarray:
    """The injected current, one value per ms: 0 for 500 ms, then ``step`` for 500 ms."""
    current = np.zeros(int(1000 / DT))
    current[int(500 / DT):] = step
    return current


PROTOCOLS = [protocol(step) for step in STEPS]


def rate_neuron(a: float, b: float) -> list[np.ndarray]:
    """The rate of the neuron under each protocol."""
    return [a * current + b for current in PROTOCOLS]


def experiment(traj) -> list[np.ndarray]:
    """One evaluation: simulate the neuron with the candidate's a and b."""
    return rate_neuron(traj.neuron.a, traj.neuron.b)


def recorded_data() -> list[np.ndarray]:
    """The recordings: 2 then 6, and 2 then 10."""
    return [np.where(np.arange(len(current)) < 500 / DT, 2.0, after)
            for current, after in zip(PROTOCOLS, (6.0, 10.0))]


def other_neuron() -> list[np.ndarray]:
    """Another neuron to match: r = (1 + 2 + 3) I + (1 + 0 - 1)."""
    return rate_neuron(1 + 2 + 3, 1 + 0 - 1)


class TraceLoss:
    """RMSE of each protocol's trace against the target (a picklable loss)."""

    def __init__(self, targets: list[np.ndarray]):
        self.targets = targets

    def __call__(self, outputs: list[np.ndarray]) -> list[float]:
        return [ex.losses.rmse(output, target) for output, target in zip(outputs, self.targets)]


def fit(name: str, targets: list[np.ndarray], method: str, max_evals: int, workers: int,
        directory: str) -> ex.Fit:
    """Fit a and b to ``targets``; the trajectory ``name`` keeps every evaluation."""
    filename = os.path.join(directory, "fit_rate_neuron.h5")
    with ex.Environment(name, filename=filename, overwrite_file=True, workers=workers,
                        progress=False) as env:
        optimizer = ex.Optimizer(env, experiment, bounds=BOUNDS, loss=TraceLoss(targets),
                                 method=method, seed=0)
        return optimizer.run(max_evals=max_evals)




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="nelder-mead")
    parser.add_argument("--max-evals", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=OUT, metavar="DIR",
                        help="folder for the HDF5 file (default: ./%(default)s)")
    args = parser.parse_args(argv)

    for name, targets, truth in (("from_data", recorded_data(), (0.8, 2.0)),
                                 ("from_other_neuron", other_neuron(), (6.0, 0.0))):
        result = fit(name, targets, args.method, args.max_evals, args.workers,
                     output_dir(args.out))
        a, b = result.best_params["neuron.a"], result.best_params["neuron.b"]
        print(f"{name}: a = {a:.4f} (true {truth[0]:g}), b = {b:.4f} (true {truth[1]:g}); "
              f"loss {result.best_loss:.2e} after {result.evaluations} evaluations "
              f"({args.method})")
    columns = ["neuron.a", "neuron.b", "loss", "loss_0", "loss_1", "generation"]
    print("History of the last fit, first evaluations:")
    print(result.history[columns].head().to_string(float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
