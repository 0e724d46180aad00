"""Fitting parameters to data: an exploration that grows one generation at a time.

Every candidate a search method proposes is a run of the environment's
trajectory: its parameters are explored values (with the generation and the
start that proposed it), the experiment runs on the environment's workers, and
the loss is computed there and stored with the run. A whole generation (of all
starts together) is one batch of runs.

Resuming replays the search: the method is started again with the same seed,
and every point it asks for that the file already holds is answered from the
file instead of being run again. A deterministic method thus asks for the same
points, reaches the state it had when it was interrupted, and goes on from
there: the search ends where an uninterrupted one would have.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..environment import Environment
from ..errors import ExplorationError
from ..provenance import collect, now
from ..records import RunStatus
from .batching import Rendezvous, Request
from .methods import LOCAL_METHODS, METHODS, make_searches

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Optimizer", "Fit", "evaluate_candidate"]

#: The result group of every evaluation's losses: ``results.fit.<run>.loss`` etc.
RESULT = "fit"
GENERATION, START = "optimizer.generation", "optimizer.start"


@dataclass
class Fit:
    """The outcome of :meth:`Optimizer.run`.

    Attributes
    ----------
    best_params : dict
        Parameter name (as given in ``bounds``) -> value of the lowest loss.
    best_loss : float
        That loss (a loss given as a list is summed).
    history : pandas.DataFrame
        One row per evaluation (index: run), in the order they ran: the
        parameters, ``loss``, each loss component ``loss_0``, ``loss_1``... (when
        the loss is a list), ``validation_loss`` (with ``validation_loss=``),
        ``generation``, ``start``, ``status`` and ``error`` (failed evaluations
        have an infinite loss).
    best_by_validation : dict or None
        Among the best evaluation of each generation, the parameters with the
        lowest validation loss (``None`` without ``validation_loss=``).
    method : str
    evaluations : int
        Evaluations in the file (``len(history)``).
    best_run : int
        The run (row of ``history``) of the lowest loss.
    best_by_validation_run : int or None
        The run of ``best_by_validation``.
    """

    best_params: dict[str, float]
    best_loss: float
    history: pd.DataFrame
    best_by_validation: dict[str, float] | None
    method: str
    evaluations: int
    best_run: int = -1
    best_by_validation_run: int | None = None


def evaluate_candidate(traj: Any, experiment: Callable[[Any], Any],
                       loss: Callable[[Any], Any],
                       validation_loss: Callable[[Any], Any] | None,
                       store_outputs: bool) -> float:
    """The run function of an optimization: run the experiment, score it, store the scores."""
    outputs = experiment(traj)
    parts = np.asarray(loss(outputs), dtype=float)
    total = float(parts.sum())
    items: dict[str, float] = {"loss": total}
    if parts.ndim:
        items.update({f"loss_{i}": float(part) for i, part in enumerate(parts.ravel())})
    if validation_loss is not None:
        items["validation_loss"] = float(np.sum(np.asarray(validation_loss(outputs),
                                                           dtype=float)))
    traj.add_result(f"{RESULT}.$", **items, comment="losses of the evaluation")
    if store_outputs:
        named = outputs if isinstance(outputs, Mapping) else \
            {f"output_{i}": value for i, value in enumerate(
                outputs if isinstance(outputs, (list, tuple)) else [outputs])}
        traj.add_result("outputs.$", **named, comment="the experiment's outputs")
    return total


class Optimizer:
    """Fits parameters of a trajectory to data; every evaluation is a stored run.

    Parameters
    ----------
    env : Environment
        Where the evaluations run (its workers) and are stored (its file).
    experiment : callable
        ``experiment(traj) -> outputs``, called for every candidate with the
        candidate's parameter values (``traj.neuron.a`` ...), on the workers.
    bounds : dict
        Parameter name -> ``(low, high)``. Parameters missing from the
        trajectory are added (with the middle of their bounds as default).
    loss : callable
        ``loss(outputs) -> float`` or a list of floats (summed; each part is
        kept in the history).
    method : str
        ``"cmaes"``, ``"de"``, ``"ga"``, ``"nelder-mead"``, ``"slsqp"``,
        ``"l-bfgs-b"``, ``"random"``, ``"grid"`` or ``"tpe"`` (needs optuna).
    seed : int, optional
        Seeds the method (stored with the trajectory; reused on resume).
    starts : int
        Local searches started side by side from random points (for
        ``cmaes``, ``nelder-mead``, ``slsqp``, ``l-bfgs-b``); their generations
        are evaluated together.
    validation_loss : callable, optional
        Same signature as ``loss``, against held-out data; recorded for every
        evaluation, and ``fit.best_by_validation`` picks, among each
        generation's best, the lowest.
    options : dict, optional
        Passed to the method (``popsize``, ``sigma0`` for CMA-ES, scipy options...).
    store_outputs : bool
        Also store every evaluation's outputs (``results.outputs.<run>``).
    """

    def __init__(self, env: Environment, experiment: Callable[[Any], Any], *,
                 bounds: Mapping[str, tuple[float, float]], loss: Callable[[Any], Any],
                 method: str = "cmaes", seed: int | None = None, starts: int = 1,
                 validation_loss: Callable[[Any], Any] | None = None,
                 options: Mapping[str, Any] | None = None, store_outputs: bool = False):
        if not isinstance(env, Environment):
            raise TypeError(f"Optimizer needs an ex.Environment, got {type(env).__name__}")
        for name, value in (("experiment", experiment), ("loss", loss)):
            if not callable(value):
                raise TypeError(f"{name} must be callable, got {value!r}")
        if validation_loss is not None and not callable(validation_loss):
            raise TypeError(f"validation_loss must be callable, got {validation_loss!r}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if not isinstance(starts, int) or isinstance(starts, bool) or starts < 1:
            raise ValueError(f"starts must be a positive int, got {starts!r}")
        if starts > 1 and method not in LOCAL_METHODS:
            raise ValueError(f"starts={starts} needs a method that starts from a point "
                             f"({', '.join(LOCAL_METHODS)}); {method!r} searches globally")
        self.env = env
        self.experiment = experiment
        self.loss = loss
        self.validation_loss = validation_loss
        self.method = method
        self.starts = starts
        self.options = dict(options or {})
        self.store_outputs = store_outputs
        self.names, self.lower, self.upper = self._check_bounds(bounds)
        self.full_names = self._bind_parameters()
        self.seed = self._settle(seed)

    # ---------------------------------------------------------------- set-up
    @staticmethod
    def _check_bounds(bounds: Mapping[str, tuple[float, float]]) -> tuple[list[str], np.ndarray,
                                                                          np.ndarray]:
        if not isinstance(bounds, Mapping) or not bounds:
            raise ValueError("bounds must be a non-empty dict: parameter name -> (low, high)")
        lower, upper = [], []
        for name, pair in bounds.items():
            try:
                low, high = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ValueError(f"bounds of {name!r} must be (low, high), got {pair!r}") from None
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"bounds of {name!r} must be finite with low < high, "
                                 f"got ({low}, {high})")
            lower.append(low)
            upper.append(high)
        return list(bounds), np.array(lower), np.array(upper)

    def _bind_parameters(self) -> list[str]:
        traj = self.env.trajectory
        full_names = []
        for name, low, high in zip(self.names, self.lower, self.upper):
            if name not in traj:
                traj.add_parameter(name, float((low + high) / 2), comment="fitted by explorer")
            full_names.append(traj.get(name).full_name)
        for name in (GENERATION, START):
            if name not in traj:
                traj.add_parameter(name, 0, comment="which generation and start proposed "
                                                    "the run's parameters")
        explored = set(traj.explored_parameters)
        expected = {*full_names, *(traj.get(n).full_name for n in (GENERATION, START))}
        if explored and explored != expected:
            raise ExplorationError(
                f"trajectory {traj.name!r} already explores {sorted(explored)}; an optimization "
                f"of {self.names} needs a trajectory of its own (or the one it left)")
        return full_names

    def _settle(self, seed: int | None) -> int:
        """The seed, and a check that a resumed optimization keeps its settings."""
        traj = self.env.trajectory
        settings = {"method": self.method, "starts": self.starts,
                    "bounds": json.dumps({n: [lo, hi] for n, lo, hi in
                                          zip(self.names, self.lower.tolist(),
                                              self.upper.tolist())}),
                    "options": json.dumps(self.options, sort_keys=True, default=repr)}
        if "config.optimizer.seed" in traj:
            stored_seed = int(traj["config.optimizer.seed"])
            if seed is not None and seed != stored_seed:
                raise ExplorationError(f"the optimization in {self.env.filename!r} used seed "
                                       f"{stored_seed}; resuming needs the same seed (or none)")
            for key, value in settings.items():
                stored = traj[f"config.optimizer.{key}"]
                if stored != value:
                    raise ExplorationError(
                        f"the optimization in {self.env.filename!r} used {key}={stored}; it "
                        f"cannot be resumed with {key}={value}")
            return stored_seed
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        traj.add_config("optimizer.seed", int(seed), comment="seed of the search method")
        for key, value in settings.items():
            traj.add_config(f"optimizer.{key}", value, comment="optimization setting")
        return int(seed)

    # ---------------------------------------------------------------- running
    def run(self, max_evals: int) -> Fit:
        """Search until the method stops or ``max_evals`` evaluations are in the file.

        A generation that would exceed ``max_evals`` is not started. Evaluations
        already in the file (an interrupted optimization) count, and are not run
        again.
        """
        if not isinstance(max_evals, int) or isinstance(max_evals, bool) or max_evals < 1:
            raise ValueError(f"max_evals must be a positive int, got {max_evals!r}")
        traj = self.env.trajectory
        self._max_evals = max_evals
        self._cursor = 0          # run index the next requested point maps to
        self._generation = 0
        self._stored = len(traj) if traj.explored_parameters else 0
        searches = make_searches(self.method, len(self.names), self.starts, self.seed,
                                 max_evals, self.options)
        progress, self.env.progress = self.env.progress, False
        self._session = collect()
        self._session.update(optimizer=self.method, runs=0)
        with self.env.commits_every():  # generations are committed together
            try:
                Rendezvous(searches).run(self._evaluate)
            finally:
                self.env.progress = progress
                self._session.update(end=now())
                self.env._store.add_session(self._session)
        return self.fit()

    def _evaluate(self, requests: list[Request]) -> int:
        """Evaluate as many ``requests`` as fit the budget, as one generation of runs."""
        taken: list[Request] = []
        count = 0
        for request in requests:
            if self._cursor + count + len(request.points) > self._max_evals:
                break
            taken.append(request)
            count += len(request.points)
        if not taken:
            return 0
        unit = np.vstack([request.points for request in taken])
        values = self.lower + np.clip(unit, 0.0, 1.0) * (self.upper - self.lower)
        starts = np.concatenate([[request.start] * len(request.points) for request in taken])
        first = self._cursor
        runs = list(range(first, first + count))
        self._replay_check(runs, values, starts)
        self._expand(values[max(0, self._stored - first):], starts[max(0, self._stored - first):])
        losses = self._run(runs)
        offset = 0
        for request in taken:
            request.losses = losses[offset:offset + len(request.points)]
            offset += len(request.points)
        self._cursor += count
        self._generation += 1
        return len(taken)

    def _replay_check(self, runs: list[int], values: np.ndarray, starts: np.ndarray) -> None:
        """Points the file already holds must be those the method asks for again."""
        traj = self.env.trajectory
        for k, run in enumerate(runs):
            if run >= self._stored:
                return
            stored = [traj.get(full).range[run] for full in self.full_names]
            generation = traj.get(GENERATION).range[run]
            start = traj.get(START).range[run]
            if stored != values[k].tolist() or generation != self._generation or \
                    start != int(starts[k]):
                raise ExplorationError(
                    f"run {run} in {self.env.filename!r} holds {dict(zip(self.names, stored))} "
                    f"(generation {generation}, start {start}), but method {self.method!r} with "
                    f"seed {self.seed} now asks for {dict(zip(self.names, values[k].tolist()))} "
                    f"(generation {self._generation}, start {int(starts[k])}): the search cannot "
                    f"be resumed from this file")

    def _expand(self, values: np.ndarray, starts: np.ndarray) -> None:
        if not len(values):
            return
        traj = self.env.trajectory
        points = {full: values[:, i].tolist() for i, full in enumerate(self.full_names)}
        points[GENERATION] = [self._generation] * len(values)
        points[START] = [int(s) for s in starts]
        if traj.explored_parameters:
            traj.expand(points)
        else:
            traj.explore(points)
        self._stored = len(traj)

    def _run(self, runs: list[int]) -> np.ndarray:
        """Run what has not run yet; every run's loss (NaN for a failed one)."""
        env = self.env
        store = env._store
        env.trajectory.store()
        table = store.run_table()
        done = set(table.idx[table.status != RunStatus.PENDING].tolist())  # ran, either way
        todo = [run for run in runs if run not in done]
        if todo:
            self._session["runs"] += len(todo)
            env._execute(evaluate_candidate, todo,
                         (self.experiment, self.loss, self.validation_loss, self.store_outputs),
                         {}, record_session=False)
        values = store.return_values(runs)
        return np.array([float(values[run]) if run in values and values[run] is not None
                         else math.nan for run in runs])

    # ---------------------------------------------------------------- results
    def fit(self) -> Fit:
        """The search so far, as stored in the file."""
        import pandas as pd

        traj = self.env.trajectory
        store = self.env._store
        n = len(traj) if traj.explored_parameters else 0
        index = pd.RangeIndex(n, name="run")
        history = pd.DataFrame({name: traj.get(full).range if n else []
                                for name, full in zip(self.names, self.full_names)},
                               index=index, dtype=float)
        with store.snapshot():  # one commit of the file for every read below
            columns = store.scalar_columns() if n else {}
            table = store.run_table()
            errors = store.run_errors(range(n))
        scalars = {item: pd.Series(values, index=runs).reindex(index)
                   for (template, item), (runs, values) in columns.items()
                   if template == f"results.{RESULT}.$"}
        history["loss"] = scalars.pop("loss", pd.Series(np.nan, index=index)).astype(float)
        for item in sorted(scalars, key=lambda name: (name != "validation_loss", len(name), name)):
            history[item] = scalars[item].astype(float)
        history["generation"] = traj.get(GENERATION).range if n else []
        history["start"] = traj.get(START).range if n else []
        status = np.zeros(n, dtype=np.int8)
        inside = table.idx < n
        status[table.idx[inside]] = table.status[inside]
        history["status"] = [RunStatus(int(code)).name.lower() for code in status]
        history["error"] = pd.Series(errors, dtype=object).reindex(index) if errors else None
        history.loc[history["status"] == "failed", "loss"] = math.inf
        history = history[history["status"] != "pending"]
        if not len(history) or not np.isfinite(history["loss"]).any():
            raise ExplorationError(f"no evaluation of {self.env.filename!r} has a finite loss "
                                   f"yet (see the errors in its history)")
        best = int(history["loss"].idxmin())
        by_validation, chosen = None, None
        if "validation_loss" in history:
            per_generation = history.loc[history.groupby("generation")["loss"].idxmin()]
            chosen = int(per_generation["validation_loss"].idxmin())
            by_validation = {name: float(history.at[chosen, name]) for name in self.names}
        return Fit({name: float(history.at[best, name]) for name in self.names},
                   float(history.at[best, "loss"]), history, by_validation, self.method,
                   len(history), best, chosen)
