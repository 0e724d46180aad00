"""The search methods, each from a well-kept library, all in the unit cube.

A method is turned into one *search* per start: ``search(evaluate)`` runs the
library's own loop and calls ``evaluate(points)`` (an ``(n, d)`` array in
``[0, 1]^d``, returning ``n`` losses) for every generation it wants evaluated.
The optimizer maps the unit cube onto the parameters' bounds, so every method
respects them and sees well-scaled coordinates.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["METHODS", "LOCAL_METHODS", "make_searches"]

Evaluate = Callable[[np.ndarray], np.ndarray]
Search = Callable[[Evaluate], Any]

#: Methods that start from one point and may be started from several (``starts=K``).
LOCAL_METHODS = ("cmaes", "nelder-mead", "slsqp", "l-bfgs-b")
METHODS = ("cmaes", "de", "ga", "nelder-mead", "slsqp", "l-bfgs-b", "random", "grid", "tpe")


def make_searches(method: str, dims: int, starts: int, seed: int, max_evals: int,
                  options: dict[str, Any]) -> list[Search]:
    """One search per start for ``method`` (see :data:`METHODS`)."""
    rng = np.random.default_rng(seed)
    origins = [np.full(dims, 0.5)] if starts == 1 else list(rng.random((starts, dims)))
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(starts)]
    options = dict(options)
    if method == "cmaes":
        cma = _import_cma()
        return [_cmaes(cma, origin, s, options) for origin, s in zip(origins, seeds)]
    if method in ("nelder-mead", "slsqp", "l-bfgs-b"):
        return [_scipy_local(method, origin, options) for origin in origins]
    if method == "de":
        return [_differential_evolution(dims, seeds[0], options)]
    if method == "ga":
        return [_genetic(dims, seeds[0], options)]
    if method == "random":
        return [_random(dims, seeds[0], max_evals, options)]
    if method == "grid":
        return [_grid(dims, max_evals, options)]
    if method == "tpe":
        return [_tpe(dims, seeds[0], options)]
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _finite(losses: np.ndarray) -> np.ndarray:
    """Losses as the libraries take them: NaN (a failed evaluation) becomes inf."""
    return np.where(np.isnan(losses), np.inf, losses)


# ---------------------------------------------------------------------- CMA-ES
def _import_cma() -> Any:
    """The cma package, without its warning that plotting needs matplotlib."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not import matplotlib",
                                category=UserWarning)
        import cma
    return cma


def _cmaes(cma: Any, origin: np.ndarray, seed: int, options: dict[str, Any]) -> Search:
    def search(evaluate: Evaluate) -> None:
        settings = {"bounds": [0.0, 1.0], "seed": seed % (2**31 - 2) + 1, "verbose": -9,
                    "verb_log": 0, "verb_disp": 0}
        if "popsize" in options:
            settings["popsize"] = int(options["popsize"])
        strategy = cma.CMAEvolutionStrategy(origin, float(options.get("sigma0", 0.25)),
                                            settings)
        while not strategy.stop():
            points = np.asarray(strategy.ask())
            losses = _finite(evaluate(points))
            # cma takes no inf: failed points rank last
            worst = np.max(losses[np.isfinite(losses)], initial=0.0)
            strategy.tell(list(points), np.where(np.isfinite(losses),
                                                 losses, 10 * abs(worst) + 1e300).tolist())

    return search


# ---------------------------------------------------------------------- scipy
class _Memo:
    """Values of points already evaluated by one local search (scipy asks again)."""

    def __init__(self, evaluate: Evaluate):
        self.evaluate = evaluate
        self.seen: dict[bytes, float] = {}

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(points)
        keys = [p.tobytes() for p in points]
        new = [i for i, key in enumerate(keys) if key not in self.seen]
        if new:
            for i, loss in zip(new, _finite(self.evaluate(points[new]))):
                self.seen[keys[i]] = float(loss)
        return np.array([self.seen[key] for key in keys])


def _scipy_local(method: str, origin: np.ndarray, options: dict[str, Any]) -> Search:
    def search(evaluate: Evaluate) -> Any:
        from scipy.optimize import Bounds, minimize

        memo = _Memo(evaluate)
        bounds = Bounds(np.zeros(len(origin)), np.ones(len(origin)))
        settings = {key: value for key, value in options.items() if key != "step"}
        if method == "nelder-mead":
            settings.setdefault("xatol", 1e-7)
            settings.setdefault("fatol", 1e-10)
            settings.setdefault("maxfev", 10**9)
            return minimize(lambda x: memo(x)[0], origin, method="Nelder-Mead",
                            bounds=bounds, options=settings)
        step = float(options.get("step", 1e-6))

        def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
            # forward differences, backward at the upper bound: one batch of d + 1 points
            steps = np.where(x + step <= 1.0, step, -step)
            points = np.vstack([x, x + np.diag(steps)])
            losses = memo(points)
            if not np.isfinite(losses[0]):
                return math.inf, np.zeros_like(x)
            gradient = (losses[1:] - losses[0]) / steps
            return float(losses[0]), np.where(np.isfinite(gradient), gradient, 0.0)

        return minimize(value_and_gradient, origin, jac=True,
                        method="SLSQP" if method == "slsqp" else "L-BFGS-B",
                        bounds=bounds, options=settings)

    return search


