"""Shared fixtures: real HDF5 files in ``tmp_path`` and small real trajectories.

Nothing of explorer is mocked here; fixtures only build trajectories through the
public API (``import explorer as ex``) and hand out file names.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import explorer as ex


@pytest.fixture
def h5path(tmp_path: pathlib.Path) -> str:
    """A not yet existing HDF5 file name inside the test's own directory."""
    return str(tmp_path / "data.h5")


def tutorial_trajectory() -> ex.Trajectory:
    """The trajectory of API.md section 1, built exactly as documented there."""
    traj = ex.Trajectory("FiringRate", comment="LIF firing rates")
    traj.add_parameter("neuron.V_init", 0.0, comment="initial membrane potential")
    traj.add_parameter("neuron.I", 0.0, comment="applied current")
    traj.par.neuron.tau_V = 12.0, "membrane time constant in ms"
    traj.par.neuron.tau_ref = 5.0
    traj.add_parameter_group("simulation", comment="dt and duration")
    traj.par.simulation.duration = 1000.0
    traj.par.simulation.dt = 0.1
    traj.add_config("seed", 42)
    traj.add_derived_parameter("neuron.steps", 10000)
    return traj


@pytest.fixture
def neuron_traj() -> ex.Trajectory:
    """The trajectory of API.md section 1 (:func:`tutorial_trajectory`)."""
    return tutorial_trajectory()


@pytest.fixture(scope="session")
def make_tutorial_trajectory():
    """:func:`tutorial_trajectory`, for fixtures of a wider scope than a test."""
    return tutorial_trajectory


@pytest.fixture
def grid() -> dict[str, list]:
    """The exploration of API.md section 2 (63 points, ``neuron.I`` fastest)."""
    return ex.cartesian_product({"neuron.I": np.arange(0, 1.01, 0.05).tolist(),
                                 "neuron.tau_ref": [5.0, 7.5, 10.0]},
                                order=("neuron.tau_ref", "neuron.I"))


@pytest.fixture
def make_env(h5path):
    """Build a serial Environment without a progress bar; closed after the test."""
    made: list[ex.Environment] = []

    def make(trajectory="T", filename=None, **options) -> ex.Environment:
        options.setdefault("progress", False)
        env = ex.Environment(trajectory, filename or h5path, **options)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture
def square_run():
    """A run function that stores ``x**2`` per run and returns ``10 * x``."""

    def run(traj):
        traj.add_result("square.$", value=traj.x ** 2, comment="x squared")
        return 10 * traj.x

    return run
