"""Compiled models the simulator tests run, importable by dask worker processes."""
from __future__ import annotations

import numba
import numpy as np

import explorer as ex


@numba.njit(cache=True)
def lif(V_init, I, tau_V, tau_ref, dt, duration):
    """The tutorial's leaky integrate-and-fire neuron: ``(V, nspikes)``."""
    n = int(round(duration / dt))
    V = np.empty(n)
    v, nspikes, refractory_until = V_init, 0, -1.0
    for step in range(n):
        t = step * dt
        if v >= 1.0:
            v, nspikes, refractory_until = 0.0, nspikes + 1, t + tau_ref
        elif t < refractory_until:
            v = 0.0
        else:
            v += (-v / tau_V + I) * dt
        V[step] = v
    return V, nspikes


def run_lif(traj):
    """The same model as a plain run function."""
    V, nspikes = lif(traj.V_init, traj.I, traj.tau_V, traj.tau_ref, traj.dt, traj.duration)
    traj.add_result("neuron.$", V=V, nspikes=nspikes)


@numba.njit(cache=True)
def spike_times(I, tau_V, dt, duration):
    """Outputs whose shape varies from run to run: the spike times, and their count."""
    v, times = 0.0, []
    for step in range(int(round(duration / dt))):
        v += (-v / tau_V + I) * dt
        if v >= 1.0:
            v = 0.0
            times.append(step * dt)
    return np.array(times), len(times)


def run_spike_times(traj):
    times, count = spike_times(traj.I, traj.tau_V, traj.dt, traj.duration)
    traj.add_result("spikes.$", times=times, count=count)


@numba.njit(cache=True)
def picky(I, tau_V):
    """Raises for large currents (a run that fails inside compiled code)."""
    if I > 0.5:
        raise ValueError("current too large")
    return I * tau_V


@numba.njit(cache=True)
def weighted(I, weights):
    """Takes an array parameter; returns one value, bare."""
    return I * weights.sum()


@ex.simulator(outputs=("V", "nspikes"), result="neuron")
def declared_lif(V_init, I, tau_V, tau_ref, dt, duration):
    """:func:`lif` declared with the decorator."""
    return lif(V_init, I, tau_V, tau_ref, dt, duration)


@ex.simulator(outputs=("V", "nspikes"), result="neuron", parallel=True)
def parallel_lif(V_init, I, tau_V, tau_ref, dt, duration):
    return lif(V_init, I, tau_V, tau_ref, dt, duration)


@numba.njit
def three(I):
    return I, I, I


@numba.njit
def needs_gain(I, gain):
    return I * gain


@numba.njit
def with_default(I, gain=2.0):
    return I * gain
