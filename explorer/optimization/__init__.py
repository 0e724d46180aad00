"""Fitting parameters to data: searches whose every evaluation is a stored run."""
from .optimizer import Fit, Optimizer

__all__ = ["Optimizer", "Fit"]
