"""The rate neuron of the fitting tests (example 1), importable by worker processes."""
from __future__ import annotations

import os
import time

import numpy as np

import explorer as ex

CURRENTS = [np.where(np.arange(1000) < 500, 0.0, step) for step in (5.0, 10.0)]
#: Recorded rates (2 then 6, and 2 then 10): a = 0.8, b = 2.
DATA = [np.where(np.arange(1000) < 500, 2.0, after) for after in (6.0, 10.0)]
#: The other neuron, r = (1 + 2 + 3) I + (1 + 0 - 1): a = 6, b = 0.
OTHER = [6.0 * current + 0.0 for current in CURRENTS]
BOUNDS = {"neuron.a": (-10.0, 10.0), "neuron.b": (-10.0, 10.0)}


def experiment(traj):
    return [traj.neuron.a * current + traj.neuron.b for current in CURRENTS]


class TraceLoss:
    """RMSE per protocol against ``targets``."""

    def __init__(self, targets):
        self.targets = targets

    def __call__(self, outputs):
        return [ex.losses.rmse(output, target) for output, target in zip(outputs, self.targets)]


def validation(outputs):
    """A held-out check: the second protocol against a noisy copy of the data."""
    noisy = DATA[1] + 0.1 * np.sin(np.arange(1000))
    return ex.losses.rmse(outputs[1], noisy)


def fragile_experiment(traj):
    """Raises for negative a: the search must go on around it."""
    if traj.neuron.a < 0:
        raise ValueError(f"negative gain a={traj.neuron.a:.3f}")
    return experiment(traj)


def slow_experiment(traj):
    """The experiment, slowed down so that a test can stop the search midway."""
    time.sleep(float(os.environ.get("EXPLORER_TEST_DELAY", "0.02")))
    return experiment(traj)
