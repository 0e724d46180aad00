"""The tutorial's leaky integrate-and-fire neuron, compiled with numba.

    dV/dt = -V / tau_V + I

integrated with Euler steps of ``dt`` from ``V_init``; when V reaches 1 the
neuron spikes, V is reset to 0 and held at 0 for the refractory period
``tau_ref``. Same steps and results as ``euler_neuron`` in
``examples/firing_rate.py`` (``times = arange(0, duration, dt)``, spike time =
the step before the reset), without the Python loop.

This lives in a module of its own, not in the benchmark script, so that dask
workers import it: an ``@njit(cache=True)`` function imported from a module
loads its compiled code from numba's disk cache (~0.2 s) instead of compiling
(~0.6 s), and a function object pickled to a worker would compile again
without any cache. Call it through the module (``lif_model.simulate``) from a
run function defined in ``__main__``, so the pickled run function refers to
the module rather than carrying the dispatcher.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["n_steps", "integrate", "simulate", "simulate_grid"]


def n_steps(duration: float, dt: float) -> int:
    """Samples of a trace: ``len(numpy.arange(0, duration, dt))``."""
    return max(0, math.ceil(duration / dt))


@njit(cache=True)
def integrate(V, V_init, I, tau_V, tau_ref, dt):
    """Fill ``V`` (one sample per step, ``V[0] = V_init``); return the spike count."""
    n = V.shape[0]
    if n == 0:
        return 0
    v = V_init
    V[0] = v
    nspikes = 0
    last_spike = 0.0
    for step in range(1, n):
        if v >= 1.0:                          # threshold: spike and reset
            v = 0.0
            last_spike = (step - 1) * dt
            nspikes += 1
        elif nspikes > 0 and step * dt - last_spike <= tau_ref:
            v = 0.0                           # refractory: clamp at 0
        else:
            v += (-v / tau_V + I) * dt        # Euler step
        V[step] = v
    return nspikes


@njit(cache=True)
def simulate(V_init, I, tau_V, tau_ref, dt, n):
    """One run: ``(V, nspikes)`` with a new array ``V`` of ``n`` samples."""
    V = np.empty(n)
    nspikes = integrate(V, V_init, I, tau_V, tau_ref, dt)
    return V, nspikes


@njit(cache=True)
def simulate_grid(out, V_init, I, tau_V, tau_ref, dt):
    """Every point ``(I[k], tau_ref[k])`` into row ``out[k]``; the spike counts."""
    counts = np.empty(out.shape[0], dtype=np.int64)
    for k in range(out.shape[0]):
        counts[k] = integrate(out[k], V_init, I[k], tau_V, tau_ref[k], dt)
    return counts
