"""A latent particle in a potential, seen through one neuron's spikes: simulation and likelihood.

The latent x(t) lives on [-1, 1] (reflecting boundaries) and follows the
Langevin equation

    dx = -D Phi'(x) dt + sqrt(2 D) dW,

the convention of Genkin & Engel (2020): the driving force is F = -Phi', and
the equilibrium density is p_eq(x) ~ exp(-Phi(x)). Here the potential is a
tilted double well, Phi(x) = a x^4 - b x^2 + c x. A neuron fires as an
inhomogeneous Poisson process with rate f(x) = 100 (x + 1) Hz.

The likelihood of binned spike counts is that of a hidden Markov model on a
grid over x: the states are the centres of N equal cells; a bin's transition
matrix is exp(G dt), G the generator of a random walk between neighbouring
cells with rates (D / h^2) exp(-(Phi_j - Phi_i) / 2), which has p_eq as its
stationary law and the Fokker-Planck equation as its limit for small cells; the
spike count of a bin is Poisson with mean f(x) dt given the state at its end.
The forward pass over the bins is compiled with numba.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from scipy.linalg import expm

SLOPE, THRESHOLD = 100.0, -1.0        # the firing rate: SLOPE * (x - THRESHOLD), in Hz


def potential(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """Phi(x) = a x^4 - b x^2 + c x."""
    return a * x**4 - b * x**2 + c * x


def firing_rate(x: np.ndarray) -> np.ndarray:
    """f(x) = 100 (x + 1) Hz."""
    return SLOPE * (x - THRESHOLD)


# ---------------------------------------------------------------------- simulation
@numba.njit(cache=True)
def simulate_trial(a, b, c, D, duration, dt, bin_steps, seed):
    """One trial: spike counts per bin of ``bin_steps`` Euler steps, and x at each bin's end.

    Euler-Maruyama steps of ``dt`` seconds, reflected at -1 and 1; the spikes of
    a step are Poisson with mean f(x) dt. x(0) is drawn from p_eq (by rejection).
    """
    np.random.seed(seed)
    low = np.inf                                  # below min Phi on [-1, 1]
    for i in range(2001):
        y = -1.0 + i / 1000.0
        low = min(low, a * y**4 - b * y**2 + c * y)
    low -= 0.1
    while True:                                   # x(0) ~ exp(-Phi): rejection sampling
        x = 2.0 * np.random.random() - 1.0
        if np.random.random() < math.exp(low - (a * x**4 - b * x**2 + c * x)):
            break
    bins = int(round(duration / (dt * bin_steps)))
    counts = np.zeros(bins, dtype=np.int64)
    latent = np.empty(bins)
    noise = math.sqrt(2.0 * D * dt)
    for k in range(bins):
        n = 0
        for _ in range(bin_steps):
            force = -(4.0 * a * x**3 - 2.0 * b * x + c)
            x += D * force * dt + noise * np.random.standard_normal()
            if x > 1.0:                           # reflect
                x = 2.0 - x
            elif x < -1.0:
                x = -2.0 - x
            n += np.random.poisson(SLOPE * (x - THRESHOLD) * dt)
        counts[k] = n
        latent[k] = x
    return counts, latent


# ---------------------------------------------------------------------- likelihood
def grid(n: int) -> np.ndarray:
    """The centres of ``n`` equal cells covering [-1, 1]."""
    h = 2.0 / n
    return -1.0 + h * (np.arange(n) + 0.5)


def transition_matrix(phi: np.ndarray, D: float, dt: float) -> np.ndarray:
    """exp(G dt): row i is the law of the state one bin after state i."""
    n = len(phi)
    h = 2.0 / n
    up = D / h**2 * np.exp(-(phi[1:] - phi[:-1]) / 2.0)      # i -> i + 1
    down = D / h**2 * np.exp(-(phi[:-1] - phi[1:]) / 2.0)    # i + 1 -> i
    generator = np.diag(up, 1) + np.diag(down, -1)
    generator -= np.diag(generator.sum(axis=1))              # no flux out of [-1, 1]
    return np.maximum(expm(generator * dt), 0.0)


def equilibrium(phi: np.ndarray) -> np.ndarray:
    """p_eq on the grid (a probability vector)."""
    weights = np.exp(-(phi - phi.min()))
    return weights / weights.sum()


def emission_table(x: np.ndarray, dt: float, max_count: int) -> np.ndarray:
    """P(k spikes in a bin | state), k = 0 .. max_count (rows)."""
    mean = firing_rate(x) * dt
    table = np.empty((max_count + 1, len(x)))
    table[0] = np.exp(-mean)
    for k in range(1, max_count + 1):
        table[k] = table[k - 1] * mean / k
    return table


@numba.njit(cache=True)
def forward_nll(transition, p0, emission, counts):
    """-log P(counts) of one trial: the forward algorithm, rescaled at every bin."""
    n = len(p0)
    alpha = p0.copy()
    moved = np.empty(n)
    nll = 0.0
    for t in range(len(counts)):
        row = emission[counts[t]]
        total = 0.0
        for j in range(n):
            moved[j] = 0.0
        for i in range(n):                        # moved = alpha @ transition
            weight = alpha[i]
            if weight != 0.0:
                for j in range(n):
                    moved[j] += weight * transition[i, j]
        for j in range(n):
            moved[j] *= row[j]
            total += moved[j]
        if total <= 0.0:
            return np.inf
        for j in range(n):
            alpha[j] = moved[j] / total
        nll -= math.log(total)
    return nll