def _differential_evolution(dims: int, seed: int, options: dict[str, Any]) -> Search:
    def search(evaluate: Evaluate) -> Any:
        from scipy.optimize import differential_evolution

        def batch_map(_: Any, population: Any) -> list[float]:
            return _finite(evaluate(np.asarray(list(population)))).tolist()

        settings = {"popsize": 10, "maxiter": 10**6, "tol": 1e-8, "polish": False,
                    **options}
        return differential_evolution(lambda x: math.inf, [(0.0, 1.0)] * dims,
                                      rng=np.random.default_rng(seed), updating="deferred",
                                      workers=batch_map, **settings)

    return search


# ---------------------------------------------------------------------- DEAP
def _genetic(dims: int, seed: int, options: dict[str, Any]) -> Search:
    def search(evaluate: Evaluate) -> None:
        import random

        try:
            from deap import algorithms, base, creator, tools
        except ImportError:
            raise ImportError("method 'ga' needs DEAP: pip install 'explorer[ga]'") from None
        if not hasattr(creator, "ExplorerFitness"):
            creator.create("ExplorerFitness", base.Fitness, weights=(-1.0,))
            creator.create("ExplorerIndividual", list, fitness=creator.ExplorerFitness)
        random.seed(seed)  # DEAP's operators draw from the random module
        size = int(options.get("popsize", 30))
        toolbox = base.Toolbox()
        toolbox.register("individual", tools.initRepeat, creator.ExplorerIndividual,
                         random.random, dims)
        toolbox.register("population", tools.initRepeat, list, toolbox.individual)
        toolbox.register("mate", tools.cxBlend, alpha=float(options.get("alpha", 0.3)))
        toolbox.register("mutate", tools.mutGaussian, mu=0.0,
                         sigma=float(options.get("sigma", 0.03)), indpb=1.0 / dims)
        toolbox.register("select", tools.selTournament, tournsize=3)

        def assess(individuals: list) -> None:
            for individual in individuals:  # keep every gene in bounds
                individual[:] = np.clip(individual, 0.0, 1.0).tolist()
            losses = _finite(evaluate(np.array(individuals, dtype=float)))
            for individual, loss in zip(individuals, losses):
                individual.fitness.values = (float(loss),)

        population = toolbox.population(n=size)
        assess(population)
        cxpb, mutpb = float(options.get("cxpb", 0.7)), float(options.get("mutpb", 0.3))
        while True:
            offspring = algorithms.varAnd(population, toolbox, cxpb, mutpb)
            changed = [ind for ind in offspring if not ind.fitness.valid]
            if changed:
                assess(changed)
            # (mu + lambda): the best found so far is never lost
            population = tools.selBest(population, 1) + toolbox.select(population + offspring,
                                                                       size - 1)

    return search


# ---------------------------------------------------------------------- sampling
def _random(dims: int, seed: int, max_evals: int, options: dict[str, Any]) -> Search:
    def search(evaluate: Evaluate) -> None:
        rng = np.random.default_rng(seed)
        size = int(options.get("popsize", max_evals))
        while True:
            evaluate(rng.random((size, dims)))

    return search


def _grid(dims: int, max_evals: int, options: dict[str, Any]) -> Search:
    per_axis = int(options.get("points", math.floor(max_evals ** (1.0 / dims) + 1e-9)))
    if per_axis < 2:
        raise ValueError(f"a grid over {dims} parameters needs at least {2 ** dims} "
                         f"evaluations (2 per axis); max_evals is {max_evals}")

    def search(evaluate: Evaluate) -> None:
        axis = np.linspace(0.0, 1.0, per_axis)
        evaluate(np.array(list(itertools.product(axis, repeat=dims))))

    return search


def _tpe(dims: int, seed: int, options: dict[str, Any]) -> Search:
    def search(evaluate: Evaluate) -> None:
        try:
            import optuna
        except ImportError:
            raise ImportError("method 'tpe' needs optuna: pip install 'explorer[tpe]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        size = int(options.get("popsize", 8))
        while True:
            trials = [study.ask() for _ in range(size)]
            points = np.array([[trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dims)]
                               for trial in trials])
            for trial, loss in zip(trials, evaluate(points)):
                study.tell(trial, float(loss) if np.isfinite(loss) else None,
                           state=None if np.isfinite(loss) else optuna.trial.TrialState.FAIL)

    return search
