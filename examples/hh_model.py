"""The classic Hodgkin-Huxley squid axon, compiled with numba (example 2's model).

    C dV/dt = I(t) - g_Na m^3 h (V - E_Na) - g_K n^4 (V - E_K) - g_L (V - E_L)
    dx/dt   = alpha_x(V) (1 - x) - beta_x(V) x          for x = m, h, n

with the standard rate functions (V in mV, rest near -65 mV, times in ms,
conductances in mS/cm^2, currents in uA/cm^2, C = 1 uF/cm^2, E_Na = 50 mV,
E_K = -77 mV), integrated with the classical 4th-order Runge-Kutta method (the
injected current held constant over each step of ``dt``). The neuron starts
at V = -65 mV with its gates at their steady state there.

This lives in a module of its own, not in the example script, so that dask
workers import it and load the compiled code from numba's disk cache
(``cache=True``) instead of compiling it again.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["C_M", "E_NA", "E_K", "V_INIT", "current", "simulate"]

C_M = 1.0        # uF/cm^2
E_NA = 50.0      # mV
E_K = -77.0      # mV
V_INIT = -65.0   # mV


def current(duration, dt, pieces):
    """A current protocol, one value per step of ``dt`` ms over ``duration`` ms.

    ``pieces`` are ``(start, stop, first, last)``: from ``start`` to ``stop`` ms
    the current goes linearly from ``first`` to ``last`` uA/cm^2 (a step when
    they are equal); it is 0 elsewhere.
    """
    values = np.zeros(int(round(duration / dt)))
    for start, stop, first, last in pieces:
        begin, end = int(round(start / dt)), int(round(stop / dt))
        values[begin:end] = np.linspace(first, last, end - begin)
    return values


@njit(cache=True, inline="always")
def _vtrap(x, y):
    """x / (1 - exp(-x / y)), continued smoothly through x = 0."""
    if abs(x / y) < 1e-6:
        return y * (1.0 + x / y / 2.0)
    return x / (1.0 - math.exp(-x / y))


@njit(cache=True, inline="always")
def _rates(v):
    """(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n) at ``v`` mV."""
    alpha_m = 0.1 * _vtrap(v + 40.0, 10.0)
    beta_m = 4.0 * math.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * math.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
    alpha_n = 0.01 * _vtrap(v + 55.0, 10.0)
    beta_n = 0.125 * math.exp(-(v + 65.0) / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


@njit(cache=True, inline="always")
def _derivatives(v, m, h, n, g_Na, g_K, g_L, E_L, i_inj):
    """(dV/dt, dm/dt, dh/dt, dn/dt) of the state ``(v, m, h, n)`` under ``i_inj``."""
    am, bm, ah, bh, an, bn = _rates(v)
    i_ion = (g_Na * m * m * m * h * (v - E_NA) + g_K * n * n * n * n * (v - E_K)
             + g_L * (v - E_L))
    return ((i_inj - i_ion) / C_M, am * (1.0 - m) - bm * m, ah * (1.0 - h) - bh * h,
            an * (1.0 - n) - bn * n)


@njit(cache=True)
def simulate(g_Na, g_K, g_L, E_L, current, dt, every):
    """The membrane potential under ``current`` (uA/cm^2, one value per step of ``dt`` ms).

    Returns every ``every``-th sample of V (mV), starting with V(0):
    ``len(current) // every`` samples.
    """
    steps = current.shape[0]
    out = np.empty(steps // every)
    v = V_INIT
    am, bm, ah, bh, an, bn = _rates(v)
    m, h, n = am / (am + bm), ah / (ah + bh), an / (an + bn)
    half = dt / 2.0
    for step in range(steps):
        if step % every == 0 and step // every < out.shape[0]:
            out[step // every] = v
        i = current[step]                       # held for the whole step
        v1, m1, h1, n1 = _derivatives(v, m, h, n, g_Na, g_K, g_L, E_L, i)
        v2, m2, h2, n2 = _derivatives(v + half * v1, m + half * m1, h + half * h1,
                                      n + half * n1, g_Na, g_K, g_L, E_L, i)
        v3, m3, h3, n3 = _derivatives(v + half * v2, m + half * m2, h + half * h2,
                                      n + half * n2, g_Na, g_K, g_L, E_L, i)
        v4, m4, h4, n4 = _derivatives(v + dt * v3, m + dt * m3, h + dt * h3, n + dt * n3,
                                      g_Na, g_K, g_L, E_L, i)
        v += dt / 6.0 * (v1 + 2.0 * v2 + 2.0 * v3 + v4)
        m += dt / 6.0 * (m1 + 2.0 * m2 + 2.0 * m3 + m4)
        h += dt / 6.0 * (h1 + 2.0 * h2 + 2.0 * h3 + h4)
        n += dt / 6.0 * (n1 + 2.0 * n2 + 2.0 * n3 + n4)
    return out
