"""The simulators ``bench_lif.py`` runs, declared with ``explorer.simulator``.

They live in a module of their own (beside ``lif_model.py``), not in the
benchmark script, so that dask workers import them by reference: the run
job that reaches a worker then names ``lif_simulators.lif`` instead of
carrying the compiled function, and the worker loads numba's on-disk cache
(``cache=True``, in ``benchmarks/__pycache__``) instead of compiling.

* :data:`lif`: the tutorial's leaky integrate-and-fire neuron
  (``lif_model.simulate``, 10,000 Euler steps for the default parameters);
  its outputs ``V`` (the trace) and ``nspikes`` go to
  ``results.neuron.<run>.V`` / ``.nspikes``. Batched: explorer evaluates a
  whole chunk of runs in one compiled loop.
* :data:`lif_unbatched`: the same compiled function, one call per run
  (``batch=False``).
* :data:`trivial`: ``y = 2 x``, to measure what explorer costs per run;
  :data:`trivial_unbatched` the same one call per run, and
  :func:`trivial_loop` the same compiled loop without explorer.
"""
from __future__ import annotations

from numba import njit

import explorer as ex
import lif_model

__all__ = ["lif", "lif_unbatched", "trivial", "trivial_unbatched", "trivial_loop"]


@ex.simulator(outputs=("V", "nspikes"), result="neuron")
def lif(V_init, I, tau_V, tau_ref, dt, duration):
    """One run of the LIF neuron: ``(V, nspikes)``."""
    return lif_model.simulate(V_init, I, tau_V, tau_ref, dt, int(round(duration / dt)))


lif_unbatched = ex.Simulator(lif.function, ("V", "nspikes"), "neuron", batch=False)


@ex.simulator(outputs=("y",), result="out")
def trivial(x):
    return x * 2.0


trivial_unbatched = ex.Simulator(trivial.function, ("y",), "out", batch=False)
_trivial = trivial.function


@njit(cache=True)
def trivial_loop(out, x):
    """The trivial simulator over every ``x`` without explorer (the overhead's reference)."""
    for i in range(out.shape[0]):
        out[i] = _trivial(x[i])
    return out
