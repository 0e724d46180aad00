"""Losses for fitting: distances between simulated and target data.

``ex.losses.rmse(simulated, target)`` and ``mse`` compare traces sample by
sample; :func:`feature_loss` compares named features (a paired-pulse ratio, a
rise time...) with their targets, each squared error weighted.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["mse", "rmse", "feature_loss"]


def _pair(simulated: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    simulated, target = np.asarray(simulated, dtype=float), np.asarray(target, dtype=float)
    if simulated.shape != target.shape:
        raise ValueError(f"simulated data of shape {simulated.shape} cannot be compared with "
                         f"target data of shape {target.shape}")
    return simulated, target


def mse(simulated: Any, target: Any) -> float:
    """Mean squared error between two arrays of the same shape."""
    simulated, target = _pair(simulated, target)
    return float(np.mean((simulated - target) ** 2))


def rmse(simulated: Any, target: Any) -> float:
    """Root mean squared error between two arrays of the same shape."""
    return float(np.sqrt(mse(simulated, target)))


def feature_loss(features: Mapping[str, float], targets: Mapping[str, float],
                 weights: Mapping[str, float] | None = None) -> float:
    """Weighted sum of squared errors of named features: ``sum w_k (f_k - t_k)**2``.

    Parameters
    ----------
    features : dict
        Feature name -> value measured on the simulation.
    targets : dict
        Feature name -> target value; every target must have a feature.
    weights : dict, optional
        Feature name -> weight (default 1).

    Returns
    -------
    float
        The loss; ``inf`` if a feature is not finite (a simulation that
        produced no measurable response).
    """
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(targets))
    if unknown:
        raise ValueError(f"weights given for features without a target: {', '.join(unknown)}")
    missing = sorted(set(targets) - set(features))
    if missing:
        raise ValueError(f"no value for the target feature(s) {', '.join(missing)}; "
                         f"features given: {', '.join(sorted(features)) or 'none'}")
    total = 0.0
    for name, target in targets.items():
        value = float(features[name])
        if not np.isfinite(value):
            return float("inf")
        total += float(weights.get(name, 1.0)) * (value - float(target)) ** 2
    return total
